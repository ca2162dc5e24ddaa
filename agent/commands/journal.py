"""fetch-logs, the pure part: which time range to read, and keeping the answer small.

The range is at most `MAX_LOG_RANGE_S` long and never in the future; the lines
are the newest ones, at most ``lines`` of them and `MAX_LOG_BYTES` in all (the
oldest are dropped first, and ``truncated`` says so).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from agent.commands.args import MAX_LOG_RANGE_S, FetchLogsArgs

MAX_LOG_BYTES = 128 * 1024
MAX_LINE_CHARS = 2000
DEFAULT_RANGE = timedelta(hours=1)


class Journal(Protocol):
    """Reads a unit's journal (journalctl on a node, a fake in tests)."""

    async def read(self, unit: str, since: datetime, until: datetime, lines: int) -> list[str]:
        """The newest ``lines`` lines of ``unit`` between ``since`` and ``until``, oldest
        first. Raises OSError when the journal cannot be read."""


@dataclass(frozen=True)
class LogRange:
    since: datetime
    until: datetime


class BadRange(ValueError):
    pass


def log_range(args: FetchLogsArgs, now: datetime) -> LogRange:
    """The range to read; raises BadRange naming the field when it cannot be read."""
    until = min(args.until or now, now)
    if args.since is None:
        since = until - DEFAULT_RANGE
    elif isinstance(args.since, datetime):
        since = args.since
    else:
        since = until - timedelta(seconds=args.since)
    if since >= until:
        raise BadRange(f"args.since ({since.isoformat()}) is not before "
                       f"args.until ({until.isoformat()})")
    if (until - since).total_seconds() > MAX_LOG_RANGE_S:
        raise BadRange(
            f"args.since: the range is {until - since}, more than the {MAX_LOG_RANGE_S // 3600} h "
            "one command may read"
        )
    return LogRange(since, until)


def bounded(lines: list[str], limit_lines: int,
            limit_bytes: int = MAX_LOG_BYTES) -> tuple[list[str], bool]:
    """The newest of ``lines`` that fit ``limit_lines`` and ``limit_bytes`` (UTF-8), each cut to
    `MAX_LINE_CHARS`; and whether anything was dropped or cut."""
    truncated = len(lines) > limit_lines
    kept: list[str] = []
    size = 0
    for line in reversed(lines[-limit_lines:]):
        if len(line) > MAX_LINE_CHARS:
            line, truncated = line[:MAX_LINE_CHARS] + "…", True
        cost = len(line.encode("utf-8")) + 1
        if size + cost > limit_bytes:
            truncated = True
            break
        kept.append(line)
        size += cost
    kept.reverse()
    return kept, truncated
