"""Serial readers: bytes in, codes out. Pure: no I/O, no clock.

Contract:

- A read ends at its terminator: ``enter`` is CR, LF or CR LF (what readers
  send out of the box; a CR LF pair ends one read, not two), ``cr``, ``lf`` or
  ``tab`` that one byte, ``none`` a silence of the inter-byte timeout.
  Terminators that follow one another give no empty reads.
- Bytes are UTF-8 (readers set to send UTF-8 pass Vietnamese names through);
  a byte that is not valid UTF-8, and NUL, become U+FFFD, so a damaged read is
  visibly damaged. A read with nothing printable in it (line noise, a wrong
  baud rate) is no read: it is dropped and counted in `noise`.
- With a terminator, bytes that stop for the timeout before it are reported
  **partial**, never glued to the next read.
- More than ``max_length`` bytes without a terminator are reported in pieces
  of ``max_length``, each partial.
- When the reader goes away, `discard` drops the half read it leaves.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from devices.scanner.reads import Chunk, Read

LineTerminator = Literal["enter", "cr", "lf", "tab", "none"]

_ENDS: dict[str, re.Pattern[bytes] | None] = {
    "enter": re.compile(rb"\r\n|\r|\n"),
    "cr": re.compile(rb"\r"),
    "lf": re.compile(rb"\n"),
    "tab": re.compile(rb"\t"),
    "none": None,
}


class LineFramer:
    """Assembles bytes from one serial reader into reads (see the module doc)."""

    def __init__(
        self, terminator: LineTerminator, timeout_s: float, max_length: int = 4096
    ) -> None:
        self._end_pattern = _ENDS[terminator]
        self._timeout_s = timeout_s
        self._max_length = max_length
        self._pending = bytearray()
        self._started: datetime | None = None
        self._last_mono: float | None = None
        self._cut = False
        """The pending bytes continue a read cut at the length limit."""
        self.noise = 0
        """Reads dropped because nothing in them was printable."""

    # the Assembler interface ------------------------------------------------

    def feed(self, chunk: Chunk) -> list[Read]:
        """Take bytes as they came; return the reads they completed."""
        reads = self._expire_before(chunk.mono)
        self._last_mono = chunk.mono
        data = chunk.data
        while data:
            if not self._pending:
                self._started = chunk.at
            found = self._end_pattern.search(data) if self._end_pattern else None
            if found is None:
                reads += self._take(data, chunk.at)
                break
            reads += self._take(data[: found.start()], chunk.at)
            # A CR and an LF split across chunks end an empty read here: no read.
            reads += self._finish(partial=False)
            data = data[found.end():]
        return reads

    def expire(self, now: float) -> list[Read]:
        """The driver's timer fired at ``now``: end a read that has gone quiet."""
        return self._expire_before(now)

    def deadline(self) -> float | None:
        """When `expire` should next be called, or None while nothing is pending."""
        if self._pending and self._last_mono is not None:
            return self._last_mono + self._timeout_s
        return None

    def discard(self) -> int:
        """The reader went away: drop the half read; return how many characters it had."""
        dropped = len(self._pending.decode("utf-8", errors="replace"))
        self._pending.clear()
        self._started, self._cut = None, False
        return dropped

    # framing ------------------------------------------------------------------

    def _take(self, data: bytes, at: datetime) -> list[Read]:
        reads = []
        while data:
            room = self._max_length - len(self._pending)
            self._pending += data[:room]
            data = data[room:]
            if len(self._pending) >= self._max_length:
                reads += self._finish(partial=True, continues=True)
                self._started = at
        return reads

    def _expire_before(self, now: float) -> list[Read]:
        if not self._pending or self._last_mono is None or now < self._last_mono + self._timeout_s:
            return []
        return self._finish(partial=self._end_pattern is not None)

    def _finish(self, *, partial: bool, continues: bool = False) -> list[Read]:
        raw, self._pending = bytes(self._pending), bytearray()
        started, self._started = self._started, None
        was_cut, self._cut = self._cut, continues
        if not raw:
            return []
        text = raw.decode("utf-8", errors="replace").replace("\0", "\ufffd")
        if not _has_printable(text):
            self.noise += 1
            return []
        assert started is not None
        return [Read(text, started, partial or was_cut)]


def _has_printable(text: str) -> bool:
    return any(ch.isprintable() and not ch.isspace() and ch != "\ufffd" for ch in text)
