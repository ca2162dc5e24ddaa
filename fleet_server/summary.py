"""Read-only views: satisfaction per site and per region, node presence, ingest errors."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from fleet_server.satisfaction import UNASSIGNED, satisfied_sql
from fleet_server.schema import events, ingest_errors, nodes, regions, sites


@dataclass(frozen=True)
class SiteSummary:
    site: str
    name: str
    taps: int
    satisfied: int
    nodes_online: int
    nodes_total: int
    region: str | None = None
    region_name: str | None = None

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.taps if self.taps else None


@dataclass(frozen=True)
class RegionSummary:
    region: str
    name: str
    sites: int
    taps: int
    satisfied: int
    nodes_online: int
    nodes_total: int

    @property
    def satisfied_share(self) -> float | None:
        return self.satisfied / self.taps if self.taps else None


def site_summaries(conn: sa.Connection) -> list[SiteSummary]:
    """One row per site that has nodes or taps; taps of unregistered nodes come last.

    As the city measures it (and as fleet_server.reports does), taps flagged as
    suspected misuse are left out of the counts.
    """
    taps = (
        sa.select(
            events.c.node_id,
            sa.func.count().label("taps"),
            sa.func.sum(
                sa.case((satisfied_sql(events.c.rating, events.c.scale), 1), else_=0)
            ).label("satisfied"),
        )
        .where(events.c.kind == "rating-tap", sa.not_(sa.func.coalesce(events.c.suspect, False)))
        .group_by(events.c.node_id)
        .subquery()
    )
    site_id = sa.func.coalesce(nodes.c.site_id, UNASSIGNED)
    query = (
        sa.select(
            site_id.label("site"),
            sa.func.coalesce(sa.func.max(sites.c.name), UNASSIGNED).label("name"),
            sa.func.coalesce(sa.func.sum(taps.c.taps), 0).label("taps"),
            sa.func.coalesce(sa.func.sum(taps.c.satisfied), 0).label("satisfied"),
            sa.func.sum(sa.case((nodes.c.state == "online", 1), else_=0)).label("online"),
            sa.func.count(nodes.c.id).label("total"),
            sa.func.max(sites.c.region_id).label("region"),
            sa.func.max(regions.c.name).label("region_name"),
        )
        .select_from(
            nodes.outerjoin(taps, taps.c.node_id == nodes.c.id)
            .outerjoin(sites, sites.c.id == nodes.c.site_id)
            .outerjoin(regions, regions.c.id == sites.c.region_id)
        )
        .group_by(site_id)
        .order_by(sa.case((site_id == UNASSIGNED, 1), else_=0), site_id)
    )
    return [
        SiteSummary(row.site, row.name, int(row.taps), int(row.satisfied), int(row.online),
                    int(row.total), row.region, row.region_name)
        for row in conn.execute(query)
    ]


def region_summaries(summaries: list[SiteSummary]) -> list[RegionSummary]:
    """The site summaries added up per region (pure); sites in no region come last."""
    grouped: dict[str, list[SiteSummary]] = {}
    for s in summaries:
        grouped.setdefault(s.region or UNASSIGNED, []).append(s)
    return [
        RegionSummary(
            region, members[0].region_name or UNASSIGNED, len(members),
            sum(s.taps for s in members), sum(s.satisfied for s in members),
            sum(s.nodes_online for s in members), sum(s.nodes_total for s in members),
        )
        for region, members in sorted(grouped.items(), key=lambda kv: (kv[0] == UNASSIGNED, kv[0]))
    ]


def ingest_error_counts(conn: sa.Connection) -> dict[tuple[str, str], int]:
    """(node, reason) -> how many payloads were refused for that reason."""
    rows = conn.execute(sa.select(ingest_errors.c.node_id, ingest_errors.c.reason, ingest_errors.c.count))
    return {(node, reason): int(count) for node, reason, count in rows}


def render(summaries: list[SiteSummary] | list[RegionSummary], *, per: str = "site") -> str:
    """The summary as a fixed-width table for a terminal; ``per`` names the rows ("site", "region")."""
    width = min(48, max([28, *(len(s.name) for s in summaries)]))
    lines = [f"{per:<{width}} {'nodes':>7} {'taps':>7} {'satisfied':>10}"]
    for s in summaries:
        share = f"{s.satisfied_share:.0%}" if s.satisfied_share is not None else "-"
        lines.append(f"{s.name[:width]:<{width}} {s.nodes_online:>3}/{s.nodes_total:<3} "
                     f"{s.taps:>7} {share:>10}")
    total = sum(s.taps for s in summaries)
    satisfied = sum(s.satisfied for s in summaries)
    overall = f"{satisfied / total:.0%}" if total else "-"
    lines.append(f"{'all ' + per + 's':<{width}} {'':>7} {total:>7} {overall:>10}")
    return "\n".join(lines)
