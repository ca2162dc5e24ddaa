"""The server's store: SQLAlchemy Core over SQLite (WAL, the embedded default) or
PostgreSQL, chosen by one URL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

metadata = sa.MetaData()

sites = sa.Table(
    "sites",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
)

nodes = sa.Table(
    "nodes",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("site_id", sa.String(64), sa.ForeignKey("sites.id"), nullable=True),
    sa.Column("counter", sa.String(64), nullable=True),
    sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
    sa.Column("state_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True),
    sa.Column("agent_version", sa.String(64), nullable=True),
    sa.Column("last_health", sa.JSON, nullable=True),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("pk", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("event_id", sa.String(32), nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("clock_synced", sa.Boolean, nullable=True),
    sa.Column("rating", sa.SmallInteger, nullable=True),
    sa.Column("scale", sa.SmallInteger, nullable=True),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.UniqueConstraint("node_id", "event_id", name="uq_events_node_event"),
)

ingest_errors = sa.Table(
    "ingest_errors",
    metadata,
    sa.Column("node_id", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(32), primary_key=True),
    sa.Column("count", sa.BigInteger, nullable=False),
    sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_detail", sa.Text, nullable=True),
)

dead_letters = sa.Table(
    "dead_letters",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("node_id", sa.String(64), nullable=False),
    sa.Column("topic", sa.Text, nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("detail", sa.Text, nullable=True),
    sa.Column("payload", sa.LargeBinary, nullable=False),
)

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


def connect(url: str) -> sa.Engine:
    """An engine for ``url`` with the schema in place (SQLite: WAL, foreign keys on)."""
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA busy_timeout=10000")
            cursor.close()

    metadata.create_all(engine)
    return engine


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    return dialect.insert(table)


def insert_events(conn: sa.Connection, rows: list[dict[str, Any]]) -> int:
    """Insert events, ignoring ones already stored (same node and event id)."""
    if not rows:
        return 0
    result = conn.execute(
        _insert(conn, events).on_conflict_do_nothing(index_elements=["node_id", "event_id"]),
        rows,
    )
    return max(result.rowcount, 0)


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
