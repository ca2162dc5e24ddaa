"""What a site's dashboard shows at one moment: `site_dashboard` reads it from the store.

- **Calls**: the site's latest queue calls of the local (Hanoi) day, newest
  first, from the announcement channel (table ``announcements``): ticket ->
  counter. The newest is the one the hall is being called to.
- **Ratings**: today's rating taps at the site and the share satisfied, as
  fleet_server.reports counts them (misuse-flagged taps left out, the
  satisfied rule of fleet_server.satisfaction): this module does not count.
- **Counters**: every registered counter of the site, with its last ticket
  called today and whether it is *open* (`is_open`).

An open counter: it has served today (called a ticket, or its rating pad took
a tap, since local midnight) and its desk is not known to be down: when a
desk node (a node placed at the counter that is not a hall soundbox or
dashboard) exists, at least one of them is online. A desk node that is online
all day at an unstaffed desk does not open a counter; a counter without a node
of its own (called through the hall's soundbox) opens by its calls alone.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field

from fleet_server import reports, store
from fleet_server.announcements import HALL_KINDS, QUEUE_CALL, node_kinds
from fleet_server.schema import announcements, counters, nodes, sites

CALLS_SHOWN = 8
"""The latest calls listed: what fits a 1080p screen in type read across a hall."""


class _Shown(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CallShown(_Shown):
    ticket: str = Field(description="The ticket number called.")
    counter: str = Field(description="The counter id it is called to.")
    counter_label: str = Field(description="What the hall reads: the counter's name, "
                                           "or 'Quầy' and its id.")
    called_at: datetime = Field(description="When the call was made (UTC).")
    priority: bool = Field(description="A priority ticket (elderly, disabled, pregnant).")


class CounterShown(_Shown):
    id: str
    label: str = Field(description="The counter's name, or 'Quầy' and its id.")
    open: bool = Field(description="Served today and its desk is not down "
                                   "(see docs/dashboard.md).")
    ticket: str | None = Field(description="The last ticket it called today, if any.")


class SiteDashboard(_Shown):
    """One site's dashboard; equal snapshots show the same screen."""

    site_id: str
    site_name: str
    day: date = Field(description="The local (Hanoi) day shown.")
    calls: tuple[CallShown, ...] = Field(description="Today's latest calls, newest first.")
    ratings: int = Field(description="Today's rating taps that count (misuse-flagged left out).")
    satisfied: int = Field(description="Of those, how many were satisfied.")
    share: float | None = Field(description="satisfied / ratings; null without ratings.")
    counters: tuple[CounterShown, ...] = Field(description="Every counter of the site, by id.")


def counter_label(counter_id: str, name: str | None) -> str:
    """What the hall reads for a counter: its registered name, else "Quầy <id>"."""
    return name or f"Quầy {counter_id}"


def is_open(served_today: bool, desk_states: list[str]) -> bool:
    """The open-counter rule of the module docstring: ``desk_states`` are the
    states of the counter's desk nodes (retired ones left out)."""
    return served_today and (not desk_states or "online" in desk_states)


def site_dashboard(conn: sa.Connection, site_id: str, now: datetime | None = None
                   ) -> SiteDashboard | None:
    """The dashboard of ``site_id`` for the local day of ``now`` (default: now);
    None when no such site is registered."""
    site_name = conn.execute(sa.select(sites.c.name).where(sites.c.id == site_id)).scalar()
    if site_name is None:
        return None
    today = (now or store.utc_now()).astimezone(reports.LOCAL_ZONE).date()
    day = reports.ReportQuery(today, today, site=site_id, group=reports.Grouping.COUNTER)
    start, end = day.utc_bounds()
    names = dict(conn.execute(
        sa.select(counters.c.id, counters.c.name).where(counters.c.site_id == site_id)
    ).all())

    todays_calls = sa.and_(
        announcements.c.site_id == site_id, announcements.c.kind == QUEUE_CALL,
        announcements.c.created_at >= start, announcements.c.created_at < end,
    )
    latest = conn.execute(
        sa.select(announcements.c.ticket, announcements.c.counter, announcements.c.created_at,
                  announcements.c.request)
        .where(todays_calls)
        .order_by(announcements.c.pk.desc())
        .limit(CALLS_SHOWN)
    ).all()
    last_per_counter = sa.select(sa.func.max(announcements.c.pk)).where(todays_calls).group_by(
        announcements.c.counter)
    last_ticket = dict(conn.execute(
        sa.select(announcements.c.counter, announcements.c.ticket)
        .where(announcements.c.pk.in_(last_per_counter))
    ).all())

    report = reports.satisfaction_report(conn, day)
    tapped = {row.group.id.removeprefix(f"{site_id}/") for row in report.groups
              if row.group is not None and row.tally.ratings + row.tally.misuse_flagged}

    placed = conn.execute(
        sa.select(nodes.c.id, nodes.c.counter, nodes.c.state)
        .where(nodes.c.site_id == site_id, nodes.c.state != "retired")
    ).all()
    kinds = node_kinds(conn, [row.id for row in placed])
    desks: dict[str, list[str]] = {}
    for row in placed:
        if kinds.get(row.id) not in HALL_KINDS and row.counter is not None:
            desks.setdefault(row.counter, []).append(row.state)

    return SiteDashboard(
        site_id=site_id, site_name=site_name, day=today,
        calls=tuple(
            CallShown(ticket=row.ticket or "", counter=row.counter,
                      counter_label=counter_label(row.counter, names.get(row.counter)),
                      called_at=store.as_utc(row.created_at),
                      priority=bool((row.request or {}).get("priority")))
            for row in latest
        ),
        ratings=report.total.ratings, satisfied=report.total.satisfied, share=report.total.share,
        counters=tuple(
            CounterShown(id=cid, label=counter_label(cid, name),
                         open=is_open(cid in last_ticket or cid in tapped, desks.get(cid, [])),
                         ticket=last_ticket.get(cid))
            for cid, name in sorted(names.items(), key=lambda kv: _counter_order(kv[0]))
        ),
    )


def _counter_order(counter_id: str) -> tuple[int, int, str]:
    # Numbered counters in number order (2 before 10), named ones after them.
    return (0, int(counter_id), "") if counter_id.isdigit() else (1, 0, counter_id)
