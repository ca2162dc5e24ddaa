"""Satisfaction reports as the city measures them: the share of satisfied ratings
among all ratings, per region, site, counter or node and per local day, week or
month, with the 95 % Wilson interval and misuse-flagged taps counted apart.

`satisfaction_report` is the one entry point (the CLI and the HTTP API both call
it); it returns frozen dataclasses and does no formatting. Counting happens in
the database (one GROUP BY over the taps in the range); what is left for Python
is small: periods with no taps, totals, intervals.

Time: the store keeps UTC; reports speak Hanoi's local time (UTC+7), so a tap at
23:30 UTC on 1 March belongs to 2 March. Vietnam has kept UTC+7 all year, with
no daylight saving, since 1975, so the fixed shift SQLite is given is exact for
every tap this system can hold; PostgreSQL is given the zone's name.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from fleet_server.satisfaction import UNASSIGNED, satisfied_sql, wilson_interval
from fleet_server.schema import counters, events, nodes, regions, sites

LOCAL_ZONE = ZoneInfo("Asia/Ho_Chi_Minh")
LOCAL_SHIFT = timedelta(hours=7)
"""Hanoi's offset from UTC (see the module docstring for why a constant is exact)."""

TARGET_SHARE = 0.90
"""The city's target: at least 90 % of ratings satisfied."""


class Period(enum.StrEnum):
    DAY = "day"
    WEEK = "week"  # ISO weeks, Monday to Sunday
    MONTH = "month"


class Grouping(enum.StrEnum):
    REGION = "region"
    SITE = "site"
    COUNTER = "counter"
    NODE = "node"


class ReportError(ValueError):
    """A report asked for something that cannot be answered.

    ``field`` names the filter at fault ("site", "from", ...) and ``value`` what
    was given, so that the CLI can say ``--site 'x'`` and the API its parameter.
    """

    def __init__(self, field: str, value: object, problem: str) -> None:
        super().__init__(f"{field} {value!r}: {problem}")
        self.field = field
        self.value = value
        self.problem = problem


@dataclass(frozen=True)
class ReportQuery:
    """What to report on: local dates ``first_day`` to ``last_day`` (both included),
    bucketed ``by`` period, optionally split by ``group``, filtered by ids."""

    first_day: date
    last_day: date
    by: Period = Period.DAY
    group: Grouping | None = None
    region: str | None = None
    site: str | None = None
    counter: str | None = None
    node: str | None = None

    def __post_init__(self) -> None:
        if self.first_day > self.last_day:
            raise ReportError("from", self.first_day.isoformat(),
                              f"is after the last day asked for ({self.last_day.isoformat()})")

    def utc_bounds(self) -> tuple[datetime, datetime]:
        """The UTC instants [start, end) that the local days cover."""
        start = datetime.combine(self.first_day, time(), LOCAL_ZONE)
        end = datetime.combine(self.last_day + timedelta(days=1), time(), LOCAL_ZONE)
        return start.astimezone(timezone.utc), end.astimezone(timezone.utc)


@dataclass(frozen=True)
class Tally:
    """Counts for one cell of a report, and what they say.

    ``ratings`` are the taps that count (misuse-flagged ones excluded), of which
    ``satisfied`` were in the pad's top two buttons; ``misuse_flagged`` taps are
    counted only here. ``clock_unsynced`` counts taps (of either kind) stamped by
    a node whose clock was not synchronised: their day may be wrong. ``share``
    and the 95 % Wilson interval ``low``..``high`` are None without ratings.
    """

    ratings: int
    satisfied: int
    misuse_flagged: int = 0
    clock_unsynced: int = 0
    share: float | None = field(init=False)
    low: float | None = field(init=False)
    high: float | None = field(init=False)

    def __post_init__(self) -> None:
        share = low = high = None
        if self.ratings:
            share = self.satisfied / self.ratings
            low, high = wilson_interval(self.satisfied, self.ratings)
        object.__setattr__(self, "share", share)
        object.__setattr__(self, "low", low)
        object.__setattr__(self, "high", high)

    def __add__(self, other: Tally) -> Tally:
        return Tally(self.ratings + other.ratings, self.satisfied + other.satisfied,
                     self.misuse_flagged + other.misuse_flagged,
                     self.clock_unsynced + other.clock_unsynced)

    @property
    def meets_target(self) -> bool | None:
        return None if self.share is None else self.share >= TARGET_SHARE


