"""The node agent: drives the peripherals, keeps every event in an on-disk
outbox until the fleet server has acknowledged it, reports status and health."""

# The release's one version: the release build stamps it into rpfleet/__init__.py only,
# and health and status must name the release really running (rollouts judge by it).
from rpfleet import __version__  # noqa: E402

__all__ = ["__version__"]
