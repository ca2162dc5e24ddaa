"""The node's on-disk outbox: every event waits here until the server has acked it.

One SQLite file in WAL mode with ``synchronous=FULL``: `record` returns only
after the event is on disk, so a power cut right after the citizen's feedback
loses nothing. Ids are random, so even a new outbox after a lost one cannot
make the server take a new tap for a duplicate of an old one; sequences are
per node and never reused within one file.

When the disk refuses a write (full, read-only, failing), events are held in
a bounded memory overflow, still sent, and written as soon as the disk takes
them again; `write_error` says why meanwhile. Nothing is dropped to make room:
beyond the bound `record` raises OutboxFull and the driver gives no thanks.
A file that SQLite cannot read is moved aside at open, what can be read from
it is carried over, and a new one is started (`replaced` says where it went).
"""

from __future__ import annotations

import json
import logging
import sqlite3
import time
import uuid
from collections import deque
from datetime import datetime
from pathlib import Path
from typing import Callable, Iterable

from rpfleet.protocol.messages import Event, EventDetail, event_detail_adapter

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    at          TEXT NOT NULL,
    synced      INTEGER,
    detail      TEXT NOT NULL,
    recorded_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS disk_probe (id INTEGER PRIMARY KEY, at REAL NOT NULL);
"""
_COLUMNS = "seq, id, at, synced, detail, recorded_at"


def _is_corrupt(exc: sqlite3.DatabaseError) -> bool:
    """SQLite read the file and it is not a sound database (as opposed to: could not write)."""
    name = getattr(exc, "sqlite_errorname", "")
    return name in ("SQLITE_CORRUPT", "SQLITE_NOTADB") or "quick_check" in str(exc)


class OutboxFull(RuntimeError):
    """The disk refuses writes and the memory overflow is full: the event was not taken."""


def write_alarm(error: str) -> str:
    """The health alarm code for a failed write, from SQLite's message."""
    text = error.lower()
    if "full" in text:
        return "disk-full"
    if "readonly" in text or "read-only" in text:
        return "disk-read-only"
    return "outbox-write-failed"


