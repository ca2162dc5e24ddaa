"""The node's update settings and the maintenance-window rule.

Site times are Hanoi time. Vietnam keeps UTC+7 all year (no daylight saving), so a
fixed offset is exact and needs no tz database on the node.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time, timedelta, timezone
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

HANOI = timezone(timedelta(hours=7), "ICT")


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class MaintenanceWindow(Frozen):
    """When a site accepts installs, in Hanoi time: ``start`` to ``end``, which may
    cross midnight (``22:00``-``05:00``). ``start == end`` means all day."""

    start: time = time(1, 0)
    end: time = time(5, 0)

    @field_validator("start", "end", mode="before")
    @classmethod
    def _hh_mm(cls, value):
        if isinstance(value, str):
            try:
                return time.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{value!r} is not a time of day like '01:30'") from None
        return value

    def contains(self, moment: datetime) -> bool:
        """Whether the aware datetime ``moment`` falls inside the window (start inclusive)."""
        if moment.tzinfo is None:
            raise ValueError("moment must be timezone-aware")
        local = moment.astimezone(HANOI).time().replace(tzinfo=None)
        if self.start == self.end:
            return True
        if self.start < self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def describe(self) -> str:
        return f"{self.start:%H:%M}–{self.end:%H:%M} Hanoi time"


class StateTimeouts(Frozen):
    """How long an update may stay in each state before it fails (seconds)."""

    downloading: float = Field(default=4 * 3600, gt=0)
    verifying: float = Field(default=600, gt=0)
    ready: float = Field(default=7 * 86400, gt=0, description="Waiting for the maintenance window.")
    installing: float = Field(default=1800, gt=0)
    switching: float = Field(default=1800, gt=0, description="Waiting for a quiet, connected node.")
    proving: float = Field(default=300, gt=0)
    rolling_back: float = Field(default=300, gt=0)


class UpdateSettings(Frozen):
    """``[update]`` in agent.toml."""

    prefix: Path = Field(default=Path("/opt/rpfleet"), description="Holds releases/, current and guard.")
    trusted_keys_file: Path = Path("/etc/rpfleet/release-keys.pem")
    window: MaintenanceWindow = MaintenanceWindow()
    timeouts: StateTimeouts = StateTimeouts()
    max_starts_while_proving: int = Field(
        default=5, ge=1, description="Service starts of an unproven release before it counts as a crash loop.")
    install_headroom: int = Field(
        default=200 * 1024 * 1024, ge=0,
        description="Bytes free beyond the artifact itself, for the unpacked release.")
    requirement: str = Field(default="rpfleet[agent]", description="What pip installs from the wheel set.")


@dataclass(frozen=True)
class InstallDecision:
    allowed: bool
    reason: str


def may_install_now(window: MaintenanceWindow, now: datetime, busy: str | None,
                    forced: bool) -> InstallDecision:
    """Whether an install or switch may happen at ``now``.

    ``busy`` names what the node is doing that an install would disturb (``"a call is
    being spoken"``), or None. ``forced`` (the server's explicit order) overrides both
    the window and busyness: the server takes the blame for a cut-off call.
    """
    if forced:
        return InstallDecision(True, "forced by the server")
    if not window.contains(now):
        return InstallDecision(False, f"outside the maintenance window {window.describe()}")
    if busy:
        return InstallDecision(False, f"node busy: {busy}")
    return InstallDecision(True, f"inside the maintenance window {window.describe()}, node idle")
