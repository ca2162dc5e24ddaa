"""udev through pyudev. Kept thin: what a device is lives in matcher and inventory."""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator

from devices.hotplug.adapter import UdevEvent
from devices.hotplug.nodes import SUBSYSTEMS, Properties


class PyudevMonitor:
    """Lists and watches the devices of ``subsystems`` via the udev netlink socket."""

    def __init__(self, subsystems: tuple[str, ...] = SUBSYSTEMS) -> None:
        self._subsystems = subsystems
        self._monitor: Any = None
        self._queue: asyncio.Queue[UdevEvent | OSError] = asyncio.Queue()

    async def open(self) -> list[Properties]:
        import pyudev

        context = pyudev.Context()
        # Source "udev": events udev has processed, with its properties (not the kernel's raw ones).
        monitor = pyudev.Monitor.from_netlink(context)
        for subsystem in self._subsystems:
            monitor.filter_by(subsystem)
        monitor.start()
        # Listening starts before listing, so a device plugged in between is seen (twice at worst).
        asyncio.get_running_loop().add_reader(monitor.fileno(), self._readable)
        self._monitor = monitor
        return await asyncio.to_thread(self._list, context)

    def _list(self, context: Any) -> list[Properties]:
        return [
            dict(device.properties)
            for subsystem in self._subsystems
            for device in context.list_devices(subsystem=subsystem)
        ]

    def _readable(self) -> None:
        try:
            while (device := self._monitor.poll(timeout=0)) is not None:
                self._queue.put_nowait((device.action, dict(device.properties)))
        except OSError as exc:  # the socket failed (buffer overrun, closed): events() raises it
            asyncio.get_running_loop().remove_reader(self._monitor.fileno())
            self._queue.put_nowait(exc)

    async def events(self) -> AsyncIterator[UdevEvent]:
        while True:
            item = await self._queue.get()
            if isinstance(item, OSError):
                raise item
            yield item

    async def close(self) -> None:
        monitor, self._monitor = self._monitor, None
        if monitor is not None:
            asyncio.get_running_loop().remove_reader(monitor.fileno())
            # pyudev has no close(); the socket goes with the monitor object.
