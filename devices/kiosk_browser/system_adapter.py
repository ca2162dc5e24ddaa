"""Restarting the display session and rebooting the node, through systemd.

The agent's user needs the right to do both without a password (a polkit rule for
``org.freedesktop.systemd1.manage-units`` on the display unit and ``org.freedesktop.login1.reboot``;
README.md shows one)."""

from __future__ import annotations

import asyncio
from typing import Protocol


class SystemActions(Protocol):
    async def restart_display(self, unit: str) -> None:
        """Restart the display session's systemd ``unit``; raises OSError when refused."""

    async def reboot(self) -> None:
        """Ask for a reboot of the node; raises OSError when refused."""


class Systemctl:
    """`SystemActions` with ``systemctl``."""

    def __init__(self, binary: str = "systemctl") -> None:
        self.binary = binary

    async def restart_display(self, unit: str) -> None:
        await self._run("restart", unit)

    async def reboot(self) -> None:
        await self._run("reboot")

    async def _run(self, *args: str) -> None:
        process = await asyncio.create_subprocess_exec(
            self.binary, *args, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)
        output, _ = await asyncio.wait_for(process.communicate(), 60)
        if process.returncode != 0:
            said = output.decode("utf-8", "replace").strip()[:500]
            raise OSError(f"{self.binary} {' '.join(args)} failed ({process.returncode}): {said}")
