from __future__ import annotations

import sqlite3
from pathlib import Path

import sqlalchemy as sa

from fleet_server.schema import dead_letters, events, ingest_errors, nodes


def stored_events(server, node: str) -> list[sa.Row]:
    with server.engine.connect() as conn:
        return list(
            conn.execute(sa.select(events).where(events.c.node_id == node).order_by(events.c.seq))
        )


def node_row(server, node: str) -> sa.Row | None:
    with server.engine.connect() as conn:
        return conn.execute(sa.select(nodes).where(nodes.c.id == node)).first()


def errors(server) -> dict[tuple[str, str], int]:
    with server.engine.connect() as conn:
        rows = conn.execute(sa.select(ingest_errors.c.node_id, ingest_errors.c.reason, ingest_errors.c.count))
        return {(n, r): c for n, r, c in rows}


def dead_letter_payloads(server) -> list[bytes]:
    with server.engine.connect() as conn:
        return [row.payload for row in conn.execute(sa.select(dead_letters).order_by(dead_letters.c.id))]


def outbox_ids(state_dir: Path) -> list[str]:
    """Ids waiting in an agent's outbox, read without disturbing the agent."""
    path = state_dir / "outbox.sqlite"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            return [row[0] for row in db.execute("SELECT id FROM events ORDER BY seq")]
    except sqlite3.OperationalError:
        return []  # the agent has created the file but not its table yet


def stored_seqs(server, node: str) -> list[int]:
    return [row.seq for row in stored_events(server, node)]
