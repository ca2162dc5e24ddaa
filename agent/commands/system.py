"""What restart-agent and reboot ask of the machine: the interface, and a fake for tests."""

from __future__ import annotations

from typing import Protocol


class SystemActions(Protocol):
    """The node's power and service controls (agent.commands.system_adapter on a node)."""

    async def restart_agent(self) -> None:
        """End this agent cleanly; systemd (``Restart=always``) starts it again."""

    async def reboot(self) -> None:
        """Reboot the machine. Raises OSError when it was refused."""


class FakeSystemActions:
    """Records what was asked instead of doing it."""

    def __init__(self, refuse_reboot: str | None = None) -> None:
        self.asked: list[str] = []
        self._refuse_reboot = refuse_reboot

    async def restart_agent(self) -> None:
        self.asked.append("restart-agent")

    async def reboot(self) -> None:
        if self._refuse_reboot:
            raise OSError(self._refuse_reboot)
        self.asked.append("reboot")