class Outbox:
    def __init__(
        self,
        path: Path,
        *,
        overflow_limit: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path
        self._overflow_limit = overflow_limit
        self._clock = clock
        self._db: sqlite3.Connection | None = None
        self._overflow: deque[tuple[Event, float]] = deque()
        self._next_seq = 1
        self.write_error: str | None = None
        self.replaced: Path | None = None
        self.salvaged = 0
        self._opened = False

    # life cycle ------------------------------------------------------------

    def open(self) -> "Outbox":
        """Open the file; a damaged one is replaced, an unwritable disk leaves events in memory."""
        self._opened = True
        self._reopen()
        return self

    def _reopen(self) -> bool:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            try:
                self._db = self._connect()
            except sqlite3.DatabaseError as exc:
                if not _is_corrupt(exc):
                    raise
                self._replace(exc)
        except (sqlite3.DatabaseError, OSError) as exc:
            self._fail(exc)
            return False
        self._next_seq = max(self._next_seq, self._last_seq() + 1)
        return True

    def close(self) -> None:
        self._opened = False
        db, self._db = self._db, None
        if db is not None:
            db.close()
        if self._overflow:
            log.error("outbox closed with %d event(s) only in memory", len(self._overflow))

    def __enter__(self) -> "Outbox":
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def db(self) -> sqlite3.Connection:
        if not self._opened:
            raise RuntimeError(f"outbox {self.path} is not open")
        if self._db is None and not self._reopen():
            raise sqlite3.OperationalError(self.write_error or "outbox file unavailable")
        assert self._db is not None
        return self._db

    @property
    def next_seq(self) -> int:
        return self._next_seq

    # writing ---------------------------------------------------------------

    def record(self, detail: EventDetail, at: datetime, clock_synced: bool | None = None) -> Event:
        """Give the event its id and sequence and keep it; returns once it is held.

        Held means on disk, or, while the disk refuses writes, in the bounded
        memory overflow. Raises OutboxFull when neither can take it.
        """
        event = Event(
            id=uuid.uuid4().hex, seq=self._next_seq, at=at, clock_synced=clock_synced, detail=detail
        )
        recorded_at = self._clock()
        if self._overflow:
            self.flush_overflow()
        if self._overflow:
            self._hold(event, recorded_at)
        else:
            try:
                with self.db:
                    self._insert([(event, recorded_at)])
            except sqlite3.DatabaseError as exc:
                self._fail(exc)
                self._hold(event, recorded_at)
            else:
                self._recovered()
        self._next_seq += 1
        return event

    def flush_overflow(self) -> bool:
        """Write events held in memory to disk, in order; True once the disk takes writes.

        With nothing held but a write error standing, a small real write tells
        whether the disk has recovered.
        """
        if not self._overflow and self.write_error is None:
            return True
        try:
            with self.db:
                if self._overflow:
                    self._insert(list(self._overflow))
                else:
                    self.db.execute("INSERT OR REPLACE INTO disk_probe VALUES (1, ?)", (self._clock(),))
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return False
        if self._overflow:
            log.warning("outbox: %d held event(s) written", len(self._overflow))
        self._overflow.clear()
        self._recovered()
        return True

    def ack(self, ids: Iterable[str]) -> int:
        """Forget acknowledged events; unknown ids (a late duplicate ack) are ignored."""
        ids = set(ids)
        held = len(self._overflow)
        self._overflow = deque(item for item in self._overflow if item[0].id not in ids)
        forgotten = held - len(self._overflow)
        try:
            with self.db:
                cursor = self.db.executemany("DELETE FROM events WHERE id = ?", [(i,) for i in ids])
            forgotten += cursor.rowcount
        except sqlite3.DatabaseError as exc:
            # Not forgotten yet: the server will ack these again when they are resent.
            self._fail(exc)
        return forgotten

    # reading ---------------------------------------------------------------

    def oldest(self, limit: int) -> list[Event]:
        return self._select(0, limit)

    def batch(self, limit: int, *, live_from: int, live_slots: int) -> list[Event]:
        """The oldest events, keeping ``live_slots`` places for events from ``live_from`` on.

        While a backlog drains, new taps ride along in every batch instead of
        waiting behind the whole backlog.
        """
        old = self.oldest(limit)
        if not old or old[-1].seq >= live_from:
            return old
        live = self._select(live_from, min(live_slots, limit))
        if not live:
            return old
        return old[: limit - len(live)] + live

    def pending(self) -> int:
        return self._on_disk("SELECT count(*) FROM events", 0) + len(self._overflow)

    @property
    def overflow(self) -> int:
        return len(self._overflow)

    def oldest_age(self) -> float | None:
        """Seconds since the oldest unacked event was recorded, or None when all are acked."""
        oldest = self._on_disk("SELECT min(recorded_at) FROM events", None)
        if oldest is None and self._overflow:
            oldest = self._overflow[0][1]
        return None if oldest is None else max(0.0, self._clock() - oldest)

    # internals -------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None)
        try:
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=FULL")
            db.executescript(_SCHEMA)
            verdict = db.execute("PRAGMA quick_check").fetchone()[0]
            if verdict != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {verdict}")
        except sqlite3.DatabaseError:
            db.close()
            raise
        db.isolation_level = "DEFERRED"
        return db

    def _replace(self, error: sqlite3.DatabaseError) -> None:
        stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime(self._clock()))
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for suffix in ("", "-wal", "-shm"):
            source = Path(f"{self.path}{suffix}")
            if source.exists():
                source.rename(Path(f"{aside}{suffix}"))
        log.error("outbox %s is unreadable (%s); moved to %s, starting a new one", self.path, error, aside)
        self.replaced = aside
        self._db = self._connect()
        self._salvage(aside)

    def _salvage(self, aside: Path) -> None:
        """Carry over whatever rows the damaged file still yields."""
        rows: list[tuple] = []
        try:
            with sqlite3.connect(f"file:{aside}?mode=ro", uri=True) as old:
                for row in old.execute(f"SELECT {_COLUMNS} FROM events ORDER BY seq"):
                    rows.append(row)
        except sqlite3.DatabaseError as exc:
            log.warning("salvaged %d event(s) from %s before: %s", len(rows), aside, exc)
        if rows:
            with self.db:
                self.db.executemany(
                    f"INSERT OR IGNORE INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)", rows
                )
        self.salvaged = len(rows)

    def _last_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'events'").fetchone()
        return row[0] if row else 0

    def _insert(self, items: list[tuple[Event, float]]) -> None:
        self.db.executemany(
            f"INSERT INTO events ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?)",
            [
                (
                    event.seq,
                    event.id,
                    event.at.isoformat(),
                    None if event.clock_synced is None else int(event.clock_synced),
                    event_detail_adapter.dump_json(event.detail, exclude_none=True).decode(),
                    recorded_at,
                )
                for event, recorded_at in items
            ],
        )

    def _select(self, from_seq: int, limit: int) -> list[Event]:
        """Up to ``limit`` events from sequence ``from_seq`` on: on disk first, then held ones."""
        try:
            rows = self.db.execute(
                f"SELECT {_COLUMNS} FROM events WHERE seq >= ? ORDER BY seq LIMIT ?", (from_seq, limit)
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            rows = []
        events = [
            Event(
                seq=seq, id=id_, at=at, detail=json.loads(detail),
                clock_synced=None if synced is None else bool(synced),
            )
            for seq, id_, at, synced, detail, _ in rows
        ]
        if len(events) < limit and self._overflow:
            events += [e for e, _ in self._overflow if e.seq >= from_seq][: limit - len(events)]
        return events

    def _on_disk(self, query: str, default: object):
        """A one-value query, or ``default`` while the file cannot be read."""
        try:
            return self.db.execute(query).fetchone()[0]
        except sqlite3.DatabaseError as exc:
            self._fail(exc)
            return default

    def _hold(self, event: Event, recorded_at: float) -> None:
        if len(self._overflow) >= self._overflow_limit:
            raise OutboxFull(
                f"disk refuses writes ({self.write_error}) and {len(self._overflow)} events are held"
            )
        self._overflow.append((event, recorded_at))

    def _recovered(self) -> None:
        if self.write_error is not None:
            log.warning("outbox: the disk takes writes again")
            self.write_error = None

    def _fail(self, exc: Exception) -> None:
        if self.write_error is None:
            log.error("outbox: the disk refuses writes: %s", exc)
        self.write_error = str(exc)
