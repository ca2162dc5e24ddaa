"""The node agent: drives the peripherals, keeps every event in an on-disk
outbox until the fleet server has acknowledged it, reports status and health."""

__version__ = "0.1.0"
