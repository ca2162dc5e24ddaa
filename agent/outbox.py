"""The node's on-disk outbox: every event waits here until the server has acked it.

One SQLite file in WAL mode with ``synchronous=FULL``: `record` returns only
after the event is on disk, so a power cut right after the citizen's feedback
loses nothing. The sequence is SQLite's AUTOINCREMENT rowid, never reused in
one file; the id is random, so even a new outbox after a lost one cannot make
the server mistake a new tap for a duplicate of an old one.
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from datetime import datetime
from pathlib import Path
from typing import Iterable

from rpfleet.protocol.messages import Event, EventDetail, event_detail_adapter

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    id     TEXT NOT NULL UNIQUE,
    at     TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class Outbox:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> "Outbox":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db
        return self

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    def __enter__(self) -> "Outbox":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError(f"outbox {self.path} is not open")
        return self._db

    def record(self, detail: EventDetail, at: datetime) -> Event:
        """Give the event its id and sequence and commit it; returns it once durable."""
        event_id = uuid.uuid4().hex
        detail_json = event_detail_adapter.dump_json(detail, exclude_none=True).decode()
        cursor = self.db.execute(
            "INSERT INTO events (id, at, detail) VALUES (?, ?, ?)",
            (event_id, at.isoformat(), detail_json),
        )
        return Event(id=event_id, seq=cursor.lastrowid, at=at, detail=detail)

    def oldest(self, limit: int) -> list[Event]:
        rows = self.db.execute(
            "SELECT seq, id, at, detail FROM events ORDER BY seq LIMIT ?", (limit,)
        )
        return [
            Event(id=id_, seq=seq, at=at, detail=json.loads(detail))
            for seq, id_, at, detail in rows
        ]

    def ack(self, ids: Iterable[str]) -> int:
        """Forget acknowledged events; unknown ids (a late duplicate ack) are ignored."""
        ids = list(ids)
        with self.db:
            self.db.execute("BEGIN")
            cursor = self.db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
        return cursor.rowcount

    def pending(self) -> int:
        return self.db.execute("SELECT count(*) FROM events").fetchone()[0]
