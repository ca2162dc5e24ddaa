"""Stand-ins for what a test machine lacks: systemd actions and an HDMI-CEC screen. Both
record what they were asked, behind the same interfaces as the real adapters."""

from __future__ import annotations


class FakeSystemActions:
    def __init__(self) -> None:
        self.requests: list[tuple[str, ...]] = []
        """("restart-display", unit) and ("reboot",), in order."""
        self.failure: OSError | None = None

    async def restart_display(self, unit: str) -> None:
        self._check()
        self.requests.append(("restart-display", unit))

    async def reboot(self) -> None:
        self._check()
        self.requests.append(("reboot",))

    def _check(self) -> None:
        if self.failure is not None:
            raise self.failure


class FakeScreen:
    def __init__(self) -> None:
        self.on: bool | None = None
        """The last state asked for; None: never switched."""
        self.requests: list[bool] = []
        self.failure: OSError | None = None

    async def set_on(self, on: bool) -> None:
        if self.failure is not None:
            raise self.failure
        self.requests.append(on)
        self.on = on
