"""USB HID rating pads through evdev: open with an exclusive grab, read, close.

Everything worth testing lives in `decoding`; `key_event` is the one pure
function here, kept beside the adapter because it needs evdev's code names.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import AsyncIterator, Collection

from evdev import InputDevice, InputEvent, ecodes

from devices.rating_pad.decoding import KeyEvent


def key_event(
    raw: InputEvent, key_map: Collection[str], mono_offset_s: float = 0.0
) -> KeyEvent | None:
    """The KeyEvent for an EV_KEY input event; None for every other type (SYN, MSC_SCAN, LED).

    ``code`` is the name ``key_map`` uses when the kernel has several names for
    the number (BTN_0 is also BTN_MISC), else evdev's first one, else
    ``KEY_<number>``. ``at`` is the kernel's stamp (wall clock); ``mono`` is
    that stamp plus ``mono_offset_s`` (monotonic minus wall clock, measured
    when the event was read), so that windows survive the wall clock jumping.
    """
    if raw.type != ecodes.EV_KEY:
        return None
    name = ecodes.keys.get(raw.code, f"KEY_{raw.code}")
    if not isinstance(name, str):  # aliases, e.g. ("BTN_0", "BTN_MISC")
        name = next((n for n in name if n in key_map), name[0])
    stamp = raw.sec + raw.usec / 1_000_000
    return KeyEvent(
        code=name,
        value=raw.value,
        at=datetime.fromtimestamp(stamp, timezone.utc),
        mono=stamp + mono_offset_s,
    )


class EvdevKeypad:
    """A USB HID keypad or button box, grabbed so that no press reaches another program."""

    def __init__(self, key_map: Collection[str]) -> None:
        self._key_map = frozenset(key_map)
        self._device: InputDevice | None = None

    async def open(self, path: str | None) -> None:
        if not path:
            raise FileNotFoundError("the pad is not plugged in")
        self._device = InputDevice(path)
        # Exclusive: presses must never leak into the kiosk's focused window.
        self._device.grab()

    async def events(self) -> AsyncIterator[KeyEvent]:
        async for raw in self._device.async_read_loop():
            event = key_event(raw, self._key_map, time.monotonic() - time.time())
            if event is not None:
                yield event

    async def thank(self) -> None:
        """Plain HID keypads have no LED we may drive; the soundbox thanks instead."""

    def describe(self) -> str | None:
        device = self._device
        if device is None:
            return None
        return f"{device.name} ({device.info.vendor:04x}:{device.info.product:04x})"

    async def close(self) -> None:
        device, self._device = self._device, None
        if device is not None:
            try:
                device.ungrab()
            except OSError:
                pass  # already gone with the device
            device.close()
