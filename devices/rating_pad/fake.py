"""A keypad in memory, behind the same interface as the evdev adapter.

Tests call `press`; the demo sets ``press_every_s`` and the pad presses itself
with a satisfaction mix like a real counter's.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import datetime, timezone
from typing import AsyncIterator

from devices.rating_pad.decoding import KEY_DOWN, KEY_UP, KeyEvent

# Roughly what a reception point sees: most citizens satisfied, a few not.
DEMO_WEIGHTS = {5: 55, 4: 25, 3: 10, 2: 5, 1: 5}


class FakeKeypad:
    def __init__(self, keys: dict[str, int], press_every_s: float | None = None) -> None:
        self._keys = keys
        self._press_every_s = press_every_s
        self._queue: asyncio.Queue[KeyEvent | Exception | None] = asyncio.Queue()
        self._presser: asyncio.Task[None] | None = None
        self.thanked = 0
        self.is_open = False

    async def open(self, path: str | None = None) -> None:
        self.is_open = True
        if self._press_every_s and self._presser is None:
            self._presser = asyncio.create_task(self._press_randomly())

    def press(self, code: str) -> None:
        """A citizen presses and releases the key ``code``."""
        now, mono = datetime.now(timezone.utc), time.monotonic()
        self._queue.put_nowait(KeyEvent(code, KEY_DOWN, now, mono))
        self._queue.put_nowait(KeyEvent(code, KEY_UP, now, mono + 0.08))

    def unplug(self) -> None:
        self._queue.put_nowait(None)

    def fail(self, error: Exception) -> None:
        """The device (or its driver library) fails with ``error`` while being read."""
        self._queue.put_nowait(error)

    async def events(self) -> AsyncIterator[KeyEvent]:
        while (event := await self._queue.get()) is not None:
            if isinstance(event, Exception):
                raise event
            yield event

    async def thank(self) -> None:
        self.thanked += 1

    def describe(self) -> str | None:
        return None

    async def close(self) -> None:
        self.is_open = False
        presser, self._presser = self._presser, None
        if presser is not None:
            presser.cancel()

    async def _press_randomly(self) -> None:
        by_rating = {rating: code for code, rating in self._keys.items()}
        ratings = [r for r in DEMO_WEIGHTS if r in by_rating]
        weights = [DEMO_WEIGHTS[r] for r in ratings]
        while True:
            await asyncio.sleep(random.expovariate(1 / self._press_every_s))
            self.press(by_rating[random.choices(ratings, weights)[0]])
