"""What every driver is and what it is given: the interface between devices/ and agent/."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol

from rpfleet.protocol.messages import EventDetail, PeripheralHealth


class Record(Protocol):
    """Stores one event durably (in the agent's outbox) and returns only then.

    A driver gives the citizen feedback only after this returns, so feedback
    always means "your tap is on disk". Raises when the event could not be kept.
    """

    async def __call__(self, detail: EventDetail, at: datetime) -> None: ...


class Driver(Protocol):
    """A running peripheral. The constructor only stores what it is given."""

    id: str
    kind: str
    config: object
    """The peripheral's frozen config model; hot-plug reads its ``device`` and ``match``."""

    async def run(self) -> None:
        """Open the device and serve it until cancelled; closes it on the way out."""

    def health(self) -> PeripheralHealth: ...

    def attach(self, devnode: str) -> None:
        """Hot-plug found this peripheral's device at ``devnode``: (re)open it now."""

    def detach(self) -> None:
        """Hot-plug saw this peripheral's device go away."""


class DeviceSlot:
    """Where a driver's device is now: the node hot-plug found, else the configured path.

    A driver waiting to reopen its device waits on the slot, so a replug
    resumes it at once instead of at the next retry.
    """

    def __init__(self, configured: str | None) -> None:
        self._configured = configured
        self._attached: str | None = None
        self._changed = asyncio.Event()

    @property
    def path(self) -> str | None:
        return self._attached or self._configured

    def attach(self, devnode: str) -> None:
        self._attached = devnode
        self._changed.set()

    def detach(self) -> None:
        self._attached = None
        self._changed.set()

    async def wait_change(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for an attach or detach; True if one came."""
        try:
            await asyncio.wait_for(self._changed.wait(), timeout)
        except asyncio.TimeoutError:
            return False
        finally:
            self._changed.clear()
        return True


class OnSlot:
    """For drivers whose device lives in ``self.slot``: hot-plug attach/detach go to the slot."""

    slot: DeviceSlot

    def attach(self, devnode: str) -> None:
        self.slot.attach(devnode)

    def detach(self) -> None:
        self.slot.detach()
