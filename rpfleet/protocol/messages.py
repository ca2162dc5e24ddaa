"""Message models of the wire contract v1: one pydantic model per topic.

Every payload is a UTF-8 JSON object with ``"v": "MAJOR.MINOR"``. A reader
tolerates fields it does not know (a newer minor version may add them) and
refuses a payload of another major version.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any, Literal, Union

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from rpfleet.protocol.topics import NODE_ID_PATTERN, Channel

SCHEMA_MAJOR = 1
SCHEMA_MINOR = 5
SCHEMA_VERSION = f"{SCHEMA_MAJOR}.{SCHEMA_MINOR}"

MAX_BATCH = 500

NodeId = Annotated[str, StringConstraints(pattern=NODE_ID_PATTERN)]
EventId = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{32}$")]
Name = Annotated[str, StringConstraints(min_length=1, max_length=128)]
Text = Annotated[str, StringConstraints(max_length=2000)]


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


class Message(BaseModel):
    """Base of every payload: carries and checks the schema version."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    v: str = Field(default=SCHEMA_VERSION, pattern=r"^[0-9]+\.[0-9]+$")

    @field_validator("v")
    @classmethod
    def _same_major(cls, value: str) -> str:
        major = int(value.split(".")[0])
        if major != SCHEMA_MAJOR:
            raise ValueError(
                f"schema version {value} is not supported (this side speaks {SCHEMA_VERSION})"
            )
        return value

    def to_json(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()


class Part(BaseModel):
    """A nested object inside a message: tolerant like a message, no version of its own."""

    model_config = ConfigDict(extra="ignore", frozen=True)


# ---- up/status ----------------------------------------------------------


class Status(Message):
    """Retained presence: ``online`` on connect, ``offline`` as Last Will and on shutdown."""

    node: NodeId
    state: Literal["online", "offline"]
    agent_version: str | None = None
    at: AwareDatetime | None = None


# ---- up/health ----------------------------------------------------------


class PeripheralHealth(Part):
    id: Name
    kind: Name
    state: Literal["ok", "degraded", "missing", "failed"]
    detail: Text | None = None


class Health(Message):
    """Periodic snapshot of the node; the latest one wins. Sent at once when a
    peripheral's state changes and after every reconnect."""

    node: NodeId
    at: AwareDatetime
    uptime_s: float = Field(ge=0, description="Seconds since the agent started.")
    outbox_pending: int = Field(ge=0, description="Events not yet acked by the server.")
    outbox_oldest_age_s: float | None = Field(default=None, ge=0)
    outbox_overflow: int = Field(
        default=0, ge=0, description="Events held in memory because the disk refused them."
    )
    agent_version: str | None = None
    agent_rss_mb: float | None = Field(default=None, ge=0)
    system_uptime_s: float | None = Field(default=None, ge=0)
    cpu_percent: float | None = Field(default=None, ge=0, le=100)
    load_1m: float | None = Field(default=None, ge=0)
    mem_total_mb: float | None = Field(default=None, ge=0)
    mem_available_mb: float | None = Field(default=None, ge=0)
    disk_total_mb: float | None = Field(default=None, ge=0)
    disk_free_mb: float | None = Field(default=None, ge=0)
    cpu_temp_c: float | None = None
    clock_synced: bool | None = Field(
        default=None, description="False: the clock is not NTP-synchronised, event times may be wrong."
    )
    peripherals: list[PeripheralHealth] = []
    alarms: list[Name] = Field(
        default=[], description="Active alarm codes, e.g. disk-full, outbox-replaced, driver-crashed:pad-1."
    )


# ---- up/events ----------------------------------------------------------


class RatingTap(Part):
    """A citizen's satisfaction tap: ``rating`` of ``scale`` buttons, 1 the worst."""

    kind: Literal["rating-tap"] = "rating-tap"
    pad: Name
    counter: Name | None = None
    rating: int = Field(ge=1, le=5)
    scale: int = Field(ge=3, le=5)
    suspect: Text | None = None
    """Why the tap looks like misuse (a burst, a hammered button); stored all the same."""
    mono_ns: int | None = Field(
        default=None, ge=0,
        description="The press on the node's monotonic clock, in ns since boot (1.2): intervals "
        "between taps that hold even when the wall clock was wrong or jumped.",
    )

    @model_validator(mode="after")
    def _rating_within_scale(self) -> "RatingTap":
        if self.rating > self.scale:
            raise ValueError(f"rating {self.rating} is above the pad's scale {self.scale}")
        return self


class Scan(Part):
    """A barcode or QR read: ``code`` exactly as the reader sent it, unless ``redacted``."""

    kind: Literal["scan"] = "scan"
    scanner: Name
    code: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    symbology: Name | None = None
    counter: Name | None = None
    partial: bool = False
    code_kind: Name | None = Field(
        default=None,
        description="What the code is, from the scanner's classification table "
        "(1.2): e.g. ihanoi-booking, dossier-receipt, citizen-id, unknown.",
    )
    fields: dict[Name, Text] | None = Field(
        default=None,
        description="The parts of the code its kind keeps (1.2). A name ending in `_hash` "
        "holds a keyed hash (HMAC-SHA256 with the fleet's secret), never the clear value.",
    )
    redacted: bool = Field(
        default=False,
        description="True: the read held personal data (1.2); `code` is a placeholder and "
        "the read itself was neither stored nor sent.",
    )


class PeripheralAttached(Part):
    kind: Literal["peripheral-attached"] = "peripheral-attached"
    peripheral: Name
    peripheral_kind: Name
    identity: Text | None = None


class PeripheralDetached(Part):
    kind: Literal["peripheral-detached"] = "peripheral-detached"
    peripheral: Name
    peripheral_kind: Name


class Alarm(Part):
    kind: Literal["alarm"] = "alarm"
    code: Name
    severity: Literal["info", "warning", "critical"]
    message: Text
    cleared: bool = False


AnnounceKind = Literal["queue-call", "payment", "thank-you", "test", "identify", "text"]


class AnnouncementResult(Part):
    """What a soundbox did with an `Announce` (1.4): said it in full, or why not.

    The event's ``at`` is when the soundbox began to say it (``played``), else when it was
    given up. One result per soundbox per announcement; a redelivered `Announce` (same id)
    gets none."""

    kind: Literal["announcement"] = "announcement"
    soundbox: Name = Field(description="The soundbox's peripheral id on the node.")
    announce_id: Name = Field(description="The `Announce`'s id.")
    announce_kind: AnnounceKind
    counter: Name | None = None
    ticket: Name | None = None
    outcome: Literal["played", "expired", "merged", "no-device", "device-busy", "failed"] = Field(
        description="played: said in full, to its last sample; expired: dropped unsaid, it was "
        "past its expires_at; merged: a repeat of `merged_into`, not said again; no-device: "
        "the soundbox was absent; device-busy: another program held the audio device; "
        "failed: anything else (`reason` says what, e.g. a word the voice pack cannot say).",
    )
    reason: Text | None = None
    merged_into: Name | None = Field(default=None, description="merged: the announcement said.")
    clips: list[Name] | None = Field(
        default=None, max_length=500, description="played: the voice pack's clip ids, in order."
    )
    duration_ms: int | None = Field(default=None, ge=0, description="played: how long it spoke.")
    waited_ms: int | None = Field(
        default=None, ge=0, description="From its arrival at the node to the start of playing."
    )


class TicketPrint(Part):
    """What a kiosk's ticket printer did with a queue ticket (1.5): printed, failed, or voided.

    A ticket counts as issued only with outcome ``printed`` or ``reprinted``. No personal
    data: the ticket's QR link (a booking) is not carried."""

    kind: Literal["ticket"] = "ticket"
    printer: Name = Field(description="The ticket printer's peripheral id on the node.")
    job_id: Name = Field(description="The print job's id on the node.")
    number: Name = Field(description='The ticket number, e.g. "A012".')
    service: Annotated[str, StringConstraints(min_length=1, max_length=200)] | None = None
    counter: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    outcome: Literal["printed", "reprinted", "failed", "voided"] = Field(
        description="printed: the whole ticket printed and was cut; reprinted: the same, for a "
        "reprint of `reprint_of`; failed: it did not print (`reason`); voided: the earlier job "
        "`job_id` was withdrawn.",
    )
    reason: Literal["paper-out", "cover-open", "offline", "no-device", "failed"] | None = Field(
        default=None, description="failed: why.")
    detail: Text | None = Field(default=None, description="failed: what the printer said, for IT.")
    reprint_of: Name | None = Field(default=None, description="A reprint: the job printed again.")


class BrowserRepair(Part):
    """A repair a kiosk browser's supervisor carried out (1.5): a reload, a browser or display
    session restart, or a reboot, and why. A page that keeps failing ends in an `alarm`."""

    kind: Literal["browser-repair"] = "browser-repair"
    browser: Name = Field(description="The kiosk browser's peripheral id on the node.")
    step: Literal["reload", "restart-browser", "restart-display", "reboot"]
    trouble: Literal["hung", "crashed", "disallowed", "not-loaded", "browser-gone"] = Field(
        description="hung: no answer to the heartbeat script; crashed: the renderer crashed or "
        "the page was closed; disallowed: it showed a URL outside the allowed ones; "
        "not-loaded: it did not finish loading in time; browser-gone: the browser exited.",
    )
    reason: Text
    done_this_hour: int = Field(ge=0, description="Earlier runs of this step in the last hour.")
    failed: Text | None = Field(default=None, description="Why the step itself failed, if it did.")


EventDetail = Annotated[
    Union[RatingTap, Scan, PeripheralAttached, PeripheralDetached, Alarm, AnnouncementResult,
          TicketPrint, BrowserRepair],
    Field(discriminator="kind"),
]


class Event(Part):
    """One event as it leaves the outbox: node-unique ``id``, per-node ``seq``."""

    id: EventId
    seq: int = Field(ge=1)
    at: AwareDatetime
    clock_synced: bool | None = Field(
        default=None, description="False when the node's clock was not synchronised: `at` may be wrong."
    )
    detail: EventDetail


class EventBatch(Message):
    node: NodeId
    events: list[Event] = Field(min_length=1, max_length=MAX_BATCH)


# ---- down/ack -----------------------------------------------------------


class Ack(Message):
    """The listed events are committed on the server; the node may forget them.
    Since 1.3 an id may also be a `Handover`'s ``handover_id``: that record is stored.
    Since 1.5 an id may also be a `Command`'s ``id``: that command's result is stored.
    A node ignores ids it does not know."""

    ids: list[EventId] = Field(min_length=1, max_length=MAX_BATCH)


# ---- config -------------------------------------------------------------


class ConfigDesired(Message):
    version: Name
    """Content hash of ``config``."""
    config: dict[str, Any]
    issued_at: AwareDatetime


class ConfigReported(Message):
    node: NodeId
    version: Name
    state: Literal["applied", "rejected"]
    reason: Text | None = None


# ---- commands -----------------------------------------------------------

CommandName = Literal[
    "restart-agent",
    "reboot",
    "identify",
    "test-sound",
    "self-test",
    "screenshot",
    "fetch-logs",
    "update-reset",  # (1.5) forget a stuck or finished update (one under proof rolls back first)
]


class Command(Message):
    id: Name = Field(
        description="Unique id of this command (1.5): 32 lowercase hex digits, so that `Ack` "
        "can confirm its result; a node refuses other ids.",
    )
    name: CommandName
    args: dict[str, Any] = {}
    issuer: Name
    issued_at: AwareDatetime
    expires_at: AwareDatetime


class CommandResult(Message):
    node: NodeId
    id: Name
    outcome: Literal["ok", "failed", "expired", "refused"]
    detail: Text | None = None
    output: dict[str, Any] | None = None
    finished_at: AwareDatetime


# ---- updates ------------------------------------------------------------


class UpdateDesired(Message):
    version: Name
    url: Annotated[str, StringConstraints(min_length=1, max_length=2048)]
    sha256: Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
    size: int = Field(ge=1)
    signature: Annotated[str, StringConstraints(min_length=1, max_length=1024)]
    rollback: bool = False
    """The server marks an explicit downgrade; otherwise older versions are refused."""
    force: bool = Field(
        default=False,
        description="(1.5) Install and switch now, outside the site's maintenance window and even "
        "while the node is busy (a call being spoken, a ticket printing).",
    )


class UpdateProgress(Message):
    node: NodeId
    version: Name
    state: Literal[
        "downloading",
        "verifying",
        "installing",
        "switching",
        "proving",
        "done",
        "rolled-back",
        "refused",
        "failed",
    ]
    progress: float | None = Field(default=None, ge=0, le=1)
    reason: Text | None = None
    evidence: dict[str, Text] | None = Field(
        default=None,
        description="(1.5) What the node saw, for a failure, refusal or rollback: short lines keyed by "
        "what was checked (`connected`, `health-sent`, `drivers`, `test-event`, `download`…).",
    )
    at: AwareDatetime | None = Field(
        default=None,
        description="(1.5) When the node entered this state; reports are queued and re-sent, so they "
        "may arrive late or out of order.",
    )


# ---- up/handover --------------------------------------------------------

Technician = Annotated[str, StringConstraints(min_length=1, max_length=100)]


class HandoverResult(Part):
    """How one peripheral did in the technician's guided self-test."""

    peripheral: Name
    kind: Name
    passed: bool
    seen: Annotated[str, StringConstraints(min_length=1, max_length=500)] = Field(
        description="What the node or the technician observed, in short (e.g. `ratings 1-5 "
        "pressed`, `nothing seen in 60s`); never personal data such as an ID number.",
    )
    note: Text | None = Field(default=None, description="The technician's remark, if any.")


class Handover(Message):
    """A node's handover record (1.3): the technician's guided self-test of every configured
    peripheral, each with pass or fail and what was seen. Sent until the server's `Ack`
    names ``handover_id``; the server stores each ``handover_id`` once."""

    handover_id: EventId
    node: NodeId
    technician: Technician | None = Field(default=None, description="Who walked through the test.")
    started_at: AwareDatetime
    finished_at: AwareDatetime
    agent_version: str | None = None
    results: list[HandoverResult] = Field(default=[], max_length=MAX_BATCH)

    @model_validator(mode="after")
    def _consistent(self) -> "Handover":
        if self.finished_at < self.started_at:
            raise ValueError("finished_at is before started_at")
        ids = [r.peripheral for r in self.results]
        repeated = sorted({i for i in ids if ids.count(i) > 1})
        if repeated:
            raise ValueError(f"each peripheral has one result; repeated: {', '.join(repeated)}")
        return self

    @property
    def passed(self) -> bool:
        """Every peripheral passed (a node without peripherals passes)."""
        return all(r.passed for r in self.results)


# ---- down/announce ------------------------------------------------------


class Announce(Message):
    """Something to say or show now; dropped if it arrives after ``expires_at``."""

    id: Name
    kind: AnnounceKind
    ticket: Name | None = None
    counter: Name | None = None
    amount_vnd: int | None = Field(default=None, ge=0)
    text: Text | None = None
    expires_at: AwareDatetime
    priority: bool | None = Field(
        default=None,
        description="True for a priority citizen (elderly, disabled, pregnant): the voice "
        "pack's priority wording where it has one (1.4).",
    )
    service: Name | None = Field(
        default=None, description="A wording key of the voice pack for the service called (1.4)."
    )


MODEL_BY_CHANNEL: dict[Channel, type[Message]] = {
    Channel.STATUS: Status,
    Channel.HEALTH: Health,
    Channel.EVENTS: EventBatch,
    Channel.CONFIG_REPORTED: ConfigReported,
    Channel.CMD_RESULT: CommandResult,
    Channel.UPDATE_PROGRESS: UpdateProgress,
    Channel.HANDOVER: Handover,
    Channel.ACK: Ack,
    Channel.CONFIG_DESIRED: ConfigDesired,
    Channel.CMD: Command,
    Channel.UPDATE_DESIRED: UpdateDesired,
    Channel.ANNOUNCE: Announce,
}

event_detail_adapter: TypeAdapter[EventDetail] = TypeAdapter(EventDetail)
