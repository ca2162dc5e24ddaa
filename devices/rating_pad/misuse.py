"""Suspected misuse of a rating pad: pure code, fed with the taps the decoder accepted.

A child drumming on the buttons or someone hammering "1" still produces taps;
they are stored like any other, with a short reason attached, so that the
satisfaction figures can leave them out or not. Nothing is ever dropped here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from rpfleet.durations import format_duration


@dataclass(frozen=True)
class MisuseLimits:
    """When taps stop looking like citizens rating their service."""

    burst_taps: int
    """More taps than this within ``burst_window`` is a burst."""
    burst_window: float
    hammer_presses: int
    """This many taps of one rating in a row within ``hammer_window`` is hammering."""
    hammer_window: float


class MisuseWatch:
    """Judges each accepted tap against the pad's recent taps.

    Only the tap that crosses a limit and the ones after it are flagged: the
    earlier taps of a burst were stored (and thanked) before anyone could know.
    """

    def __init__(self, limits: MisuseLimits) -> None:
        self._limits = limits
        self._recent: deque[tuple[float, int]] = deque()
        """(monotonic stamp, rating) of the taps that may still count, oldest first."""

    def judge(self, rating: int, mono: float) -> str | None:
        """The reason the tap (``rating`` at monotonic ``mono`` seconds) looks like
        misuse, e.g. ``"burst: 6 taps in 10s"``; None when it looks genuine."""
        limits = self._limits
        if self._recent and mono < self._recent[-1][0]:
            # A clock that went back would make every window look full: start afresh.
            self._recent.clear()
        horizon = max(limits.burst_window, limits.hammer_window)
        while self._recent and mono - self._recent[0][0] >= horizon:
            self._recent.popleft()
        self._recent.append((mono, rating))

        reasons = []
        in_burst = sum(1 for at, _ in self._recent if mono - at < limits.burst_window)
        if in_burst > limits.burst_taps:
            reasons.append(f"burst: {in_burst} taps in {format_duration(limits.burst_window)}")
        in_a_row = self._same_in_a_row(rating, mono)
        if in_a_row >= limits.hammer_presses:
            reasons.append(
                f"hammered: rating {rating} pressed {in_a_row} times "
                f"in {format_duration(limits.hammer_window)}"
            )
        return "; ".join(reasons) or None

    def _same_in_a_row(self, rating: int, mono: float) -> int:
        count = 0
        for at, earlier in reversed(self._recent):
            if earlier != rating or mono - at >= self._limits.hammer_window:
                break
            count += 1
        return count
