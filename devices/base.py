"""What every driver is and what it is given: the interface between devices/ and agent/."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from rpfleet.protocol.messages import EventDetail, PeripheralHealth


class Record(Protocol):
    """Stores one event durably (in the agent's outbox) and returns only then.

    A driver gives the citizen feedback only after this returns, so feedback
    always means "your tap is on disk".
    """

    async def __call__(self, detail: EventDetail, at: datetime) -> None: ...


class Driver(Protocol):
    """A running peripheral. The constructor only stores what it is given."""

    id: str
    kind: str

    async def run(self) -> None:
        """Open the device and serve it until cancelled; closes it on the way out."""

    def health(self) -> PeripheralHealth: ...
