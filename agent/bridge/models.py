"""What goes over the device bridge: request and response bodies, and the WebSocket's messages.

The OpenAPI document (docs/device-bridge.openapi.json) is generated from these models.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints

from devices.printer.ticket import FailureReason, PrinterStatus, TicketNumber
from rpfleet.protocol.messages import Name, PeripheralHealth, Text

FALLBACK_VI = "Vui lòng lấy số tại quầy hướng dẫn"
"""What the kiosk page shows a citizen when no ticket could be printed."""


class Body(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BridgeError(BaseModel):
    """Every refusal and failure: a stable code, a sentence for IT, and the bad field if any."""

    error: str = Field(description="A stable code, e.g. origin-not-allowed, token-invalid, "
                       "invalid-request, no-printer, unknown-job.")
    message: str = Field(description="What went wrong, in English, for IT support.")
    field: str | None = Field(default=None, description="The bad field of the request body.")
    fallback: str | None = Field(
        default=None, description=f"What the page shows the citizen instead (\"{FALLBACK_VI}\")."
    )


# ---- tickets ------------------------------------------------------------------------------


class TicketRequest(Body):
    """A queue ticket to print, as the page's queue system numbered it."""

    number: TicketNumber = Field(description='The ticket number, e.g. "1023" or "A012".')
    service: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        description='The service, in Vietnamese, e.g. "Cấp đổi căn cước".'
    )
    counter: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = Field(
        default=None, description="The counter to go to; unset: the next free one."
    )
    waiting_ahead: int = Field(ge=0, le=100_000, description="People waiting before this one.")
    qr: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = Field(
        default=None, description="A booking or lookup URL, printed as a QR code."
    )
    site_name: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = Field(
        default=None, description="The reception point's name, printed at the top."
    )
    issued_at: AwareDatetime | None = Field(
        default=None, description="When the number was taken; unset: now, by the node's clock."
    )


class PrintResult(BaseModel):
    """What became of a print job. A ticket counts as issued only when ``printed`` is true."""

    job_id: str = Field(description="The job's id on the node: for reprint and void.")
    printer: str = Field(description="The printer's peripheral id.")
    printed: bool = Field(description="True only when the whole ticket printed and was cut.")
    reason: FailureReason | None = Field(default=None, description="Why not, when not printed.")
    detail: str | None = Field(default=None, description="For IT: what the printer said.")
    fallback: str | None = Field(
        default=None, description=f"When not printed: what to show the citizen (\"{FALLBACK_VI}\")."
    )


class VoidResult(BaseModel):
    job_id: str
    printer: str
    voided: Literal[True] = True


# ---- announcements ------------------------------------------------------------------------


class AnnouncementRequest(Body):
    """Something for the node's soundbox to say now (the kinds a kiosk page may ask for)."""

    kind: Literal["queue-call", "thank-you", "text", "test"]
    ticket: Name | None = Field(default=None, description="queue-call: the ticket called.")
    counter: Name | None = Field(
        default=None, description="The counter; soundboxes that serve other counters ignore it."
    )
    text: Text | None = Field(default=None, description="text: what to say, in Vietnamese.")
    service: Name | None = Field(default=None, description="A wording key of the voice pack.")
    priority: bool | None = Field(default=None, description="A priority citizen's wording.")


class AnnouncementTaken(BaseModel):
    id: str = Field(description="The announcement's id; its outcome is recorded as an event.")
    soundboxes: list[str] = Field(description="The soundboxes that took it.")


# ---- status -------------------------------------------------------------------------------


class PrinterState(BaseModel):
    id: str
    status: PrinterStatus


class Status(BaseModel):
    """The node's peripherals as the agent reports them, and each ticket printer's last poll."""

    peripherals: list[PeripheralHealth]
    printers: list[PrinterState]


# ---- the WebSocket ------------------------------------------------------------------------


class Hello(Body):
    """The page's first message on the WebSocket: its token (never in the URL)."""

    type: Literal["hello"] = "hello"
    token: str = Field(min_length=1, max_length=200)


class Ready(BaseModel):
    """The bridge's answer to a good hello, with the status now."""

    type: Literal["ready"] = "ready"
    status: Status


class ScanNotice(BaseModel):
    """A code a scanner of this node read (already recorded by the agent)."""

    type: Literal["scan"] = "scan"
    at: datetime
    scanner: str
    code: str = Field(description="The code as read; a placeholder when ``redacted``.")
    code_kind: str | None = Field(default=None, description="e.g. ihanoi-booking, dossier-receipt.")
    fields: dict[str, str] | None = Field(default=None, description="The parts its kind keeps.")
    symbology: str | None = None
    counter: str | None = None
    partial: bool = False
    redacted: bool = False


class StatusNotice(BaseModel):
    """Sent whenever the status changes (a printer runs out of paper, a scanner is unplugged)."""

    type: Literal["status"] = "status"
    status: Status


class MissedNotice(BaseModel):
    """The page fell behind: this many scans were dropped before the next message."""

    type: Literal["missed"] = "missed"
    count: int


class ErrorNotice(BaseModel):
    """Sent before the bridge closes the WebSocket (bad hello, wrong token)."""

    type: Literal["error"] = "error"
    error: str
    message: str


WEBSOCKET_MESSAGES: tuple[type[BaseModel], ...] = (
    Hello, Ready, ScanNotice, StatusNotice, MissedNotice, ErrorNotice,
)
