"""Peripheral drivers, one package per kind. Drivers never touch MQTT: they hand
events to the agent through a callable (see `devices.base.Record`)."""
