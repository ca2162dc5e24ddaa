"""The interfaces a reader's adapter (evdev, serial or fake) and its decoder implement."""

from __future__ import annotations

from typing import AsyncIterator, Protocol, TypeVar

from devices.scanner.reads import Read

Item = TypeVar("Item")
ItemIn = TypeVar("ItemIn", contravariant=True)


class ReaderAdapter(Protocol[Item]):
    async def open(self, path: str | None) -> None:
        """Open (and, for a wedge, grab) the reader at ``path``.

        Raises OSError when it is not there."""

    def items(self) -> AsyncIterator[Item]:
        """What the reader sends (key events or byte chunks), until it goes away.

        Ends, or raises OSError, when the device is gone."""

    async def acknowledge(self) -> None:
        """The citizen's feedback once a code is recorded (a serial reader's beep), if any."""

    async def close(self) -> None:
        """Release the device; safe to call twice."""


class Assembler(Protocol[ItemIn]):
    """Pure decoding of one reader's items into reads (`WedgeDecoder`, `LineFramer`)."""

    def feed(self, item: ItemIn) -> list[Read]: ...

    def expire(self, now: float) -> list[Read]:
        """Called at `deadline` (monotonic seconds): reads that silence has ended."""

    def deadline(self) -> float | None: ...

    def discard(self) -> int:
        """The reader went away: drop the read in progress; how many characters it had."""
