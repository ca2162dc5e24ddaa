"""Where each node is and how it and its peripherals are: `rpfleet server nodes`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fleet_server.schema import nodes, peripherals, sites
from fleet_server.store import as_utc


@dataclass(frozen=True)
class PeripheralLine:
    id: str
    kind: str
    state: str


@dataclass(frozen=True)
class NodeLine:
    node: str
    site: str | None
    counter: str | None
    state: str
    last_seen: datetime | None
    peripherals: tuple[PeripheralLine, ...]


def list_nodes(conn: sa.Connection, *, site: str | None = None,
               region: str | None = None) -> list[NodeLine]:
    """Nodes ordered by site and node id (unassigned ones last), optionally of one site or region."""
    query = sa.select(nodes.c.id, nodes.c.site_id, nodes.c.counter, nodes.c.state, nodes.c.last_seen)
    if site is not None:
        query = query.where(nodes.c.site_id == site)
    if region is not None:
        query = query.where(nodes.c.site_id.in_(sa.select(sites.c.id).where(sites.c.region_id == region)))
    query = query.order_by(nodes.c.site_id.is_(None), nodes.c.site_id, nodes.c.id)
    found = list(conn.execute(query))
    attached: dict[str, list[PeripheralLine]] = {}
    wanted = sa.select(peripherals.c.node_id, peripherals.c.id, peripherals.c.kind,
                       peripherals.c.state).order_by(peripherals.c.node_id, peripherals.c.id)
    if site is not None or region is not None:
        wanted = wanted.where(peripherals.c.node_id.in_([row.id for row in found]))
    for row in conn.execute(wanted):
        attached.setdefault(row.node_id, []).append(PeripheralLine(row.id, row.kind, row.state))
    return [
        NodeLine(row.id, row.site_id, row.counter, row.state, as_utc(row.last_seen),
                 tuple(attached.get(row.id, ())))
        for row in found
    ]


def ago(at: datetime | None, now: datetime) -> str:
    """How long ago ``at`` was, in the largest whole unit: "12s ago", "3h ago"; "never"."""
    if at is None:
        return "never"
    seconds = max(0, int((now - at).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit} ago"
    return f"{seconds}s ago"


def render_nodes(lines: list[NodeLine], now: datetime) -> str:
    """A fixed-width table; a peripheral shows as ``id state`` (``pad-1 ok``)."""
    rows = [("node", "site", "counter", "state", "last seen", "peripherals")] + [
        (n.node, n.site or "-", n.counter or "-", n.state, ago(n.last_seen, now),
         ", ".join(f"{p.id} {p.state}" for p in n.peripherals) or "-")
        for n in lines
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(5)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths)) + "  " + row[5]
        for row in rows
    )
