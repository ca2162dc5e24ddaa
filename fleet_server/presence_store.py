"""The presence rules of `fleet_server.presence`, applied by conditional SQL.

Each rule is one statement whose conditions read the row as it is when the
statement runs, so concurrent workers cannot lose each other's updates and
re-running a statement changes nothing: no lock is needed for correctness.
Works on SQLite and PostgreSQL (upserts; no GREATEST, which SQLite lacks).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server.presence import OFFLINE, ONLINE, REVIVABLE
from fleet_server.schema import nodes


@dataclass(frozen=True)
class StatusSeen:
    """A status message (or a cleared status: ``retired``) as received."""

    node: str
    state: str
    at: datetime
    retained: bool = False


def _upsert(conn: sa.Connection) -> Any:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    return dialect.insert(nodes)


def _later(current: Any, candidate: Any) -> Any:
    """The later of a column and a value (NULL counts as earliest)."""
    return sa.case(
        (sa.or_(current.is_(None), current < candidate), candidate), else_=current
    )


def record_heard(conn: sa.Connection, heard: dict[str, datetime]) -> None:
    """`Presence.heard` for each node (node -> newest receive time), creating new nodes."""
    if not heard:
        return
    stmt = _upsert(conn)
    new_time = stmt.excluded.last_seen
    # Constants written into the SQL, not bound: this runs for every node in
    # every group commit, and bound constants cost psycopg per row.
    revived = sa.and_(
        nodes.c.state.in_([sa.literal_column(f"'{s}'") for s in REVIVABLE]),
        sa.or_(nodes.c.state_at.is_(None), nodes.c.state_at < new_time),
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[nodes.c.id],
            set_={
                "last_seen": _later(nodes.c.last_seen, new_time),
                "state": sa.case((revived, stmt.excluded.state), else_=nodes.c.state),
            },
        ),
        [{"id": node, "state": ONLINE, "last_seen": at} for node, at in heard.items()],
    )


def record_status(conn: sa.Connection, seen: StatusSeen) -> None:
    """`Presence.status` for one status message, creating the node if it is new."""
    proof = seen.state == ONLINE and not seen.retained
    at = sa.literal(seen.at, nodes.c.state_at.type)
    last_seen = _later(nodes.c.last_seen, at) if proof else nodes.c.last_seen
    if seen.retained and seen.state == ONLINE:
        accepted = nodes.c.state_at.is_(None)
    else:
        accepted = sa.or_(nodes.c.state_at.is_(None), nodes.c.state_at <= at)
    if seen.state == OFFLINE:
        talked_since = sa.and_(last_seen.is_not(None), last_seen > at)
        shown: Any = sa.case((talked_since, ONLINE), else_=OFFLINE)
    else:
        shown = sa.literal(seen.state)
    # Not accepted means received before the row's status, so `heard` revives nothing either.
    stmt = _upsert(conn).values(
        id=seen.node, state=seen.state, state_at=seen.at, last_seen=seen.at if proof else None
    )
    conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[nodes.c.id],
            set_={
                "last_seen": last_seen,
                "state": sa.case((accepted, shown), else_=nodes.c.state),
                "state_at": sa.case((accepted, at), else_=nodes.c.state_at),
            },
        )
    )


def record(conn: sa.Connection, statuses: Iterable[StatusSeen], heard: dict[str, datetime]) -> None:
    """Apply one group of received messages (any order gives the same result)."""
    for seen in statuses:
        record_status(conn, seen)
    record_heard(conn, heard)


def sweep(conn: sa.Connection, now: datetime, timeout: timedelta) -> list[str]:
    """`Presence.silent` for every node: the ids of the nodes it marked offline."""
    reference = sa.case(
        (nodes.c.last_seen.is_(None), nodes.c.state_at),
        (nodes.c.state_at.is_(None), nodes.c.last_seen),
        (nodes.c.last_seen > nodes.c.state_at, nodes.c.last_seen),
        else_=nodes.c.state_at,
    )
    cutoff = sa.literal(now - timeout, nodes.c.last_seen.type)
    result = conn.execute(
        nodes.update()
        .where(nodes.c.state == ONLINE, reference < cutoff)
        .values(state=OFFLINE, state_at=reference)
        .returning(nodes.c.id)
    )
    return sorted(result.scalars())
