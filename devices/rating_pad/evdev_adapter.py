"""USB HID rating pads through evdev. Kept thin: everything testable lives in decoding."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, AsyncIterator

from devices.rating_pad.decoding import KeyEvent


class EvdevKeypad:
    def __init__(self) -> None:
        self._device: Any = None

    async def open(self, path: str | None) -> None:
        import evdev

        if not path:
            raise FileNotFoundError("the pad is not plugged in")
        self._device = evdev.InputDevice(path)
        # Exclusive: presses must never leak into the kiosk's focused window.
        self._device.grab()

    async def events(self) -> AsyncIterator[KeyEvent]:
        import evdev

        async for raw in self._device.async_read_loop():
            if raw.type != evdev.ecodes.EV_KEY:
                continue
            name = evdev.ecodes.KEY.get(raw.code, f"KEY_{raw.code}")
            if isinstance(name, list):
                name = name[0]
            yield KeyEvent(
                code=name,
                value=raw.value,
                at=datetime.fromtimestamp(raw.timestamp(), timezone.utc),
                mono=raw.timestamp(),
            )

    async def thank(self) -> None:
        """Plain HID keypads have no LED we may drive; the soundbox thanks instead."""

    async def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.ungrab()
            except OSError:
                pass
            device.close()
