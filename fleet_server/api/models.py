"""The JSON the HTTP API returns. These models are its contract: the OpenAPI
document (docs/openapi.json) is generated from them."""

from __future__ import annotations

from datetime import date, datetime, timezone
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

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


class Liveness(Model):
    """What /healthz says: the server and its store answer (not a node's health)."""

    status: str = "ok"


class Problem(Model):
    """Why a request was refused (401) or found nothing (404)."""

    detail: str
