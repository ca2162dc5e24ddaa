from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.hotplug.match import DeviceMatch
from rpfleet.durations import Duration

# Numeric keypad 1..5: the most common cheap USB pad, 1 the worst, 5 the best.
DEFAULT_KEYS = {f"KEY_KP{n}": n for n in range(1, 6)}


class RatingPadConfig(BaseModel):
    """One rating pad at a counter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["rating-pad"] = "rating-pad"
    id: str = Field(min_length=1, max_length=64, description="Stable name of this pad on the node.")
    counter: str | None = Field(default=None, description="The counter this pad serves.")
    source: Literal["evdev", "fake"] = "evdev"
    device: str | None = Field(
        default=None, description="/dev/input/by-id/... path of the pad (source = evdev)."
    )
    match: DeviceMatch | None = Field(
        default=None, description="Or: find the pad by udev identity when it is plugged in."
    )
    keys: dict[str, int] = Field(default_factory=lambda: dict(DEFAULT_KEYS))
    scale: int = Field(default=5, ge=3, le=5, description="Number of buttons, 3 to 5.")
    bounce: Duration = Field(
        default=0.25, le=5, description="A second press this soon after a tap is the same tap."
    )
    fake_press_every: Duration | None = Field(
        default=None, gt=0, description="Fake pads only: press a random button about this often."
    )

    @model_validator(mode="after")
    def _consistent(self) -> "RatingPadConfig":
        bad = {key: r for key, r in self.keys.items() if not 1 <= r <= self.scale}
        if bad:
            raise ValueError(f"keys map to ratings outside 1..{self.scale}: {bad}")
        if self.source == "evdev" and not (self.device or self.match):
            raise ValueError("device or match is required when source is 'evdev'")
        return self
