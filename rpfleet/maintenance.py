"""A site's maintenance window: when a node may install an update (issue 11).

Shared by the node's ``[update]`` settings and the remotely managed config
(`rpfleet.node_config.NodeConfig.maintenance_window`), so a site layer can set it.

Site times are Hanoi time. Vietnam keeps UTC+7 all year (no daylight saving), so a
fixed offset is exact and needs no tz database on the node.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

from pydantic import BaseModel, ConfigDict, field_validator

HANOI = timezone(timedelta(hours=7), "ICT")


class MaintenanceWindow(BaseModel):
    """When a site accepts installs, in Hanoi time: ``start`` to ``end``, which may
    cross midnight (``22:00``-``05:00``). ``start == end`` means all day."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
