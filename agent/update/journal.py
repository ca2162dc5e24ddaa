"""The update journal: where an update stands, kept on disk so a power cut resumes it.

One JSON file, ``<state_dir>/update/journal.json``, replaced atomically (fsync + rename)
before any step it announces is taken (write-ahead): whatever is on disk after a crash
names a state whose step is safe to take again.

States::

    idle -> downloading -> verifying -> ready -> installing -> switching -> proving -> done
                 |             |          |           |            |           |
                 +-------------+----------+-----------+--> failed  +--> rolling-back -> rolled-back
                               +--> refused

``ready`` waits for the maintenance window. ``switching`` without a ``baseline`` has not
touched ``current`` yet; with one, the switch was decided and may have happened.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agent.update.atomic import write_atomic

State = Literal[
    "idle", "downloading", "verifying", "ready", "installing", "switching", "proving",
    "done", "rolling-back", "rolled-back", "refused", "failed",
]
TERMINAL: frozenset[str] = frozenset({"idle", "done", "rolled-back", "refused", "failed"})
# Before the switch nothing the node runs has changed: a failure there just stops.
BEFORE_SWITCH: frozenset[str] = frozenset({"downloading", "verifying", "ready", "installing"})
HISTORY_KEPT = 40


class Record(BaseModel):
    """Tolerant of fields a newer release adds: the guard of the previous release reads
    a journal the new release wrote."""

    model_config = ConfigDict(frozen=True, extra="ignore")


class Target(Record):
    """The release asked for (from ``down/update``)."""

    version: str = Field(min_length=1)
    url: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    size: int = Field(ge=1)
    rollback: bool = False
    force: bool = False


class Baseline(Record):
    """What the node could do just before the switch, measured by the version that worked."""

    connected: bool
    drivers_ok: tuple[str, ...] = ()
    at: datetime


class Step(Record):
    state: State
    at: datetime
    reason: str | None = None


class Journal(Record):
    format: int = 1
    state: State = "idle"
    update_id: str | None = None
    target: Target | None = None
    previous: str | None = Field(default=None, description="The version `current` named when the update began.")
    entered_at: datetime | None = None
    deadline: datetime | None = None
    baseline: Baseline | None = None
    starts: int = Field(default=0, description="Service starts seen by the guard while proving.")
    reason: str | None = None
    evidence: dict[str, str] = {}
    history: tuple[Step, ...] = ()

    @property
    def version(self) -> str | None:
        return self.target.version if self.target else None

    def entering(self, state: State, now: datetime, timeout: timedelta | None, *,
                 reason: str | None = None, **changes) -> "Journal":
        """This journal moved to ``state`` at ``now``, with a fresh deadline."""
        step = Step(state=state, at=now, reason=reason)
        return self.model_copy(update={
            "state": state, "entered_at": now, "deadline": now + timeout if timeout else None,
            "reason": reason,
            "history": (self.history + (step,))[-HISTORY_KEPT:], **changes,
        })


class JournalFile:
    """``<state_dir>/update/journal.json``. A missing file is an idle journal."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "journal.json"

    def load(self) -> Journal:
        """The journal on disk; raises ``ValueError`` naming the file when it is unreadable
        (cannot happen from a power cut, since writes are atomic: only from tampering)."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return Journal()
        try:
            return Journal.model_validate(json.loads(raw))
        except (ValueError, ValidationError) as e:
            raise ValueError(f"{self.path}: unreadable update journal: {e}") from e

    def save(self, journal: Journal) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, journal.model_dump_json(indent=1).encode())
