"""What the bridge needs of the node's drivers, as small Protocols (never their classes).

The agent hands the bridge all its drivers; the bridge uses those that print tickets or say
announcements, whatever kind they are.
"""

from __future__ import annotations

from typing import Iterable, Protocol, runtime_checkable

from devices.printer.ticket import PrinterStatus, PrintOutcome, Ticket
from rpfleet.protocol.messages import Announce


@runtime_checkable
class TicketPrinting(Protocol):
    """A ticket printer (devices/printer/ticket.py says the contract)."""

    id: str

    async def print_ticket(self, ticket: Ticket) -> PrintOutcome: ...

    async def reprint(self, job_id: str) -> PrintOutcome: ...

    async def void(self, job_id: str) -> None: ...

    def status(self) -> PrinterStatus: ...


@runtime_checkable
class Announcing(Protocol):
    """A soundbox: takes an announcement at once (False: not for its counters)."""

    id: str

    def announce(self, message: Announce) -> bool: ...


def printers(drivers: Iterable[object]) -> list[TicketPrinting]:
    return [d for d in drivers if isinstance(d, TicketPrinting)]


def soundboxes(drivers: Iterable[object]) -> list[Announcing]:
    return [d for d in drivers if isinstance(d, Announcing)]
