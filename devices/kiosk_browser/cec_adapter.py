"""Screen power over HDMI-CEC with libcec's ``cec-client`` (Debian package ``cec-utils``).

One command per call: ``echo 'on 0' | cec-client -s -d 1`` (``-s``: send and exit,
``-d 1``: errors only); device 0 is the TV."""

from __future__ import annotations

import asyncio
from typing import Protocol


class ScreenPower(Protocol):
    async def set_on(self, on: bool) -> None:
        """Switch the screen on (``on 0``) or to standby (``standby 0``); raises OSError when
        the command cannot be sent."""


class CecClient:
    """`ScreenPower` through ``cec-client``."""

    def __init__(self, binary: str = "cec-client", timeout_s: float = 20) -> None:
        self.binary = binary
        self.timeout_s = timeout_s

    async def set_on(self, on: bool) -> None:
        command = b"on 0\n" if on else b"standby 0\n"
        try:
            process = await asyncio.create_subprocess_exec(
                self.binary, "-s", "-d", "1", stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        except FileNotFoundError as exc:
            raise OSError(f"{self.binary} is not installed (Debian: cec-utils)") from exc
        try:
            output, _ = await asyncio.wait_for(process.communicate(command), self.timeout_s)
        except asyncio.TimeoutError as exc:
            process.kill()
            await process.wait()
            raise OSError(f"{self.binary} did not finish within {self.timeout_s}s") from exc
        if process.returncode != 0:
            said = output.decode("utf-8", "replace").strip()[:500]
            raise OSError(f"{self.binary} failed ({process.returncode}): {said}")
