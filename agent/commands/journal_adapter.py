"""The journal as `journalctl` shows it: the thin adapter behind fetch-logs."""

from __future__ import annotations

import asyncio
import os
from datetime import datetime, timezone

from agent.commands.journal import MAX_LOG_BYTES

READ_TIMEOUT_S = 30.0


class JournalCtl:
    """Runs ``journalctl -u UNIT -o short-iso --since --until -n LINES --no-pager``."""

    def __init__(self, executable: str = "journalctl") -> None:
        self.executable = executable

    async def read(self, unit: str, since: datetime, until: datetime, lines: int) -> list[str]:
        args = [
            self.executable, "--no-pager", "-q", "-o", "short-iso", "-u", unit,
            "--since", _stamp(since), "--until", _stamp(until), "-n", str(lines),
        ]
        try:
            process = await asyncio.create_subprocess_exec(
                *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
                env={"LANG": "C.UTF-8", "SYSTEMD_COLORS": "0",
                     "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
            )
        except FileNotFoundError as exc:
            raise OSError(f"{self.executable} is not installed: {exc}") from None
        try:
            # A line count bounds journalctl's output; the byte cap guards a runaway line.
            out, err = await asyncio.wait_for(process.communicate(), READ_TIMEOUT_S)
        except asyncio.TimeoutError:
            process.kill()
            await process.wait()
            raise OSError(f"journalctl gave no answer in {READ_TIMEOUT_S:g}s") from None
        except asyncio.CancelledError:
            process.kill()
            raise
        if process.returncode != 0:
            raise OSError(f"journalctl exited with {process.returncode}: "
                          f"{err.decode('utf-8', 'replace').strip()[:300]}")
        return out[: 4 * MAX_LOG_BYTES].decode("utf-8", "replace").splitlines()


def _stamp(at: datetime) -> str:
    # journalctl reads local time without an offset; UTC with "UTC" says it exactly.
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")

