"""rpfleet: the shared core of the fleet (wire contract and the `rpfleet` command)."""

__version__ = "0.1.0"
