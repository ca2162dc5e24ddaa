"""Black and frozen screens, told from consecutive screenshots (pure code).

A frame is a small greyscale thumbnail (`THUMB` pixels, one byte each). A near-uniform
frame is a blank screen (black, or one colour: nothing drawn). For pages that always change
(a clock, the queue display), a frame unchanged for ``frozen_after`` seconds is a frozen
screen. A kiosk's menu may rightly stand still, so that check is off unless configured.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import pstdev
from typing import Literal

THUMB = (160, 90)
"""Thumbnail size (16:9) the driver reduces each screenshot to before it is judged."""
UNIFORM_STDEV = 3.0
"""Below this spread of grey levels (0-255) a frame is one colour: nothing drawn on it."""
BLANK_FRAMES = 2
"""Consecutive near-uniform frames that make a blank screen (a page being drawn may be
blank for one frame)."""
CHANGED_PIXEL = 24
"""Two frames are the same picture unless some pixel moved more than this many grey levels
(Chromium's screenshots are lossless: an unchanged page gives the very same pixels, and one
changed digit of a clock moves a few thumbnail pixels by far more)."""


@dataclass(frozen=True)
class Frame:
    at: float
    """Seconds on a monotonic clock."""
    pixels: bytes
    """THUMB[0] x THUMB[1] grey levels, row by row."""


@dataclass(frozen=True)
class ScreenVerdict:
    state: Literal["ok", "blank", "frozen", "unknown"]
    detail: str | None = None


def changed(a: bytes, b: bytes) -> bool:
    """Whether two same-sized greyscale frames show different pictures."""
    if len(a) != len(b):
        raise ValueError(f"frames differ in size ({len(a)} and {len(b)} pixels)")
    return a != b and max(abs(x - y) for x, y in zip(a, b)) > CHANGED_PIXEL


class ScreenWatch:
    """Judges each new frame against the ones before it."""

    def __init__(self, frozen_after_s: float | None) -> None:
        self.frozen_after_s = frozen_after_s
        self._last: Frame | None = None
        self._unchanged_since: float | None = None
        self._blank_frames = 0
        self.verdict = ScreenVerdict("unknown")

    def reset(self) -> None:
        """The page was (re)loaded: what came before says nothing about it."""
        self._last = None
        self._unchanged_since = None
        self._blank_frames = 0
        self.verdict = ScreenVerdict("unknown")

    def see(self, frame: Frame) -> ScreenVerdict:
        """The verdict with ``frame`` the newest screenshot."""
        last, self._last = self._last, frame
        if last is None or changed(last.pixels, frame.pixels):
            self._unchanged_since = frame.at
        spread = pstdev(frame.pixels) if frame.pixels else 0.0
        self._blank_frames = self._blank_frames + 1 if spread < UNIFORM_STDEV else 0
        if self._blank_frames >= BLANK_FRAMES:
            mean = sum(frame.pixels) / max(1, len(frame.pixels))
            colour = "black" if mean < 24 else "white" if mean > 231 else f"one grey level ({mean:.0f})"
            self.verdict = ScreenVerdict("blank", f"the screen is blank: {colour}")
        elif (self.frozen_after_s is not None and self._unchanged_since is not None
              and frame.at - self._unchanged_since >= self.frozen_after_s):
            self.verdict = ScreenVerdict(
                "frozen", f"the screen has not changed for {frame.at - self._unchanged_since:.0f}s")
        elif self._blank_frames:
            self.verdict = ScreenVerdict("unknown", "one blank frame")
        else:
            self.verdict = ScreenVerdict("ok")
        return self.verdict
