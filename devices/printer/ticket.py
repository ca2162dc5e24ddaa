"""The queue ticket and what printing it gives back: the models the kiosk bridge and the
agent import. Pure: no I/O, no hardware library.

The driver (`devices.printer.driver.TicketPrinter`, kind ``"ticket-printer"``) offers:

``async def print_ticket(self, ticket: Ticket) -> PrintOutcome``
    Print ``ticket`` and return once it has printed (and been cut) or has failed. Never
    raises for a printer fault: ``printed`` is False and ``reason`` says why ("paper-out",
    "cover-open", "offline", "no-device", "failed"); the kiosk page then shows
    "Vui lòng lấy số tại quầy hướng dẫn". A ticket counts as issued only when ``printed``.
    Every outcome is recorded as a `TicketPrint` event. Jobs print one at a time, in order.

``async def reprint(self, job_id: str) -> PrintOutcome``
    Print the ticket of an earlier job again (a new ``job_id``, ``reprint_of`` the old one).
    Raises `UnknownJob` when ``job_id`` is not one this printer has (kept: the last
    `JOBS_KEPT` jobs), `JobVoided` when it was voided.

``async def void(self, job_id: str) -> None``
    Mark an earlier job void (the ticket is withdrawn: it will not be reprinted); recorded.
    Raises `UnknownJob` as above; voiding twice is a no-op.

``def status(self) -> PrinterStatus``
    What the printer said at the last real-time status poll (DLE EOT), at once, no I/O.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

JOBS_KEPT = 200
"""How many recent jobs a printer remembers for reprint and void."""

TicketNumber = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9-]{1,16}$")]

FailureReason = Literal["paper-out", "cover-open", "offline", "no-device", "failed"]
"""Why a ticket did not print: paper-out / cover-open / offline (the printer says so; offline:
it answers but will not print, e.g. an error or its feed button held), no-device (not plugged
in, or it stopped answering), failed (anything else; the event's reason says what)."""


class Ticket(BaseModel):
    """One queue ticket, as the kiosk page asks for it. Text is Vietnamese, printed as is."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    number: TicketNumber = Field(description='The ticket number, e.g. "A012".')
    service: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description='The service, in Vietnamese, e.g. "Cấp đổi căn cước".'
    )
    counter: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description='The counter to go to, e.g. "5"; unset: the next free one.'
    )
    issued_at: AwareDatetime = Field(
        description="When the number was taken (printed in Hanoi time)."
    )
    waiting_ahead: int = Field(ge=0, le=100_000, description="People waiting before this one.")
    qr: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        default=None, description="A booking or lookup URL, printed as a QR code."
    )
    site_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="The reception point's name, printed at the top."
    )


class PrintOutcome(BaseModel):
    """What became of one print job."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(description="This job's id on the node (32 hex digits).")
    printed: bool = Field(description="True only when the whole ticket printed and was cut.")
    reason: FailureReason | None = Field(default=None, description="Why not, when not printed.")
    detail: str | None = Field(
        default=None, description="For IT: what the printer said, in English."
    )


class PrinterStatus(BaseModel):
    """The printer's state at the last status poll."""

    model_config = ConfigDict(frozen=True)

    present: bool = Field(description="The device is open and answers status queries.")
    online: bool = Field(description="It would print now (present, no error, cover closed, paper).")
    paper: Literal["ok", "near-end", "out", "unknown"] = "unknown"
    cover_open: bool = False
    checked_at: datetime | None = Field(default=None, description="When this was found out.")


class UnknownJob(LookupError):
    """A job id this printer does not have (never printed here, or forgotten)."""


class JobVoided(ValueError):
    """A voided job cannot be reprinted."""
