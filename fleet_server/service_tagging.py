"""Which service a rating tap belongs to, resolved when the taps are read.

A queue call starts a service at its counter (fleet_server.announcements):
a ticket, perhaps an officer, and a window from the call to the next call at
that counter or `SERVICE_TIMEOUT` later, whichever comes first. A rating tap
belongs to the service whose window at the tap's counter holds the tap's
``at`` (the node's clock when the citizen pressed), not its ``received_at``.
The tap's site is its node's, its counter the pad's or else the node's, as
in the satisfaction reports.

Why resolved at read time rather than stamped on the event at ingest:

- taps arrive late (a node's outbox drains after an outage, hours later);
  stamping them would need the same window lookup at ingest anyway, and a
  tap stored before a call was recorded (a node clock running ahead) would
  keep a wrong stamp for ever;
- the windows are facts of the ``services`` table alone, closed when the
  next call is recorded; reading taps through them is one indexed range join
  per page of services, so nothing is rewritten and ingest stays as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from fleet_server.satisfaction import is_satisfied
from fleet_server.schema import events, nodes, services
from fleet_server.store import as_utc


@dataclass(frozen=True)
class Tap:
    node_id: str
    event_id: str
    at: datetime
    rating: int
    scale: int
    suspect: bool
    """Flagged as misuse by the node: shown, but not counted as a rating."""


@dataclass(frozen=True)
class Service:
    id: int
    site_id: str
    counter: str
    ticket: str
    officer: str | None
    service: str | None
    priority: bool
    called_at: datetime
    ends_at: datetime
    announcement_id: str
    taps: tuple[Tap, ...]

    @property
    def ratings(self) -> int:
        """Taps that count (misuse-flagged ones left out), as in the reports."""
        return sum(1 for t in self.taps if not t.suspect)

    @property
    def satisfied(self) -> int:
        return sum(1 for t in self.taps if not t.suspect and is_satisfied(t.rating, t.scale))


def services_at(
    conn: sa.Connection,
    site_id: str,
    *,
    start: datetime,
    end: datetime,
    counter: str | None = None,
    limit: int,
    offset: int = 0,
) -> tuple[list[Service], int]:
    """One page of the services called at ``site_id`` in [``start``, ``end``) (UTC),
    newest first, each with its rating taps; and how many there are in all."""
    where = [services.c.site_id == site_id, services.c.called_at >= start,
             services.c.called_at < end]
    if counter is not None:
        where.append(services.c.counter == counter)
    total = conn.execute(
        sa.select(sa.func.count()).select_from(services).where(*where)
    ).scalar_one()
    rows = conn.execute(
        sa.select(services).where(*where)
        .order_by(services.c.called_at.desc(), services.c.id.desc())
        .limit(limit).offset(offset)
    ).all()
    taps = taps_of(conn, [row.id for row in rows])
    return [
        Service(row.id, row.site_id, row.counter, row.ticket, row.officer, row.service,
                bool(row.priority), as_utc(row.called_at), as_utc(row.ends_at),
                row.announcement_id, tuple(taps.get(row.id, ())))
        for row in rows
    ], int(total)


def taps_of(conn: sa.Connection, service_ids: list[int]) -> dict[int, list[Tap]]:
    """The rating taps of each service in ``service_ids``, oldest first."""
    if not service_ids:
        return {}
    counter_id = sa.func.coalesce(events.c.counter, nodes.c.counter)
    query = (
        sa.select(services.c.id.label("service_id"), services.c.called_at, events.c.node_id,
                  events.c.event_id, events.c.at, events.c.rating, events.c.scale,
                  events.c.suspect)
        .select_from(
            services.join(nodes, nodes.c.site_id == services.c.site_id).join(
                events,
                sa.and_(events.c.node_id == nodes.c.id, counter_id == services.c.counter,
                        events.c.at >= services.c.called_at, events.c.at < services.c.ends_at),
            )
        )
        .where(services.c.id.in_(service_ids), events.c.kind == "rating-tap",
               events.c.rating.is_not(None))
        .order_by(services.c.called_at, events.c.at, events.c.node_id, events.c.event_id)
    )
    # Windows at a counter do not overlap, except when two calls there raced on two
    # workers; a tap then goes to the later call only (rows come by called_at).
    owner: dict[tuple[str, str], int] = {}
    found: dict[tuple[str, str], Tap] = {}
    for row in conn.execute(query):
        key = (row.node_id, row.event_id)
        owner[key] = row.service_id
        found[key] = Tap(row.node_id, row.event_id, as_utc(row.at), int(row.rating),
                         int(row.scale), bool(row.suspect))
    taps: dict[int, list[Tap]] = {}
    for key, tap in sorted(found.items(), key=lambda item: (item[1].at, item[0])):
        taps.setdefault(owner[key], []).append(tap)
    return taps
