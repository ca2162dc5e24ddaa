"""The interface every keypad adapter implements (real evdev pad or fake)."""

from __future__ import annotations

from typing import AsyncIterator, Protocol

from devices.rating_pad.decoding import KeyEvent


class KeypadAdapter(Protocol):
    async def open(self, path: str | None) -> None:
        """Open (and grab) the device at ``path``; raises OSError when it is not there."""

    def events(self) -> AsyncIterator[KeyEvent]:
        """Key events as they come, until the device goes away."""

    async def thank(self) -> None:
        """The citizen's immediate feedback (LED blink or beep where the pad has one)."""

    async def close(self) -> None:
        """Release the device; safe to call twice."""
