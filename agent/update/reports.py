"""``up/update`` reports waiting to be sent: one file each under ``<state_dir>/update/reports/``.

Reports queue like events: written (atomically) when the state changes, sent when the
link is up, removed only once the broker took them (QoS 1 PUBACK). A report that cannot
be sent just waits; it never affects the update itself.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from agent.update.atomic import write_atomic
from rpfleet.protocol.messages import UpdateProgress

KEPT = 200  # a node offline for weeks keeps the newest reports, and every one stays small


class ReportQueue:
    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def _files(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.glob("*.json"))

    def put(self, report: UpdateProgress) -> str:
        """Queue ``report``; returns its id (file name), which sorts after every earlier one."""
        self.directory.mkdir(parents=True, exist_ok=True)
        files = self._files()
        last = int(files[-1].stem) if files else 0
        name = f"{last + 1:012d}"
        write_atomic(self.directory / f"{name}.json", report.to_json())
        for old in files[: max(0, len(files) + 1 - KEPT)]:
            old.unlink(missing_ok=True)
        return name

    def pending(self) -> list[tuple[str, UpdateProgress]]:
        """Reports not yet taken by the broker, oldest first (unreadable ones are dropped)."""
        out = []
        for path in self._files():
            try:
                out.append((path.stem, UpdateProgress.model_validate_json(path.read_bytes())))
            except (OSError, ValueError, ValidationError):
                path.unlink(missing_ok=True)
        return out

    def sent(self, report_id: str) -> None:
        """The broker acknowledged report ``report_id``: forget it."""
        (self.directory / f"{report_id}.json").unlink(missing_ok=True)
