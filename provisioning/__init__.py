"""Provisioning: broker configuration and credentials (one adapter per broker),
later the fleet CA, enrollment and site import."""
