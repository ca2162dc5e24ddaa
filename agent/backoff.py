"""Exponential back-off with full jitter, so that a city's nodes coming back at
once after an outage spread their reconnects instead of arriving together."""

from __future__ import annotations

import random


class Backoff:
    def __init__(self, first: float, cap: float, rng: random.Random | None = None) -> None:
        self._first = first
        self._cap = cap
        self._rng = rng or random.Random()
        self._attempts = 0

    def next(self) -> float:
        """The next wait: random between half the first delay and a ceiling that doubles."""
        ceiling = min(self._cap, self._first * 2**self._attempts)
        self._attempts = min(self._attempts + 1, 32)
        return self._rng.uniform(min(self._first / 2, ceiling), ceiling)

    def reset(self) -> None:
        self._attempts = 0