NO_TAPS = Tally(0, 0)


@dataclass(frozen=True)
class PeriodSpan:
    """One day, ISO week or month, cut to the report's range: ``first`` and
    ``last`` are the local days it covers (both included); ``label`` names the
    whole period ("2025-03-04", "2025-W10", "2025-03")."""

    label: str
    first: date
    last: date


@dataclass(frozen=True)
class Group:
    """What a row is about: ``id`` is the region, site or node id, or
    "site/counter" for a counter; ``name`` is what a person reads."""

    kind: Grouping
    id: str
    name: str


@dataclass(frozen=True)
class ReportRow:
    period: PeriodSpan | None  # None: the whole range
    group: Group | None  # None: everything selected
    tally: Tally


@dataclass(frozen=True)
class Report:
    """``rows``: one per period and group that had taps, by period then group id.
    ``trend``: one per period of the range, the selection as a whole, periods
    without taps included (so gaps show). ``groups``: one per group over the
    whole range (empty without a grouping). ``total``: the selection over the
    range. ``subject`` names the selection for titles ("Phường Cửa Nam")."""

    query: ReportQuery
    subject: str
    rows: tuple[ReportRow, ...]
    trend: tuple[ReportRow, ...]
    groups: tuple[ReportRow, ...]
    total: Tally


# ---- periods (pure) -----------------------------------------------------


def period_start(day: date, by: Period) -> date:
    """The first day of the period that holds ``day``."""
    if by is Period.WEEK:
        return day - timedelta(days=day.weekday())
    if by is Period.MONTH:
        return day.replace(day=1)
    return day


def _period_end(start: date, by: Period) -> date:
    if by is Period.WEEK:
        return start + timedelta(days=6)
    if by is Period.MONTH:
        following = (start.replace(day=28) + timedelta(days=4)).replace(day=1)
        return following - timedelta(days=1)
    return start


def _label(start: date, by: Period) -> str:
    if by is Period.WEEK:
        year, week, _ = start.isocalendar()
        return f"{year}-W{week:02d}"
    if by is Period.MONTH:
        return f"{start:%Y-%m}"
    return start.isoformat()


def span_of(start: date, query: ReportQuery) -> PeriodSpan:
    """The period beginning on ``start``, cut to the query's days."""
    return PeriodSpan(_label(start, query.by), max(start, query.first_day),
                      min(_period_end(start, query.by), query.last_day))


def periods(query: ReportQuery) -> list[PeriodSpan]:
    """Every period that overlaps the query's days, in order."""
    spans, start = [], period_start(query.first_day, query.by)
    while start <= query.last_day:
        spans.append(span_of(start, query))
        start = _period_end(start, query.by) + timedelta(days=1)
    return spans


# ---- SQL ----------------------------------------------------------------


def _local_period_sql(at: Any, by: Period, dialect: str) -> Any:
    """The first local day of the period that the UTC timestamp ``at`` falls in.

    SQLite gets text 'YYYY-MM-DD' from its date(); PostgreSQL a DATE.
    """
    if dialect == "sqlite":
        hours = f"{int(LOCAL_SHIFT.total_seconds() // 3600):+d} hours"
        # 'weekday 0' moves forward to a Sunday (or stays on one); 6 days back is its Monday.
        modifiers = {Period.DAY: (), Period.WEEK: ("weekday 0", "-6 days"),
                     Period.MONTH: ("start of month",)}[by]
        # SQLite's date arithmetic keeps milliseconds and rounds the rest: 23:59:59.9999
        # would become the next day. Whole seconds (the stored text's first 19
        # characters, 'YYYY-MM-DD HH:MM:SS') keep every tap on its own day.
        return sa.func.date(sa.func.substr(at, 1, 19), hours, *modifiers)
    local = sa.func.timezone(LOCAL_ZONE.key, at)  # timestamptz -> Hanoi wall clock
    return sa.cast(sa.func.date_trunc(by.value, local), sa.Date)


