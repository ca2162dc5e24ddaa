"""The server's store: SQLAlchemy Core over SQLite (WAL, the embedded default) or
PostgreSQL, chosen by one URL."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server import migrate
from fleet_server.schema import dead_letters, events, ingest_errors, nodes, peripherals, sites

DEAD_LETTER_LIMIT = 1000
UNKNOWN_NODE = "?"
"""Stands for the node of a message whose topic named none we could accept."""


@dataclass(frozen=True)
class Rejection:
    node: str
    topic: str
    reason: str
    detail: str
    payload: bytes


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(at: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime (SQLite hands back naive ones; the store writes UTC)."""
    return at.replace(tzinfo=timezone.utc) if at is not None and at.tzinfo is None else at


def connect(url: str, *, migrate_empty: bool = True) -> sa.Engine:
    """An engine for ``url`` whose schema is current (SQLite: WAL).

    An empty database is created; one at an older revision raises
    migrate.OutOfDate naming the command that upgrades it.
    """
    engine = engine_for(url)
    if migrate_empty:
        migrate.require_head(engine)
    return engine


def engine_for(url: str) -> sa.Engine:
    """An engine for ``url``, schema untouched (SQLite: WAL, a busy timeout)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    return engine


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    return dialect.insert(table)


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert events, ignoring ones already stored (same node and event id);
    returns how many were new."""
    if not rows:
        return 0
    # A plain executemany counted by rowcount (preserve_rowcount: sqlite3 and
    # psycopg 3 both sum it over the rows). RETURNING made SQLAlchemy send one
    # multi-row VALUES statement whose ~12 placeholders a row psycopg parses
    # anew each time: 2-3x the CPU per event on PostgreSQL (docs/benchmarks.md).
    stmt = _insert_events_stmt(conn.dialect.name)
    new = conn.execution_options(preserve_rowcount=True).execute(stmt, rows).rowcount
    if new < 0:  # a driver that does not say: count with RETURNING after all
        return len(conn.execute(stmt.returning(events.c.pk), rows).all())
    return new


# Statements the ingest runs at every group commit are built once: building one
# (excluded columns, cache key) cost more CPU than a small group's rows did.


@functools.cache
def _insert_events_stmt(dialect: str) -> Any:
    insert = {"sqlite": sqlite, "postgresql": postgresql}[dialect].insert(events)
    return insert.on_conflict_do_nothing(index_elements=["node_id", "event_id"])


@functools.cache
def _update_nodes_stmt(dialect: str, columns: tuple[str, ...]) -> Any:
    insert = {"sqlite": sqlite, "postgresql": postgresql}[dialect].insert(nodes)
    return insert.on_conflict_do_update(
        index_elements=["id"], set_={c: insert.excluded[c] for c in columns}
    )


def update_node(conn: sa.Connection, node: str, **values: Any) -> None:
    """Create the node row if it is new, and set ``values`` on it."""
    stmt = _insert(conn, nodes).values(id=node, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


def update_nodes(conn: sa.Connection, updates: dict[str, dict[str, Any]]) -> None:
    """`update_node` for many nodes: one executemany per set of columns.

    Ingest touches every node it heard from in each group commit; one statement
    built per node cost more CPU than storing the events (docs/benchmarks.md).
    """
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for node, values in updates.items():
        groups.setdefault(tuple(sorted(values)), []).append({**values, "id": node})
    for columns, rows in groups.items():
        conn.execute(_update_nodes_stmt(conn.dialect.name, columns), rows)


def record_rejections(conn: sa.Connection, rejections: Iterable[Rejection], at: datetime) -> None:
    for r in rejections:
        stmt = _insert(conn, ingest_errors).values(
            node_id=r.node, reason=r.reason, count=1, last_at=at, last_detail=r.detail
        )
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["node_id", "reason"],
                set_={
                    "count": ingest_errors.c.count + 1,
                    "last_at": at,
                    "last_detail": r.detail,
                },
            )
        )
        conn.execute(
            dead_letters.insert().values(
                at=at, node_id=r.node, topic=r.topic, reason=r.reason, detail=r.detail,
                payload=r.payload,
            )
        )


def prune_dead_letters(conn: sa.Connection, keep: int = DEAD_LETTER_LIMIT) -> None:
    newest_kept = (
        sa.select(dead_letters.c.id).order_by(dead_letters.c.id.desc()).offset(keep - 1).limit(1)
    ).scalar_subquery()
    conn.execute(dead_letters.delete().where(dead_letters.c.id < newest_kept))


def add_site(conn: sa.Connection, site_id: str, name: str, kind: str) -> None:
    stmt = _insert(conn, sites).values(id=site_id, name=name, kind=kind)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_={"name": name, "kind": kind}))


def assign_node(conn: sa.Connection, node: str, site_id: str, counter: str | None) -> None:
    update_node(conn, node, site_id=site_id, counter=counter)


def sync_peripherals(
    conn: sa.Connection, node: str, reported: list[dict[str, Any]], at: datetime
) -> None:
    """Make the node's rows in `peripherals` what its latest health reports.

    ``reported`` holds dicts with ``id``, ``kind``, ``state`` and ``detail``.
    A row changes, and its ``updated_at`` moves to ``at``, only when its kind,
    state or detail changes: ``updated_at`` says since when a peripheral is in
    its state. A peripheral the health no longer lists is deleted: health lists
    every configured peripheral (one that is unplugged stays listed, as
    ``missing``), so an absent one was taken out of the node's config. The node
    row must exist (`update_node` first).
    """
    if reported:
        stmt = _insert(conn, peripherals)
        changed = sa.or_(*(
            peripherals.c[name].is_distinct_from(stmt.excluded[name])
            for name in ("kind", "state", "detail")
        ))
        conn.execute(
            stmt.on_conflict_do_update(
                index_elements=["node_id", "id"],
                set_={name: stmt.excluded[name] for name in ("kind", "state", "detail", "updated_at")},
                where=changed,
            ),
            [{"node_id": node, "updated_at": at, "detail": None, **p} for p in reported],
        )
    conn.execute(
        peripherals.delete().where(
            peripherals.c.node_id == node, peripherals.c.id.not_in([p["id"] for p in reported])
        )
    )
