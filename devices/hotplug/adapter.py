"""The interface every udev source implements (pyudev, or the fake)."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from devices.hotplug.nodes import Properties

UdevEvent = tuple[str, Properties]
"""(action, properties): ``add``, ``remove``, ``change`` (udev also sends ``bind``...)."""


class DeviceMonitor(Protocol):
    async def open(self) -> list[Properties]:
        """Start listening, then list what is plugged in now (so nothing falls between).

        Raises OSError when udev cannot be reached.
        """

    def events(self) -> AsyncIterator[UdevEvent]:
        """Events as they come, until closed; an event may repeat what `open` listed."""

    async def close(self) -> None:
        """Stop listening; safe to call twice."""
