"""The interface every keypad adapter implements (evdev pad, serial pad or fake)."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from devices.rating_pad.decoding import KeyEvent


class KeypadAdapter(Protocol):
    async def open(self, path: str | None) -> None:
        """Open (and claim exclusively) the device at ``path``; OSError when it is not there."""

    def events(self) -> AsyncIterator[KeyEvent]:
        """Key events as they come. Ends, or raises OSError, when the device goes away."""

    async def thank(self) -> None:
        """The citizen's immediate feedback for the last key event (the pad's LED or beep
        where it has one). Called only once that tap is recorded."""

    async def close(self) -> None:
        """Release the device; safe to call twice."""

    def describe(self) -> str | None:
        """What a technician should know about the open device (identity, lines skipped)."""
