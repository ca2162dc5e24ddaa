"""The JSON the HTTP API returns. These models are its contract: the OpenAPI
document (docs/openapi.json) is generated from them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from fleet_server import announcements
from fleet_server.registry import ID_PATTERN

MAX_PAGE = 1000
"""The most items one request returns; larger lists are read page by page."""
DEFAULT_PAGE = 100


def _assume_utc(value: datetime) -> datetime:
    # SQLite hands back naive datetimes; everything the server stores is UTC.
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


Utc = Annotated[datetime, AfterValidator(_assume_utc)]


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Page(Model):
    total: int = Field(description="How many items match, over all pages.")
    limit: int = Field(description="The most items this page could hold.")
    offset: int = Field(description="How many matching items come before this page.")


# ---- nodes ---------------------------------------------------------------


class NodeSummary(Model):
    """A node as the fleet list shows it."""

    id: str
    site_id: str | None = Field(description="The site it is assigned to; null if unassigned.")
    counter: str | None
    kind: str | None = Field(
        description="What it drives (counter, rating, scanner, kiosk, soundbox, dashboard), as "
                    "it last enrolled; null for a node registered without enrollment."
    )
    state: str = Field(
        description="Presence: online, offline, unknown (never heard from) or retired."
    )
    state_at: Utc | None = Field(description="When the state last changed.")
    last_seen: Utc | None = Field(description="When the server last received anything from it.")
    agent_version: str | None
    last_health_at: Utc | None
    outbox_pending: int | None = Field(
        description="Events waiting on the node for the server's ack, as of its last health report."
    )


class NodePage(Page):
    items: list[NodeSummary]


class Peripheral(Model):
    id: str = Field(description="What survives a replug: a by-id name or USB serial.")
    kind: str
    state: str
    detail: str | None
    updated_at: Utc


class Alert(Model):
    id: int
    kind: str
    subject: str = Field(description='What it is about: a node id, "node/peripheral" or a site id.')
    severity: str
    opened_at: Utc
    closed_at: Utc | None = Field(description="Null while the alert is open.")
    detail: str | None
    node_id: str | None
    site_id: str | None


class AlertPage(Page):
    items: list[Alert]


class NodeDetail(NodeSummary):
    """One node with everything IT support needs to diagnose it."""

    peripherals: list[Peripheral]
    last_health: dict[str, Any] | None = Field(
        description="Its last up/health payload as received (schema: docs/schemas/Health.json)."
    )
    open_alerts: list[Alert]


class NodeEvent(Model):
    """One event the node sent and the server stored (a rating tap, a scan, ...)."""

    id: str = Field(description="The node's own id for the event (unique per node).")
    seq: int = Field(description="The node's sequence number for it.")
    kind: str
    at: Utc = Field(description="When it happened, by the node's clock.")
    received_at: Utc = Field(description="When the server stored it.")
    clock_synced: bool | None = Field(description="Whether the node's clock was synchronised.")
    counter: str | None
    detail: dict[str, Any] = Field(
        description="The event as the node sent it (scans arrive redacted by the node)."
    )


class NodeEventPage(Page):
    items: list[NodeEvent]


# ---- sites ---------------------------------------------------------------


class SiteSummary(Model):
    id: str
    name: str
    kind: str = Field(description="reception, commune or agency.")
    region_id: str | None
    address: str | None
    nodes_total: int
    nodes_online: int


class SitePage(Page):
    items: list[SiteSummary]


class Counter(Model):
    id: str
    name: str | None


class SiteDetail(SiteSummary):
    region_name: str | None
    counters: list[Counter]
    nodes: list[NodeSummary]


# ---- satisfaction --------------------------------------------------------


class SiteSatisfaction(Model):
    site_id: str = Field(description='A site id, or "(unassigned)" for nodes at no site.')
    name: str
    taps: int = Field(description="Rating taps stored.")
    satisfied: int = Field(description="Taps on the top two buttons of the pad.")
    share: float | None = Field(description="satisfied / taps; null without taps.")
    nodes_online: int
    nodes_total: int


class EventsSummary(Page):
    items: list[SiteSatisfaction]
    taps: int = Field(description="Rating taps over all sites, not only this page.")
    satisfied: int
    share: float | None


class Tally(Model):
    """Counts for one cell of a satisfaction report, and what they say."""

    ratings: int = Field(description="Taps that count (misuse-flagged ones left out).")
    satisfied: int = Field(description="Of those, taps on the pad's top two buttons.")
    misuse_flagged: int = Field(description="Taps flagged as misuse, counted only here.")
    clock_unsynced: int = Field(
        description="Taps stamped by a node whose clock was not synchronised."
    )
    share: float | None = Field(description="satisfied / ratings; null without ratings.")
    low: float | None = Field(description="Lower end of the 95 % Wilson interval of the share.")
    high: float | None = Field(description="Upper end of the 95 % Wilson interval of the share.")
    meets_target: bool | None = Field(description="share >= target_share; null without ratings.")


class ReportPeriod(Model):
    label: str = Field(description='The whole period: "2025-03-04", "2025-W10" or "2025-03".')
    first: date = Field(description="First local day it covers within the report (included).")
    last: date = Field(description="Last local day it covers within the report (included).")


class ReportGroup(Model):
    kind: str = Field(description="region, site, counter or node.")
    id: str = Field(description='The region, site or node id, or "site/counter" for a counter.')
    name: str


class TrendPoint(Model):
    period: ReportPeriod
    tally: Tally


class GroupTally(Model):
    group: ReportGroup
    tally: Tally


class ReportCell(Model):
    period: ReportPeriod
    group: ReportGroup | None
    tally: Tally


class SatisfactionReport(Model):
    """The city's measure (share of satisfied ratings) over local (Hanoi) days
    ``first_day`` to ``last_day``, computed by fleet_server.reports."""

    first_day: date
    last_day: date
    by: str = Field(description="day, week or month.")
    group: str | None = Field(description="region, site, counter, node, or null for no split.")
    subject: str = Field(description='Names the selection, e.g. "Phường Cửa Nam" or "all sites".')
    target_share: float
    total: Tally = Field(description="The whole selection over the whole range.")
    trend: list[TrendPoint] = Field(
        description="Every period of the range, those without taps too."
    )
    groups: list[GroupTally] = Field(
        description="One page of the groups, each over the whole range."
    )
    groups_total: int
    cells: list[ReportCell] = Field(
        description="One page of the (period, group) cells that had taps."
    )
    cells_total: int
    limit: int = Field(description="The most groups and the most cells this page could hold.")
    offset: int


# ---- announcements --------------------------------------------------------

ANNOUNCEMENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$"
TICKET = r"^[A-Za-z0-9][A-Za-z0-9-]{0,15}$"
WORDING_KEY = r"^[a-z0-9][a-z0-9-]{0,63}$"
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"


class AnnouncementRequest(Model):
    """What every announcement request may carry besides its own fields. Any
    other field (a citizen's name, a phone number) is refused with 422."""

    id: str | None = Field(
        None, pattern=ANNOUNCEMENT_ID,
        description="Your id for this announcement (1-128 of letters, digits, `._:-`). "
                    "The same id at the same site is announced once: a retry gets the first "
                    "answer again. Without it the server makes one, and a retry is a new "
                    "announcement.",
    )
    ttl_s: int = Field(
        announcements.DEFAULT_TTL_S, ge=announcements.MIN_TTL_S, le=announcements.MAX_TTL_S,
        description="Seconds it may still be said; a node drops it after that "
                    "(a call spoken ten minutes late is worse than none).",
    )


class CallRequest(AnnouncementRequest):
    """A queue call: ticket `ticket` to counter `counter`. It starts that counter's
    service, to which the rating taps there belong until the next call."""

    ticket: str = Field(pattern=TICKET, description='The queue number, e.g. "1023".')
    counter: str = Field(pattern=ID_PATTERN, description="The counter id in the registry.")
    service: str | None = Field(
        None, pattern=WORDING_KEY,
        description="The wording key of the service (a template name in the voice pack).",
    )
    priority: bool = Field(False, strict=True, description="A priority ticket.")
    officer: str | None = Field(
        None, min_length=1, max_length=100, pattern=PRINTABLE,
        description="The officer serving at the counter (id or name): kept with the service "
                    "for tracing satisfaction, never announced.",
    )


class PaymentRequest(AnnouncementRequest):
    """A payment confirmation at a cashier: only the amount is said, never who paid."""

    amount_vnd: int = Field(strict=True, ge=1, le=999_999_999_999,
                            description="The amount received, in đồng.")
    counter: str = Field(pattern=ID_PATTERN, description="The cashier's counter id.")


class Recipient(Model):
    node: str
    state: str = Field(description="Its presence when announced: online, offline or unknown.")
    reason: str = Field(
        description='Why it hears it: "counter" (placed at that counter), "soundbox" or '
                    '"dashboard" (the site\'s hall nodes, for queue calls).'
    )


class Announcement(Model):
    """What was published on `down/announce` (QoS 1, not retained) of each node in `nodes`."""

    id: str
    kind: str = Field(description="queue-call or payment.")
    site_id: str
    counter: str
    ticket: str | None
    amount_vnd: int | None
    sent_at: Utc = Field(description="When the server published it (first time, for a retry).")
    expires_at: Utc
    nodes: list[Recipient]
    duplicate: bool = Field(
        description="True when this id had been announced already: nothing was published now."
    )
    service_id: int | None = Field(description="The service a queue call started.")


class ServiceTap(Model):
    node_id: str
    event_id: str
    at: Utc = Field(description="When the citizen pressed (the node's clock).")
    rating: int
    scale: int
    satisfied: bool
    misuse_flagged: bool = Field(description="Flagged by the node; not counted in ratings.")


class Service(Model):
    """One service at a counter: from its queue call to the next call there or the timeout."""

    id: int
    site_id: str
    counter: str
    ticket: str
    officer: str | None
    service: str | None = Field(description="The wording key the call gave.")
    priority: bool
    called_at: Utc
    ends_at: Utc = Field(description="The next call at the counter, or the timeout.")
    announcement_id: str
    ratings: int = Field(description="Rating taps that count (misuse-flagged left out).")
    satisfied: int
    taps: list[ServiceTap] = Field(description="Its rating taps, by the time they were pressed.")


class ServicePage(Page):
    items: list[Service]


# ---- revoking a node ------------------------------------------------------


class RevokeRequest(Model):
    reason: str = Field(
        "revoked by an operator", min_length=1, max_length=120, pattern=PRINTABLE,
        description="Why, kept with each certificate revoked (with the token's name).",
    )


class Revocation(Model):
    """What `POST /nodes/{node_id}/revoke` did."""

    node_id: str
    revoked: list[str] = Field(description="The serials (hex) of the certificates revoked now.")
    revoked_at: Utc
    by: str = Field(description="The name of the API token that asked (kept as the audit).")
    reason: str = Field(description="As kept with each certificate.")
    state: str = Field(description="The node's presence state, unchanged by the revocation.")
    broker: str = Field(description="What the broker does with the new CRL, and when.")


class Liveness(Model):
    """What /healthz says: the server and its store answer (not a node's health)."""

    status: str = "ok"


class Problem(Model):
    """Why a request was refused (401, 403, 409, 503) or found nothing (404)."""

    detail: str
