"""The machine's own controls: a SIGTERM to this agent, ``systemctl reboot``."""

from __future__ import annotations

import asyncio
import os
import signal


class MachineActions:
    async def restart_agent(self) -> None:
        # The agent's own SIGTERM handler stops it cleanly (offline status, outbox
        # closed); systemd's Restart=always starts it again.
        os.kill(os.getpid(), signal.SIGTERM)

    async def reboot(self) -> None:
        process = await asyncio.create_subprocess_exec(
            "systemctl", "reboot", stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            raise OSError(f"systemctl reboot exited with {process.returncode}: "
                          f"{err.decode('utf-8', 'replace').strip()[:300]}")
