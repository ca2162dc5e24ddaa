"""Pure decoding of key events into taps: no I/O, no clock of its own."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from devices.rating_pad.misuse import MisuseLimits, MisuseWatch

KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2


@dataclass(frozen=True)
class KeyEvent:
    """One key event as an adapter saw it.

    ``code`` is the key's name (``KEY_KP5``, ``BTN_0``, ``BUTTON_3`` for serial
    pads), ``value`` one of KEY_UP, KEY_DOWN, KEY_REPEAT, ``at`` the wall time
    and ``mono`` the same instant on a monotonic clock, in seconds.
    """

    code: str
    value: int
    at: datetime
    mono: float


@dataclass(frozen=True)
class Tap:
    """A citizen's rating. ``suspect`` says why it looks like misuse; it is a tap all the same."""

    rating: int
    at: datetime
    mono: float
    suspect: str | None = None


class TapDecoder:
    """Turns one pad's key events into taps.

    Only the key-down of a key in the map is a tap: key-up, the kernel's
    auto-repeat and unmapped keys are not. A key-down within ``bounce_s`` of
    the previous tap is that same tap (a contact bounce or a fast double
    press). Taps beyond ``limits`` are returned flagged, never dropped.
    """

    def __init__(
        self, keys: dict[str, int], bounce_s: float, limits: MisuseLimits | None = None
    ) -> None:
        self._keys = dict(keys)
        self._bounce_s = bounce_s
        self._misuse = MisuseWatch(limits) if limits is not None else None
        self._last_mono: float | None = None

    def feed(self, event: KeyEvent) -> Tap | None:
        """The tap ``event`` makes, or None when it makes none."""
        if event.value != KEY_DOWN:
            return None
        rating = self._keys.get(event.code)
        if rating is None:
            return None
        if self._last_mono is not None and 0 <= event.mono - self._last_mono < self._bounce_s:
            return None
        self._last_mono = event.mono
        suspect = self._misuse.judge(rating, event.mono) if self._misuse else None
        return Tap(rating=rating, at=event.at, mono=event.mono, suspect=suspect)
