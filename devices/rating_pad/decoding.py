"""Pure decoding of key events into ratings: no I/O, no clock of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2


@dataclass(frozen=True)
class KeyEvent:
    """One key event as the adapter saw it; ``mono`` is a monotonic stamp in seconds."""

    code: str
    value: int
    at: datetime
    mono: float


@dataclass(frozen=True)
class Tap:
    rating: int
    at: datetime


class TapDecoder:
    """Turns key events into taps: key-down of a mapped key only, debounced."""

    def __init__(self, keys: dict[str, int], bounce_s: float) -> None:
        self._keys = dict(keys)
        self._bounce_s = bounce_s
        self._last_mono: float | None = None

    def feed(self, event: KeyEvent) -> Tap | None:
        if event.value != KEY_DOWN:
            return None
        rating = self._keys.get(event.code)
        if rating is None:
            return None
        if self._last_mono is not None and event.mono - self._last_mono < self._bounce_s:
            return None
        self._last_mono = event.mono
        return Tap(rating=rating, at=event.at)
