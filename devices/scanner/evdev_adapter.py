"""Keyboard-wedge readers through evdev. Kept thin: everything testable lives in `wedge`."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from devices.scanner import layout
from devices.scanner.reads import EVENTS_DROPPED, KEY_UP, REPORT_END, KeyEvent


class EvdevReader:
    def __init__(self) -> None:
        self._device: Any = None

    async def open(self, path: str | None) -> None:
        import evdev

        if not path:
            raise FileNotFoundError("the reader is not plugged in")
        self._device = evdev.InputDevice(path)
        # Exclusive: codes must never be typed into the kiosk's focused window.
        self._device.grab()

    async def items(self) -> AsyncIterator[KeyEvent]:
        async for raw in self._device.async_read_loop():
            event = key_event_from(raw, wall_minus_mono=time.time() - time.monotonic())
            if event is not None:
                yield event

    async def acknowledge(self) -> None:
        """A wedge reader beeps by itself on a good read; the host has no way to make it beep."""

    async def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.ungrab()
            except OSError:
                pass
            device.close()


def key_event_from(raw: Any, *, wall_minus_mono: float) -> KeyEvent | None:
    """The decoder's view of one ``evdev.InputEvent``: key events and the SYN markers, else None.

    ``wall_minus_mono`` moves the kernel's wall-clock stamp onto the monotonic
    clock the driver waits with.
    """
    from evdev import ecodes

    stamp = raw.timestamp()
    at = datetime.fromtimestamp(stamp, timezone.utc)
    mono = stamp - wall_minus_mono
    if raw.type == ecodes.EV_SYN and raw.code == ecodes.SYN_DROPPED:
        return KeyEvent(EVENTS_DROPPED, KEY_UP, at, mono)
    if raw.type == ecodes.EV_SYN and raw.code == ecodes.SYN_REPORT:
        return KeyEvent(REPORT_END, KEY_UP, at, mono)
    if raw.type != ecodes.EV_KEY:
        return None
    return KeyEvent(key_name(raw.code), raw.value, at, mono)


def key_name(code: int) -> str:
    """evdev's name for key ``code``; where it has several, the one the layout knows."""
    from evdev import ecodes

    names = ecodes.KEY.get(code, f"KEY_{code}")
    if isinstance(names, str):
        return names
    return next((name for name in names if layout.knows(name)), names[-1])
