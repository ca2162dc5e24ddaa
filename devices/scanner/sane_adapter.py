"""SANE through the ``scanimage`` command. Kept thin: `sane` reads what it prints."""

from __future__ import annotations

import asyncio
import os

TIMEOUT_S = 60.0
"""Network backends can take tens of seconds to search; a hung scanimage is killed after this."""


class ScanimageProbe:
    async def list_devices(self) -> str | None:
        """``scanimage -L`` output, or None when scanimage is not installed."""
        try:
            _, stdout, _ = await _scanimage("-L")
        except FileNotFoundError:
            return None
        return stdout

    async def open_device(self, name: str) -> tuple[int, str]:
        """Open the device and set it up without scanning: (exit code, stderr)."""
        try:
            returncode, _, stderr = await _scanimage("-d", name, "--dont-scan")
        except FileNotFoundError:
            return 127, "scanimage is not installed"
        return returncode, stderr


async def _scanimage(*args: str) -> tuple[int, str, str]:
    # LC_ALL=C: SANE translates its status texts, and sane.py reads the English ones.
    process = await asyncio.create_subprocess_exec(
        "scanimage", *args,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "LC_ALL": "C"},
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), TIMEOUT_S)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        return -1, "", f"scanimage {' '.join(args)} did not finish within {TIMEOUT_S:.0f}s"
    assert process.returncode is not None  # communicate() waited for the exit
    return process.returncode, stdout.decode(errors="replace"), stderr.decode(errors="replace")
