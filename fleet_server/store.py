"""The server's store: SQLAlchemy Core over SQLite (WAL, the embedded default) or
PostgreSQL, chosen by one URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server import migrate
from fleet_server.schema import dead_letters, events, ingest_errors, nodes, sites

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
    """Insert events, ignoring ones already stored (same node and event id)."""
    if not rows:
        return 0
    # RETURNING counts what was new on both backends (rowcount of a batched
    # insert is not reliable on psycopg).
    stmt = (
        _insert(conn, events)
        .on_conflict_do_nothing(index_elements=["node_id", "event_id"])
        .returning(events.c.pk)
    )
    return len(conn.execute(stmt, rows).all())


def update_node(conn: sa.Connection, node: str, **values: Any) -> None:
    """Create the node row if it is new, and set ``values`` on it."""
    stmt = _insert(conn, nodes).values(id=node, **values)
    conn.execute(stmt.on_conflict_do_update(index_elements=["id"], set_=values))


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