def _group_columns(group: Grouping | None, counter_id: Any) -> list[Any]:
    """(key, second key, name, second name) of a row's group, as SQL labels."""
    null = sa.null()
    key, key2, name, name2 = {
        None: (null, null, null, null),
        Grouping.REGION: (sites.c.region_id, null, regions.c.name, null),
        Grouping.SITE: (nodes.c.site_id, null, sites.c.name, null),
        Grouping.COUNTER: (nodes.c.site_id, counter_id, sites.c.name, counters.c.name),
        Grouping.NODE: (events.c.node_id, null, sites.c.name, null),
    }[group]
    return [key.label("key"), key2.label("key2"), name.label("name"), name2.label("name2")]


def _tally_query(query: ReportQuery, dialect: str) -> sa.Select:
    start, end = query.utc_bounds()
    counter_id = sa.func.coalesce(events.c.counter, nodes.c.counter)
    flagged = events.c.suspect.is_(True)
    taps = (
        sa.select(
            _local_period_sql(events.c.at, query.by, dialect).label("period"),
            *_group_columns(query.group, counter_id),
            sa.case((flagged, 0), else_=1).label("counted"),
            sa.case((sa.and_(sa.not_(flagged), satisfied_sql(events.c.rating, events.c.scale)), 1),
                    else_=0).label("happy"),
            sa.case((flagged, 1), else_=0).label("flagged"),
            sa.case((events.c.clock_synced.is_(False), 1), else_=0).label("unsynced"),
        )
        .select_from(
            events.outerjoin(nodes, nodes.c.id == events.c.node_id)
            .outerjoin(sites, sites.c.id == nodes.c.site_id)
            .outerjoin(regions, regions.c.id == sites.c.region_id)
            .outerjoin(counters, sa.and_(counters.c.site_id == nodes.c.site_id,
                                         counters.c.id == counter_id))
        )
        .where(events.c.kind == "rating-tap", events.c.rating.is_not(None),
               events.c.at >= start, events.c.at < end)
    )
    for value, column in ((query.region, sites.c.region_id), (query.site, nodes.c.site_id),
                          (query.counter, counter_id), (query.node, events.c.node_id)):
        if value is not None:
            taps = taps.where(column == value)
    taps = taps.subquery("taps")
    # Grouping by the subquery's columns (not by repeated expressions) keeps
    # PostgreSQL from seeing two differently-bound copies of the same expression.
    return (
        sa.select(
            taps.c.period, taps.c.key, taps.c.key2,
            sa.func.max(taps.c.name).label("name"), sa.func.max(taps.c.name2).label("name2"),
            sa.func.sum(taps.c.counted).label("ratings"),
            sa.func.sum(taps.c.happy).label("satisfied"),
            sa.func.sum(taps.c.flagged).label("flagged"),
            sa.func.sum(taps.c.unsynced).label("unsynced"),
        )
        .group_by(taps.c.period, taps.c.key, taps.c.key2)
    )


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(value)


def _group_of(kind: Grouping | None, row: Any) -> Group | None:
    if kind is None:
        return None
    key = row.key or UNASSIGNED
    site_name = row.name or UNASSIGNED
    if kind is Grouping.COUNTER:
        counter = row.key2 or UNASSIGNED
        return Group(kind, f"{key}/{counter}", f"{site_name} / {row.name2 or counter}")
    if kind is Grouping.NODE:
        return Group(kind, key, f"{key} ({site_name})")
    return Group(kind, key, row.name or key)


# ---- the report ---------------------------------------------------------


