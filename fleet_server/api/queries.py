"""What the HTTP API reads from the store, as its response models.

Plain functions over a SQLAlchemy connection: no HTTP here, so they are tested
and reused (by the console, say) without a web server. "Not found" is None.
"""

from __future__ import annotations

from typing import Any, Iterable

import sqlalchemy as sa

from fleet_server import reports, service_tagging
from fleet_server.announcements import node_kinds
from fleet_server.api import models
from fleet_server.satisfaction import is_satisfied
from fleet_server.schema import alerts, counters, events, nodes, peripherals, regions, sites
from fleet_server.summary import site_summaries

OUTBOX_PENDING = nodes.c.last_health["outbox_pending"].as_integer()
"""The node's outbox depth from its last health report, in SQL (SQLite and PostgreSQL)."""

_NODE_COLUMNS = [
    nodes.c.id, nodes.c.site_id, nodes.c.counter, nodes.c.state, nodes.c.state_at,
    nodes.c.last_seen, nodes.c.agent_version, nodes.c.last_health_at,
    OUTBOX_PENDING.label("outbox_pending"),
]


def _nodes(conn: sa.Connection, rows: Iterable[sa.Row]) -> list[models.NodeSummary]:
    """Node rows (of _NODE_COLUMNS) as summaries, each with the kind it last enrolled as."""
    rows = list(rows)
    kinds = node_kinds(conn, [row.id for row in rows])
    return [
        models.NodeSummary.model_validate(
            {field: row._mapping[field] for field in models.NodeSummary.model_fields
             if field != "kind"} | {"kind": kinds.get(row.id)}
        )
        for row in rows
    ]


def _count(conn: sa.Connection, query: sa.Select) -> int:
    return int(conn.execute(sa.select(sa.func.count()).select_from(query.subquery())).scalar_one())


def node_page(
    conn: sa.Connection, *, site: str | None, state: str | None, limit: int, offset: int
) -> models.NodePage:
    """Nodes ordered by id, optionally only those at ``site`` and/or in ``state``."""
    query = sa.select(*_NODE_COLUMNS)
    if site is not None:
        query = query.where(nodes.c.site_id == site)
    if state is not None:
        query = query.where(nodes.c.state == state)
    rows = conn.execute(query.order_by(nodes.c.id).limit(limit).offset(offset))
    return models.NodePage(
        items=_nodes(conn, rows), total=_count(conn, query), limit=limit, offset=offset
    )


def node_detail(conn: sa.Connection, node_id: str) -> models.NodeDetail | None:
    """One node with its peripherals, last health and open alerts; None if unknown."""
    row = conn.execute(
        sa.select(*_NODE_COLUMNS, nodes.c.last_health).where(nodes.c.id == node_id)
    ).first()
    if row is None:
        return None
    attached = conn.execute(
        sa.select(peripherals).where(peripherals.c.node_id == node_id).order_by(peripherals.c.id)
    )
    (summary,) = _nodes(conn, [row])
    return models.NodeDetail(
        **summary.model_dump(),
        last_health=row.last_health,
        peripherals=[
            models.Peripheral(
                id=p.id, kind=p.kind, state=p.state, detail=p.detail, updated_at=p.updated_at
            )
            for p in attached
        ],
        open_alerts=_alerts(conn, alerts.c.closed_at.is_(None), alerts.c.node_id == node_id),
    )


def node_events(
    conn: sa.Connection, node_id: str, *, kind: str | None, limit: int, offset: int
) -> models.NodeEventPage | None:
    """The events stored from ``node_id`` (only ``kind`` ones if given), newest first by the
    node's clock, then by its sequence; None if the node is neither registered nor has any."""
    where = [events.c.node_id == node_id]
    if kind is not None:
        where.append(events.c.kind == kind)
    query = (
        sa.select(events).where(*where)
        .order_by(events.c.at.desc(), events.c.seq.desc(), events.c.pk.desc())
        .limit(limit).offset(offset)
    )
    items = [
        models.NodeEvent(
            id=row.event_id, seq=row.seq, kind=row.kind, at=row.at, received_at=row.received_at,
            clock_synced=row.clock_synced, counter=row.counter, detail=row.detail,
        )
        for row in conn.execute(query)
    ]
    total = _count(conn, sa.select(events.c.pk).where(*where))
    if not total and not _known(conn, node_id):
        return None
    return models.NodeEventPage(items=items, total=total, limit=limit, offset=offset)


