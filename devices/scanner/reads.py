"""What scanner decoding takes in (key events, byte chunks) and gives out (reads).

Pure data: no I/O. Monotonic stamps (``mono``) are seconds on the clock the
driver waits with (`time.monotonic`), so a decoder's deadlines and the
driver's timer agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

KEY_UP, KEY_DOWN, KEY_REPEAT = 0, 1, 2

EVENTS_DROPPED = "SYN_DROPPED"
"""The code of the marker event an adapter passes on when the kernel dropped events
(its buffer overflowed): whatever was being typed is no longer known exactly."""
REPORT_END = "SYN_REPORT"
"""The code of the marker event that ends one packet of events from the device."""


@dataclass(frozen=True)
class KeyEvent:
    """One key event as the adapter saw it (the same shape as the rating pad's)."""

    code: str
    """Key name as evdev spells it, e.g. ``KEY_A``; or `EVENTS_DROPPED` / `REPORT_END`."""
    value: int
    """`KEY_UP`, `KEY_DOWN` or `KEY_REPEAT`."""
    at: datetime
    mono: float


@dataclass(frozen=True)
class Chunk:
    """Bytes as a serial reader sent them, in whatever pieces the port delivered."""

    data: bytes = field(repr=False)  # may hold personal data: never in a log line
    at: datetime
    mono: float


@dataclass(frozen=True)
class Read:
    """One code as the reader delivered it.

    ``partial`` means the code may not be whole: it stopped before its
    terminator, was cut at the length limit, or events were lost around it.
    """

    code: str = field(repr=False)  # may hold personal data: never in a log line
    at: datetime
    """When its first character came."""
    partial: bool = False
