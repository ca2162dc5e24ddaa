"""When a kiosk page misbehaves, which repair comes next (pure code).

The ladder, mildest first: reload the page, restart the browser, restart the display
session, reboot the node. A trouble starts at the mildest step that can mend it (a dead
browser is not reloaded); if the page is still in trouble after a step, the next trouble
climbs one rung. Each step runs at most its limit per rolling hour; a step whose budget is
spent is skipped upwards. When no step is left, the ladder gives up: the driver raises an
alarm and keeps to the mild steps, and after giving up it never restarts the display or
reboots again until the page has been well for a while: a page that keeps failing ends in
an alarm, not a reboot loop. The history is plain data, so the driver keeps it on disk
across the reboots it asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal

from devices.kiosk_browser.config import STEPS, RepairLimits, Step

Trouble = Literal["hung", "crashed", "disallowed", "not-loaded", "browser-gone"]

HOUR = timedelta(hours=1)
MILD: frozenset[Step] = frozenset({"reload", "restart-browser"})
"""What is still tried after the ladder gave up."""

_FIRST_STEP: dict[str, Step] = {
    "hung": "reload",
    "crashed": "reload",
    "disallowed": "reload",
    "not-loaded": "reload",
    "browser-gone": "restart-browser",
}


@dataclass(frozen=True)
class Repair:
    step: Step
    reason: str
    done_this_hour: int
    """Times this step ran in the last hour, this one not counted."""


@dataclass(frozen=True)
class GiveUp:
    reason: str
    first: bool
    """True the first time since the page was last well: raise the alarm now."""


@dataclass
class RepairHistory:
    """What the ladder remembers; `to_json`/`from_json` keep it across reboots."""

    done: list[tuple[Step, datetime]] = field(default_factory=list)
    level: int = -1
    """The rung of the last repair of the current trouble; -1: none yet."""
    gave_up: bool = False

    def to_json(self) -> dict:
        return {"done": [[step, at.isoformat()] for step, at in self.done],
                "level": self.level, "gave_up": self.gave_up}

    @classmethod
    def from_json(cls, data: dict) -> "RepairHistory":
        done = [(step, datetime.fromisoformat(at)) for step, at in data.get("done", [])
                if step in STEPS]
        return cls(done=done, level=int(data.get("level", -1)),
                   gave_up=bool(data.get("gave_up", False)))


class RepairLadder:
    """Decides the next repair. ``settle_s``: a page well this long after a repair is mended,
    and the next trouble starts again from the bottom."""

    def __init__(self, limits: RepairLimits, settle_s: float,
                 history: RepairHistory | None = None) -> None:
        self.limits = limits
        self.settle = timedelta(seconds=settle_s)
        self.history = history or RepairHistory()
        self._well_since: datetime | None = None

    def well(self, now: datetime) -> bool:
        """The page answered as it should at ``now``. True when this mends the trouble (the
        page has stayed well for ``settle_s`` since the last repair, or an alarm was up)."""
        if self._well_since is None:
            self._well_since = now
        if now - self._well_since < self.settle:
            return False
        mended = self.history.level >= 0 or self.history.gave_up
        self.history.level = -1
        self.history.gave_up = False
        return mended

    def decide(self, trouble: Trouble, detail: str, now: datetime) -> Repair | GiveUp:
        """The repair for ``trouble`` at ``now``; the caller runs it and then calls `done`."""
        self._well_since = None
        lowest = STEPS.index(_FIRST_STEP[trouble])
        start = max(lowest, self.history.level + 1)
        for rung in range(start, len(STEPS)):
            step = STEPS[rung]
            if self.history.gave_up and step not in MILD:
                continue
            used = self.done_within_hour(step, now)
            if used < self.limits.of(step):
                return Repair(step, f"{trouble}: {detail}", used)
        if self.history.gave_up:
            # Given up already: the mild steps again, as their budget allows.
            for step in STEPS[lowest:]:
                used = self.done_within_hour(step, now)
                if step in MILD and used < self.limits.of(step):
                    return Repair(step, f"{trouble}: {detail}", used)
            return GiveUp(self._given_up_reason(trouble, detail, now), first=False)
        self.history.gave_up = True
        return GiveUp(self._given_up_reason(trouble, detail, now), first=True)

    def done(self, step: Step, now: datetime) -> None:
        """``step`` was carried out at ``now``."""
        self.history.done = [(s, at) for s, at in self.history.done if now - at < HOUR]
        self.history.done.append((step, now))
        if not self.history.gave_up:
            self.history.level = max(self.history.level, STEPS.index(step))
        self._well_since = None

    def done_within_hour(self, step: Step, now: datetime) -> int:
        return sum(1 for s, at in self.history.done if s == step and timedelta(0) <= now - at < HOUR)

    def _given_up_reason(self, trouble: str, detail: str, now: datetime) -> str:
        tried = ", ".join(f"{step} x{n}" for step in STEPS
                          if (n := self.done_within_hour(step, now))) or "nothing"
        return f"the page keeps failing ({trouble}: {detail}); tried in the last hour: {tried}"
