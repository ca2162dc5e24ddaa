"""Alerts in the store: the facts the rules need, and applying a `Plan`.

Applying is safe with several workers at once: an alert is opened by one
``INSERT ... SELECT ... WHERE NOT EXISTS`` (an open alert of the same kind and
subject) and closed by ``UPDATE ... WHERE closed_at IS NULL``, inside a
transaction that PostgreSQL serialises with a transaction-scoped advisory lock
(SQLite has one writer at a time anyway). So the same plan applied twice, or
two plans applied together, never gives two open alerts for one cause.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from datetime import date, datetime, timezone

import sqlalchemy as sa
from pydantic import ValidationError

from fleet_server import alerts
from fleet_server.alerts import Finding, Key, NodeFacts, OutboxTrend, Plan, SiteDay
from fleet_server.presence import Presence
from fleet_server.satisfaction import satisfied_sql
from fleet_server.schema import alerts as alerts_table
from fleet_server.schema import events, nodes
from fleet_server.settings import AlertSettings
from rpfleet.protocol.messages import Health

log = logging.getLogger(__name__)

APPLY_LOCK = int.from_bytes(hashlib.sha256(b"rpfleet alerts apply").digest()[:8], "big", signed=True)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; every time the server stores is UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value


# ---- reading ------------------------------------------------------------


def node_facts(conn: sa.Connection) -> list[NodeFacts]:
    """Every node with its presence and its latest health (None if absent or unreadable)."""
    rows = conn.execute(
        sa.select(nodes.c.id, nodes.c.site_id, nodes.c.state, nodes.c.state_at,
                  nodes.c.last_seen, nodes.c.last_health)
    )
    facts = []
    for row in rows:
        health = None
        if row.last_health is not None:
            try:
                health = Health.model_validate(row.last_health)
            except ValidationError as exc:
                log.warning("stored health of %s is unreadable: %s", row.id, exc)
        presence = Presence(row.state, aware(row.state_at), aware(row.last_seen))
        facts.append(NodeFacts(row.id, row.site_id, presence, health))
    return facts


def site_days(conn: sa.Connection, day: date, start: datetime, end: datetime) -> list[SiteDay]:
    """Ratings per site between ``start`` and ``end`` (tap times), misuse-flagged taps left out."""
    # In UTC, as stored: SQLite keeps a datetime's digits and drops its offset.
    start, end = start.astimezone(timezone.utc), end.astimezone(timezone.utc)
    satisfied = sa.func.sum(sa.case((satisfied_sql(events.c.rating, events.c.scale), 1), else_=0))
    query = (
        sa.select(nodes.c.site_id, sa.func.count().label("total"), satisfied.label("satisfied"))
        .select_from(events.join(nodes, nodes.c.id == events.c.node_id))
        .where(
            events.c.kind == "rating-tap",
            events.c.at >= start,
            events.c.at < end,
            sa.or_(events.c.suspect.is_(None), events.c.suspect == sa.false()),
            nodes.c.site_id.is_not(None),
        )
        .group_by(nodes.c.site_id)
    )
    return [SiteDay(r.site_id, day, int(r.satisfied or 0), int(r.total)) for r in conn.execute(query)]


def open_keys(conn: sa.Connection) -> frozenset[Key]:
    rows = conn.execute(
        sa.select(alerts_table.c.kind, alerts_table.c.subject).where(alerts_table.c.closed_at.is_(None))
    )
    return frozenset((kind, subject) for kind, subject in rows)


def list_alerts(conn: sa.Connection, *, include_closed: bool = False) -> list[sa.Row]:
    """Open alerts, most severe and oldest first; with ``include_closed`` the history too."""
    a = alerts_table.c
    rank = sa.case((a.severity == "critical", 0), (a.severity == "warning", 1), else_=2)
    query = sa.select(alerts_table).order_by(a.closed_at.is_not(None), rank, a.opened_at, a.id)
    if not include_closed:
        query = query.where(a.closed_at.is_(None))
    return list(conn.execute(query))


# ---- writing ------------------------------------------------------------


def _open(conn: sa.Connection, f: Finding, now: datetime) -> bool:
    a = alerts_table.c
    already = sa.exists().where(a.kind == f.kind, a.subject == f.subject, a.closed_at.is_(None))
    values = {
        "kind": f.kind, "subject": f.subject, "severity": f.severity, "opened_at": now,
        "detail": f.detail, "node_id": f.node_id, "site_id": f.site_id,
    }
    columns = list(values)
    row = sa.select(*(sa.literal(v, alerts_table.c[k].type) for k, v in values.items())).where(~already)
    stmt = alerts_table.insert().from_select(columns, row).returning(a.id)
    return conn.execute(stmt).first() is not None


def _close(conn: sa.Connection, key: Key, now: datetime) -> bool:
    a = alerts_table.c
    stmt = (
        alerts_table.update()
        .where(a.kind == key[0], a.subject == key[1], a.closed_at.is_(None))
        .values(closed_at=now)
        .returning(a.id)
    )
    return bool(conn.execute(stmt).all())


@dataclass(frozen=True)
class Applied:
    opened: list[Key]
    closed: list[Key]


def apply(conn: sa.Connection, plan: Plan, now: datetime) -> Applied:
    """Carry out ``plan`` in the caller's transaction; returns what actually changed."""
    if not (plan.open or plan.close):
        return Applied([], [])
    if conn.dialect.name == "postgresql":
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(APPLY_LOCK)))
    closed = [key for key in plan.close if _close(conn, key, now)]
    opened = [f.key for f in plan.open if _open(conn, f, now)]
    return Applied(opened, closed)


# ---- one round ----------------------------------------------------------


class AlertEvaluator:
    """One evaluation round: read the facts, run the rules, apply the plan.

    Keeps the outbox trend between rounds, so run it in one place (the duty
    holder, `fleet_server.duty`).
    """

    def __init__(self, engine: sa.Engine, rules: AlertSettings) -> None:
        self._engine = engine
        self._rules = rules
        self._trend = OutboxTrend()

    def run(self, now: datetime) -> Applied:
        day, start, end = alerts.day_bounds(now, self._rules.city_timezone)
        with self._engine.connect() as conn:
            facts = node_facts(conn)
            sites = site_days(conn, day, start, end)
            already = open_keys(conn)
        findings = self.findings(facts, sites, already, now)
        plan = alerts.reconcile(findings, already)
        with self._engine.begin() as conn:
            applied = apply(conn, plan, now)
        for kind, subject in applied.opened:
            log.warning("alert opened: %s %s", kind, subject)
        for kind, subject in applied.closed:
            log.info("alert closed: %s %s", kind, subject)
        return applied

    def findings(
        self, facts: list[NodeFacts], sites: list[SiteDay], already: frozenset[Key], now: datetime
    ) -> list[Finding]:
        found: list[Finding] = []
        for node in facts:
            previous = self._trend.previous(node.id, node.health) if node.health else None
            found += alerts.node_findings(
                node, now, self._rules, previous_pending=previous, open_keys=already
            )
        for site in sites:
            finding = alerts.satisfaction_finding(site, self._rules)
            if finding:
                found.append(finding)
        return found