def _known(conn: sa.Connection, node_id: str) -> bool:
    """Whether ``node_id`` is registered, or has sent any event."""
    registered = conn.execute(sa.select(nodes.c.id).where(nodes.c.id == node_id)).first()
    return registered is not None or conn.execute(
        sa.select(events.c.pk).where(events.c.node_id == node_id).limit(1)
    ).first() is not None


def _site_query() -> sa.Select:
    tally = (
        sa.select(
            nodes.c.site_id,
            sa.func.count().label("total"),
            sa.func.sum(sa.case((nodes.c.state == "online", 1), else_=0)).label("online"),
        )
        .group_by(nodes.c.site_id)
        .subquery()
    )
    return sa.select(
        sites,
        sa.func.coalesce(tally.c.total, 0).label("nodes_total"),
        sa.func.coalesce(tally.c.online, 0).label("nodes_online"),
    ).select_from(sites.outerjoin(tally, tally.c.site_id == sites.c.id))


def _site(row: sa.Row) -> dict[str, Any]:
    return {
        "id": row.id, "name": row.name, "kind": row.kind, "region_id": row.region_id,
        "address": row.address, "nodes_total": int(row.nodes_total),
        "nodes_online": int(row.nodes_online),
    }


def site_page(
    conn: sa.Connection, *, region: str | None, kind: str | None, limit: int, offset: int
) -> models.SitePage:
    """Registered sites ordered by id, with how many of their nodes are online."""
    query = _site_query()
    if region is not None:
        query = query.where(sites.c.region_id == region)
    if kind is not None:
        query = query.where(sites.c.kind == kind)
    rows = conn.execute(query.order_by(sites.c.id).limit(limit).offset(offset))
    return models.SitePage(
        items=[models.SiteSummary(**_site(row)) for row in rows],
        total=_count(conn, query), limit=limit, offset=offset,
    )


def site_detail(conn: sa.Connection, site_id: str) -> models.SiteDetail | None:
    """One site with its region's name, counters and nodes; None if not registered."""
    row = conn.execute(_site_query().where(sites.c.id == site_id)).first()
    if row is None:
        return None
    region_name = None
    if row.region_id is not None:
        region_name = conn.execute(
            sa.select(regions.c.name).where(regions.c.id == row.region_id)
        ).scalar()
    site_counters = conn.execute(
        sa.select(counters.c.id, counters.c.name)
        .where(counters.c.site_id == site_id)
        .order_by(counters.c.id)
    )
    site_nodes = conn.execute(
        sa.select(*_NODE_COLUMNS).where(nodes.c.site_id == site_id).order_by(nodes.c.id)
    )
    return models.SiteDetail(
        **_site(row),
        region_name=region_name,
        counters=[models.Counter(id=c.id, name=c.name) for c in site_counters],
        nodes=_nodes(conn, site_nodes),
    )


def _alerts(
    conn: sa.Connection, *where: Any, limit: int | None = None, offset: int = 0
) -> list[models.Alert]:
    query = (
        sa.select(alerts).where(*where)
        .order_by(alerts.c.opened_at.desc(), alerts.c.id.desc())
        .limit(limit).offset(offset)
    )
    return [models.Alert.model_validate(dict(row._mapping)) for row in conn.execute(query)]


def alert_page(
    conn: sa.Connection, *, include_closed: bool, kind: str | None, site: str | None,
    node: str | None, limit: int, offset: int,
) -> models.AlertPage:
    """Alerts, newest first: only open ones unless ``include_closed``."""
    where = []
    if not include_closed:
        where.append(alerts.c.closed_at.is_(None))
    filters = ((alerts.c.kind, kind), (alerts.c.site_id, site), (alerts.c.node_id, node))
    for column, value in filters:
        if value is not None:
            where.append(column == value)
    return models.AlertPage(
        items=_alerts(conn, *where, limit=limit, offset=offset),
        total=_count(conn, sa.select(alerts.c.id).where(*where)),
        limit=limit, offset=offset,
    )


