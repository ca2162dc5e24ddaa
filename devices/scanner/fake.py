"""A reader in memory, behind the same interface as the serial adapter.

Tests call `scan` (a whole code with the terminator) or `send` (raw bytes);
the demo sets ``scan_every_s`` and the reader scans demo codes by itself: iHanoi
bookings, dossier receipts, unknown barcodes, and now and then an invented
citizen's ID card, which the classifier must redact.
"""

from __future__ import annotations

import asyncio
import random
import time
from datetime import date, datetime, timezone
from typing import AsyncIterator

from devices.scanner.reads import Chunk


class FakeReader:
    def __init__(self, terminator: bytes, scan_every_s: float | None = None) -> None:
        self._terminator = terminator
        self._scan_every_s = scan_every_s
        self._queue: asyncio.Queue[Chunk | Exception | None] = asyncio.Queue()
        self._scanner: asyncio.Task[None] | None = None
        self.acknowledged = 0
        self.is_open = False

    async def open(self, path: str | None = None) -> None:
        self.is_open = True
        if self._scan_every_s and self._scanner is None:
            self._scanner = asyncio.create_task(self._scan_randomly())

    def scan(self, code: str) -> None:
        """The reader reads ``code`` and sends it, UTF-8, with its terminator."""
        self.send(code.encode() + self._terminator)

    def send(self, data: bytes) -> None:
        """The reader sends ``data`` as one chunk."""
        self._queue.put_nowait(Chunk(data, datetime.now(timezone.utc), time.monotonic()))

    def unplug(self) -> None:
        self._queue.put_nowait(None)

    def fail(self, error: Exception) -> None:
        """The reader (or its driver library) fails with ``error`` while being read."""
        self._queue.put_nowait(error)

    async def items(self) -> AsyncIterator[Chunk]:
        while (item := await self._queue.get()) is not None:
            if isinstance(item, Exception):
                raise item
            yield item

    async def acknowledge(self) -> None:
        self.acknowledged += 1

    async def close(self) -> None:
        self.is_open = False
        scanner, self._scanner = self._scanner, None
        if scanner is not None:
            scanner.cancel()

    async def _scan_randomly(self) -> None:
        while True:
            await asyncio.sleep(random.expovariate(1 / self._scan_every_s))
            self.scan(demo_code(random.Random(), date.today()))


def demo_code(rng: random.Random, today: date) -> str:
    """A code like the ones a reception counter sees; every person in it is invented."""
    roll = rng.random()
    if roll < 0.45:
        return f"IHN-{today:%Y%m%d}-{rng.randrange(1, 10**6):06d}"
    if roll < 0.85:
        return f"000.00.{rng.randrange(1, 31):02d}.H26-{today:%y%m%d}-{rng.randrange(1, 10**4):04d}"
    if roll < 0.95:
        return f"893{rng.randrange(10**9, 10**10)}"
    year = rng.randrange(1950, 2006)
    number = f"001{0 if year < 2000 else 2}{year % 100:02d}{rng.randrange(10**6):06d}"
    born = f"{rng.randrange(1, 29):02d}{rng.randrange(1, 13):02d}{year}"
    address = f"Số {rng.randrange(1, 200)} Phố Thử Nghiệm, Phường Hoàn Kiếm, Hà Nội"
    return f"{number}||Nguyễn Văn Thử|{born}|Nam|{address}|{today:%d%m%Y}"