def _subject(conn: sa.Connection, query: ReportQuery) -> str:
    """Names the selection for a title; raises ReportError for an unknown id."""
    parts = []
    for fld, value, table in (("region", query.region, regions), ("site", query.site, sites)):
        if value is None:
            continue
        name = conn.execute(sa.select(table.c.name).where(table.c.id == value)).scalar()
        if name is None:
            raise ReportError(fld, value, f"no {fld} with this id in the registry")
        parts.append(name)
    if query.counter is not None:
        parts.append(f"counter {query.counter}")
    if query.node is not None:
        registered = conn.execute(sa.select(nodes.c.id).where(nodes.c.id == query.node)).first()
        sent = registered or conn.execute(  # (node_id, event_id) is indexed: one probe
            sa.select(events.c.node_id).where(events.c.node_id == query.node).limit(1)).first()
        if sent is None:
            raise ReportError("node", query.node, "no node with this id has registered or sent taps")
        parts.append(f"node {query.node}")
    return ", ".join(parts) or "all sites"


def satisfaction_report(conn: sa.Connection, query: ReportQuery) -> Report:
    """The report for ``query`` from the store on ``conn`` (SQLite or PostgreSQL).

    Raises ReportError when a region, site or node filter names nothing known
    (a counter filter that matches nothing gives an empty report: counters need
    not be registered). A range without taps gives empty ``rows`` and
    ``groups``, a zero-filled ``trend`` and a ``total`` of no ratings.
    """
    subject = _subject(conn, query)
    rows: list[ReportRow] = []
    for row in conn.execute(_tally_query(query, conn.dialect.name)):
        tally = Tally(int(row.ratings), int(row.satisfied), int(row.flagged), int(row.unsynced))
        rows.append(ReportRow(span_of(_as_date(row.period), query), _group_of(query.group, row),
                              tally))
    rows.sort(key=lambda r: (r.period.first, r.group.id if r.group else ""))

    by_period: dict[PeriodSpan, Tally] = {}
    by_group: dict[Group, Tally] = {}
    for r in rows:
        by_period[r.period] = by_period.get(r.period, NO_TAPS) + r.tally
        if r.group is not None:
            by_group[r.group] = by_group.get(r.group, NO_TAPS) + r.tally
    trend = tuple(ReportRow(span, None, by_period.get(span, NO_TAPS)) for span in periods(query))
    groups = tuple(ReportRow(None, g, by_group[g]) for g in sorted(by_group, key=lambda g: g.id))
    total = sum((r.tally for r in rows), NO_TAPS)
    return Report(query, subject, tuple(rows), trend, groups, total)


CSV_HEADER = ["period", "first_day", "last_day", "group_kind", "group_id", "group_name",
              "ratings", "satisfied", "share_satisfied", "wilson95_low", "wilson95_high",
              "misuse_flagged", "clock_unsynced"]
WHOLE_RANGE = "all"
"""The ``period`` of CSV rows that cover the whole range (group totals, the total)."""


def csv_rows(report: Report) -> list[list[str]]:
    """The report as CSV rows, header first: the periods (every period when the
    report has no grouping, else each period and group with taps), then each
    group over the whole range, then the total, both with period "all".
    Shares are fractions (0.9231) with a dot; empty without ratings."""
    q = report.query
    whole = PeriodSpan(WHOLE_RANGE, q.first_day, q.last_day)
    cells = report.trend if q.group is None else report.rows
    lines = [CSV_HEADER]
    for r in (*cells, *report.groups, ReportRow(whole, None, report.total)):
        period = r.period or whole
        g, t = r.group, r.tally
        lines.append([
            period.label, period.first.isoformat(), period.last.isoformat(),
            g.kind.value if g else "", g.id if g else "", g.name if g else report.subject,
            str(t.ratings), str(t.satisfied),
            *("" if v is None else f"{v:.4f}" for v in (t.share, t.low, t.high)),
            str(t.misuse_flagged), str(t.clock_unsynced),
        ])
    return lines
