"""A kiosk browser's config: validated on the server before it is sent and on the node before use."""

from __future__ import annotations

import re
from datetime import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from rpfleet.durations import Duration

Step = Literal["reload", "restart-browser", "restart-display", "reboot"]
STEPS: tuple[Step, ...] = ("reload", "restart-browser", "restart-display", "reboot")
"""The repair ladder, mildest first."""

DEFAULT_FALLBACK_TEXT = "Vui lòng lấy số tại quầy hướng dẫn"
_DISPLAY = re.compile(r":[0-9]+(\.[0-9]+)?")
_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _http_url(value: str, field: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"{field} {value!r} is not an http(s) URL with a host")
    return value


class RepairLimits(BaseModel):
    """How many times each repair step may run in any hour; 0 turns a step off."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    reload: int = Field(default=6, ge=0, le=60, description="Page reloads per hour.")
    restart_browser: int = Field(default=3, ge=0, le=30, description="Browser restarts per hour.")
    restart_display: int = Field(
        default=1, ge=0, le=10, description="Display session restarts per hour (systemctl)."
    )
    reboot: int = Field(
        default=1, ge=0, le=4,
        description="Node reboots per hour. The count survives the reboot (kept in the state "
        "dir), so a page that keeps failing ends in an alarm, not a reboot loop.",
    )

    def of(self, step: Step) -> int:
        return getattr(self, step.replace("-", "_"))


class ScreenSchedule(BaseModel):
    """When a dashboard's screen is on (HDMI-CEC): office hours on working days, Hanoi time."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    days: tuple[Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"], ...] = Field(
        default=("mon", "tue", "wed", "thu", "fri"),
        description="The days the office opens; the screen stays off on the others.",
    )
    opens: time = Field(default=time(7, 30), description="Opening time (HH:MM, local).")
    closes: time = Field(default=time(17, 30), description="Closing time (HH:MM, local).")
    on_before: Duration = Field(
        default=900, ge=0, le=7200,
        description="The screen comes on this long before opening (TVs take a while to wake).",
    )
    off_after: Duration = Field(
        default=900, ge=0, le=7200, description="And goes off this long after closing."
    )
    timezone: str = Field(default="Asia/Ho_Chi_Minh", description="An IANA time zone.")

    @field_validator("days", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            value = (value,)
        return tuple(str(v).lower() for v in value) if isinstance(value, (list, tuple)) else value

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"timezone {value!r} is not a known IANA time zone") from exc
        return value

    @model_validator(mode="after")
    def _opens_before_closing(self) -> "ScreenSchedule":
        if self.opens >= self.closes:
            raise ValueError(f"opens ({self.opens:%H:%M}) must be before closes ({self.closes:%H:%M})")
        return self


class KioskBrowserConfig(BaseModel):
    """A browser in kiosk mode on the node's display: a self-service kiosk's page or a TV
    dashboard, supervised through the Chrome DevTools Protocol."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["kiosk-browser"] = "kiosk-browser"
    id: str = Field(
        min_length=1, max_length=64, description="Stable name of this screen on the node."
    )
    url: str = Field(description="The page shown: the queue system's kiosk page, a dashboard.")
    allowed: tuple[str, ...] = Field(
        default=(),
        description="URL prefixes the browser may show besides `url` (a login page on another "
        "host, ...); the origin of `url` is always allowed. Anything else is navigated back.",
    )
    display: str = Field(default=":0", description="The X display the browser draws on.")
    chromium: Path = Field(default=Path("/usr/bin/chromium"), description="The browser binary.")
    headless: bool = Field(
        default=False, description="Run without a display (tests, a node without a screen)."
    )
    extra_args: tuple[str, ...] = Field(
        default=(), description="More command-line switches for the browser (e.g. --force-device-scale-factor=1)."
    )
    window_size: tuple[int, int] = Field(
        default=(1920, 1080), description="Width and height in pixels (headless, or no window manager)."
    )
    heartbeat: Duration = Field(
        default=10, ge=0.2, le=600, description="How often the page is checked."
    )
    heartbeat_timeout: Duration = Field(
        default=5, ge=0.1, le=120,
        description="A page that does not answer the heartbeat script within this is hung.",
    )
    failures_before_repair: int = Field(
        default=2, ge=1, le=20,
        description="Consecutive failed heartbeats before a repair (a crash or a disallowed URL "
        "is repaired at once).",
    )
    load_timeout: Duration = Field(
        default=30, ge=1, le=300, description="How long a page may take to load."
    )
    screenshot_every: Duration | None = Field(
        default=60, ge=0.2, le=86400,
        description="Screenshots on this schedule feed the black/frozen screen check; none: off.",
    )
    screenshot_width: int = Field(default=640, ge=64, le=3840, description="Screenshots are downscaled to this width.")
    frozen_after: Duration | None = Field(
        default=None, ge=1, le=86400,
        description="For pages that always change (a clock, a queue display): a screen unchanged "
        "for this long is frozen. None: unchanged screens are fine (a kiosk's menu).",
    )
    repairs_per_hour: RepairLimits = Field(default_factory=RepairLimits)
    display_service: str = Field(
        default="display-manager.service",
        description="The systemd unit of the display session (lightdm, a kiosk's X session).",
    )
    fallback_text: str = Field(
        default=DEFAULT_FALLBACK_TEXT, min_length=1, max_length=200,
        description="Shown in big letters while the page's server does not answer.",
    )
    recheck_every: Duration = Field(
        default=5, ge=0.5, le=300,
        description="While the fallback is shown, the page's server is tried this often.",
    )
    screen_schedule: ScreenSchedule | None = Field(
        default=None, description="Dashboards: screen power by HDMI-CEC; none: always on."
    )
    cec: Literal["cec-client", "fake"] = Field(
        default="cec-client", description="cec-client (libcec), or fake (tests, demo)."
    )
    system: Literal["systemctl", "fake"] = Field(
        default="systemctl",
        description="How the display session is restarted and the node rebooted; fake records "
        "the requests (tests, demo).",
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        return _http_url(value, "url")

    @field_validator("allowed", mode="before")
    @classmethod
    def _one_or_many(cls, value: object) -> object:
        return (value,) if isinstance(value, str) else value

    @field_validator("allowed")
    @classmethod
    def _prefixes(cls, allowed: tuple[str, ...]) -> tuple[str, ...]:
        for prefix in allowed:
            _http_url(prefix, "allowed prefix")
        return allowed

    @field_validator("display")
    @classmethod
    def _display(cls, value: str) -> str:
        if not _DISPLAY.fullmatch(value):
            raise ValueError(f"display {value!r} is not an X display such as ':0'")
        return value

    @field_validator("fallback_text")
    @classmethod
    def _printable(cls, value: str) -> str:
        if any(ord(c) < 32 for c in value):
            raise ValueError("fallback_text has a control character")
        return value
