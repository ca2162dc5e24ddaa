"""A rating pad's config: validated on the server before it is sent and on the node before use."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from devices.hotplug.match import DeviceMatch
from devices.rating_pad.misuse import MisuseLimits
from rpfleet.durations import Duration, format_duration

# Numeric keypad 1..5: the most common cheap USB pad, 1 the worst, 5 the best.
DEFAULT_KEYS = {f"KEY_KP{n}": n for n in range(1, 6)}
# A serial pad names its buttons by number (see README.md, "Serial line protocol").
SERIAL_KEYS = {f"BUTTON_{n}": n for n in range(1, 6)}

# Kernel names that another device may take after a replug.
_KERNEL_NAME = re.compile(r"/dev/(input/event|ttyUSB|ttyACM)[0-9]+")


class RatingPadConfig(BaseModel):
    """One rating pad at a counter."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["rating-pad"] = "rating-pad"
    id: str = Field(min_length=1, max_length=64, description="Stable name of this pad on the node.")
    counter: str | None = Field(default=None, description="The counter this pad serves.")
    source: Literal["evdev", "serial", "fake"] = "evdev"
    device: str | None = Field(
        default=None,
        description="/dev/input/by-id/... (evdev) or /dev/serial/by-id/... (serial) link.",
    )
    match: DeviceMatch | None = Field(
        default=None, description="Or: find the pad by udev identity when it is plugged in."
    )
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = Field(
        default=9600, description="Serial pads only."
    )
    keys: dict[str, int] = Field(
        default_factory=lambda: dict(DEFAULT_KEYS),
        description="Key (evdev name, or BUTTON_<n> of a serial pad) -> rating. "
        "Defaults to KEY_KP1.. or BUTTON_1.. up to the scale.",
    )
    scale: int = Field(default=5, ge=3, le=5, description="Number of buttons, 3 to 5.")
    bounce: Duration = Field(
        default=0.25, le=5, description="A second press this soon after a tap is the same tap."
    )
    burst_taps: int = Field(
        default=5, ge=1, description="More taps than this within burst_window are a burst."
    )
    burst_window: Duration = Field(default=10, gt=0, le=3600)
    hammer_presses: int = Field(
        default=4, ge=2,
        description="This many taps of one rating in a row within hammer_window are hammering.",
    )
    hammer_window: Duration = Field(default=10, gt=0, le=3600)
    fake_press_every: Duration | None = Field(
        default=None, gt=0, description="Fake pads only: press a random button about this often."
    )

    @model_validator(mode="before")
    @classmethod
    def _default_keys_for_source(cls, data: Any) -> Any:
        if isinstance(data, dict) and "keys" not in data:
            defaults = SERIAL_KEYS if data.get("source") == "serial" else DEFAULT_KEYS
            scale = data.get("scale", 5)
            if isinstance(scale, int):
                defaults = {key: r for key, r in defaults.items() if r <= scale}
            data = {**data, "keys": defaults}
        return data

    @field_validator("device")
    @classmethod
    def _stable_name(cls, device: str | None) -> str | None:
        if device is not None and _KERNEL_NAME.fullmatch(device):
            raise ValueError(
                f"{device!r} is a kernel name that changes on replug; "
                "use its /dev/input/by-id/ or /dev/serial/by-id/ link"
            )
        return device

    @field_validator("burst_window", "hammer_window")
    @classmethod
    def _longer_than_bounce(cls, window: float, info: ValidationInfo) -> float:
        bounce = info.data.get("bounce")
        if bounce is not None and window <= bounce:
            raise ValueError(
                f"{format_duration(window)} is not longer than bounce "
                f"({format_duration(bounce)}): no second tap could ever fall in it"
            )
        return window

    @model_validator(mode="after")
    def _consistent(self) -> "RatingPadConfig":
        bad = {key: r for key, r in self.keys.items() if not 1 <= r <= self.scale}
        if bad:
            raise ValueError(f"keys map to ratings outside 1..{self.scale}: {bad}")
        if self.source in ("evdev", "serial") and not (self.device or self.match):
            raise ValueError(f"device or match is required when source is {self.source!r}")
        return self

    def misuse_limits(self) -> MisuseLimits:
        return MisuseLimits(
            burst_taps=self.burst_taps,
            burst_window=self.burst_window,
            hammer_presses=self.hammer_presses,
            hammer_window=self.hammer_window,
        )
