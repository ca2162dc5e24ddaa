"""What the command tests share: commands as the server sends them, a journal stand-in."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from rpfleet.protocol.messages import Command

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


def command(name: str = "fetch-logs", *, args: dict | None = None, expires_in: float = 600,
            id: str | None = None, issued_at: datetime = NOW) -> Command:
    return Command(id=id or uuid.uuid4().hex, name=name, args=args or {}, issuer="ops-laptop",
                   issued_at=issued_at, expires_at=issued_at + timedelta(seconds=expires_in))


class FakeJournal:
    """The `Journal` interface over a list of lines; counts its reads (each is an effect)."""

    def __init__(self, lines: list[str] | None = None) -> None:
        self.lines = lines if lines is not None else [f"line {n}" for n in range(1, 11)]
        self.reads: list[tuple] = []

    async def read(self, unit, since, until, lines):
        self.reads.append((unit, since, until, lines))
        return self.lines[-lines:]
