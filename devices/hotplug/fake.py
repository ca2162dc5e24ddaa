"""Devices plugged and unplugged in memory, behind the same interface as the udev adapter.

Tests plug recorded `udevadm info` property sets (testcases/) in and out.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator

from devices.hotplug.adapter import UdevEvent
from devices.hotplug.nodes import Properties


class FakeMonitor:
    def __init__(self, present: list[Properties] | None = None) -> None:
        self._present: dict[str, Properties] = {}
        for properties in present or []:
            self._present[properties["DEVPATH"]] = dict(properties)
        self._queue: asyncio.Queue[UdevEvent | None] = asyncio.Queue()
        self.opened = 0
        self.is_open = False

    async def open(self) -> list[Properties]:
        self.opened += 1
        self.is_open = True
        return list(self._present.values())

    def plug(self, *devices: Properties) -> None:
        """Plug in one device: its nodes and the USB device above them, in the order given."""
        for properties in devices:
            self._present[properties["DEVPATH"]] = dict(properties)
            self._queue.put_nowait(("add", dict(properties)))

    def unplug(self, *devices: Properties) -> None:
        """Pull them out; the kernel removes children before parents, so pass them in that order."""
        for properties in devices:
            self._present.pop(properties["DEVPATH"], None)
            self._queue.put_nowait(("remove", dict(properties)))

    def pull_unheard(self, *devices: Properties) -> None:
        """Pull them out while nobody listens (the connection is lost): no event tells of it."""
        for properties in devices:
            self._present.pop(properties["DEVPATH"], None)

    def change(self, properties: Properties) -> None:
        self._present[properties["DEVPATH"]] = dict(properties)
        self._queue.put_nowait(("change", dict(properties)))

    def lose_connection(self) -> None:
        """The netlink socket fails: `events` raises OSError once the queue reaches it."""
        self._queue.put_nowait(None)

    async def events(self) -> AsyncIterator[UdevEvent]:
        while (event := await self._queue.get()) is not None:
            yield event
        raise OSError("udev monitor socket closed")

    async def close(self) -> None:
        self.is_open = False
