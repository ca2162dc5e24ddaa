"""The node's update settings and the maintenance-window rule.

`MaintenanceWindow` lives in `rpfleet.maintenance` because a site's config layer may set
it too (``maintenance_window`` in `rpfleet.node_config.NodeConfig`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from rpfleet.maintenance import HANOI, MaintenanceWindow

__all__ = ["HANOI", "InstallDecision", "MaintenanceWindow", "StateTimeouts", "UpdateSettings",
           "may_install_now"]


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


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
    window: MaintenanceWindow = Field(
        default=MaintenanceWindow(),
        description="Used when the desired config sets no maintenance_window for the site.")
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