def events_summary(conn: sa.Connection, *, limit: int, offset: int) -> models.EventsSummary:
    """Rating taps and the share satisfied per site (summary.site_summaries), one page of it."""
    every = site_summaries(conn)
    taps = sum(s.taps for s in every)
    satisfied = sum(s.satisfied for s in every)
    return models.EventsSummary(
        items=[
            models.SiteSatisfaction(
                site_id=s.site, name=s.name, taps=s.taps, satisfied=s.satisfied,
                share=s.satisfied_share, nodes_online=s.nodes_online, nodes_total=s.nodes_total,
            )
            for s in every[offset : offset + limit]
        ],
        total=len(every), limit=limit, offset=offset,
        taps=taps, satisfied=satisfied, share=satisfied / taps if taps else None,
    )


def satisfaction_report(
    conn: sa.Connection, query: reports.ReportQuery, *, limit: int, offset: int
) -> models.SatisfactionReport:
    """fleet_server.reports' report for ``query``, with one page of its groups and cells.

    Raises reports.ReportError as that module does (an unknown region, site or node).
    """
    report = reports.satisfaction_report(conn, query)
    page = slice(offset, offset + limit)
    return models.SatisfactionReport(
        first_day=query.first_day, last_day=query.last_day, by=query.by.value,
        group=query.group.value if query.group else None, subject=report.subject,
        target_share=reports.TARGET_SHARE, total=_tally(report.total),
        trend=[models.TrendPoint(period=_period(r.period), tally=_tally(r.tally))
               for r in report.trend],
        groups=[models.GroupTally(group=_group(r.group), tally=_tally(r.tally))
                for r in report.groups[page]],
        groups_total=len(report.groups),
        cells=[models.ReportCell(period=_period(r.period),
                                 group=_group(r.group) if r.group else None, tally=_tally(r.tally))
               for r in report.rows[page]],
        cells_total=len(report.rows),
        limit=limit, offset=offset,
    )


def _tally(t: reports.Tally) -> models.Tally:
    return models.Tally(
        ratings=t.ratings, satisfied=t.satisfied, misuse_flagged=t.misuse_flagged,
        clock_unsynced=t.clock_unsynced, share=t.share, low=t.low, high=t.high,
        meets_target=t.meets_target,
    )


def _period(p: reports.PeriodSpan) -> models.ReportPeriod:
    return models.ReportPeriod(label=p.label, first=p.first, last=p.last)


def _group(g: reports.Group) -> models.ReportGroup:
    return models.ReportGroup(kind=g.kind.value, id=g.id, name=g.name)


def service_page(
    conn: sa.Connection, site_id: str, days: reports.ReportQuery, *, counter: str | None,
    limit: int, offset: int,
) -> models.ServicePage | None:
    """The services called at ``site_id`` on ``days``' local days, newest first, with
    their taps (fleet_server.service_tagging); None if the site is not registered."""
    if conn.execute(sa.select(sites.c.id).where(sites.c.id == site_id)).first() is None:
        return None
    start, end = days.utc_bounds()
    found, total = service_tagging.services_at(
        conn, site_id, start=start, end=end, counter=counter, limit=limit, offset=offset
    )
    return models.ServicePage(
        items=[
            models.Service(
                id=s.id, site_id=s.site_id, counter=s.counter, ticket=s.ticket,
                officer=s.officer, service=s.service, priority=s.priority,
                called_at=s.called_at, ends_at=s.ends_at, announcement_id=s.announcement_id,
                ratings=s.ratings, satisfied=s.satisfied,
                taps=[
                    models.ServiceTap(
                        node_id=t.node_id, event_id=t.event_id, at=t.at, rating=t.rating,
                        scale=t.scale, satisfied=is_satisfied(t.rating, t.scale),
                        misuse_flagged=t.suspect,
                    )
                    for t in s.taps
                ],
            )
            for s in found
        ],
        total=total, limit=limit, offset=offset,
    )
