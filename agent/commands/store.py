"""The node's record of the commands it was given: what keeps a command at most once.

One SQLite file (WAL, ``synchronous=FULL``: every commit is fsync'd) beside the
outbox. A command's id is written as ``started`` *before* its effect, and its
result as ``finished`` once it is known; a row found ``started`` when the agent
starts again was cut short by a crash, a kill or a power cut, and is reported
``failed`` ("interrupted"), never run again. Results stay here until the
server's `Ack` names their id, and are sent again on every reconnect until then.

Ids are kept until `KEEP_AFTER_EXPIRY` after their command's expiry (and their
result acked): a redelivery after that is refused as expired anyway, so the
file stays small however many commands a node is given.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Iterable

from rpfleet.protocol.messages import CommandResult

log = logging.getLogger(__name__)

KEEP_AFTER_EXPIRY = timedelta(days=1)
_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS commands (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    issuer      TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('started', 'finished')),
    started_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    result      TEXT,
    acked       INTEGER NOT NULL DEFAULT 0
);
"""


@dataclass(frozen=True)
class Entry:
    """What the node knows of one command id."""

    id: str
    name: str
    state: str
    """``started``: its effect may have begun; ``finished``: ``result`` holds its outcome."""
    expires_at: datetime
    result: CommandResult | None
    acked: bool


class CommandStore:
    """The executed-ids file. Every method commits (and fsyncs) before it returns."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._db: sqlite3.Connection | None = None

    def open(self) -> "CommandStore":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        self._db = db
        return self

    def close(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("the command store is not open")
        return self._db

    def get(self, command_id: str) -> Entry | None:
        row = self._conn.execute(
            "SELECT id, name, state, expires_at, result, acked FROM commands WHERE id = ?",
            (command_id,),
        ).fetchone()
        return None if row is None else _entry(row)

    def start(self, command_id: str, name: str, issuer: str, expires_at: datetime,
              now: datetime) -> bool:
        """Record ``command_id`` as started; False (and nothing written) if it is known already."""
        cursor = self._conn.execute(
            "INSERT OR IGNORE INTO commands (id, name, issuer, state, started_at, expires_at) "
            "VALUES (?, ?, ?, 'started', ?, ?)",
            (command_id, name, issuer, _iso(now), _iso(expires_at)),
        )
        return cursor.rowcount == 1

    def finish(self, result: CommandResult, name: str = "?", issuer: str = "?",
               expires_at: datetime | None = None) -> None:
        """Keep ``result`` as the outcome of its command (recording the id if it was not)."""
        at = result.finished_at
        self._conn.execute(
            "INSERT INTO commands (id, name, issuer, state, started_at, expires_at, result) "
            "VALUES (?, ?, ?, 'finished', ?, ?, ?) "
            "ON CONFLICT (id) DO UPDATE SET state = 'finished', result = excluded.result",
            (result.id, name, issuer, _iso(at), _iso(expires_at or at), result.to_json().decode()),
        )

    def interrupted(self) -> list[Entry]:
        """Commands started and never finished: a crash, kill or power cut came between."""
        rows = self._conn.execute(
            "SELECT id, name, state, expires_at, result, acked FROM commands "
            "WHERE state = 'started' ORDER BY started_at"
        ).fetchall()
        return [_entry(row) for row in rows]

    def unacked(self) -> list[CommandResult]:
        """Results the server has not confirmed yet, oldest first."""
        rows = self._conn.execute(
            "SELECT id, name, state, expires_at, result, acked FROM commands "
            "WHERE state = 'finished' AND acked = 0 ORDER BY started_at"
        ).fetchall()
        return [entry.result for entry in map(_entry, rows) if entry.result is not None]

    def acked(self, ids: Iterable[str]) -> int:
        """Mark the results of ``ids`` confirmed; ids this node does not know are ignored."""
        ids = list(ids)
        if not ids:
            return 0
        marks = ",".join("?" * len(ids))
        cursor = self._conn.execute(
            f"UPDATE commands SET acked = 1 WHERE state = 'finished' AND acked = 0 "
            f"AND id IN ({marks})", ids,
        )
        return cursor.rowcount

    def prune(self, now: datetime) -> int:
        """Forget acked commands whose expiry is more than `KEEP_AFTER_EXPIRY` past."""
        cursor = self._conn.execute(
            "DELETE FROM commands WHERE acked = 1 AND expires_at < ?",
            (_iso(now - KEEP_AFTER_EXPIRY),),
        )
        return cursor.rowcount

    def count(self) -> int:
        return self._conn.execute("SELECT count(*) FROM commands").fetchone()[0]


def _iso(at: datetime) -> str:
    # One zone and one format, so that text order is time order.
    return at.astimezone(timezone.utc).strftime(_FORMAT)


def _entry(row: tuple) -> Entry:
    command_id, name, state, expires_at, result, acked = row
    return Entry(
        id=command_id,
        name=name,
        state=state,
        expires_at=datetime.strptime(expires_at, _FORMAT).replace(tzinfo=timezone.utc),
        result=CommandResult.model_validate_json(result) if result else None,
        acked=bool(acked),
    )
