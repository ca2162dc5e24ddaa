"""Serial rating pads with pyserial: open, ask who it is, read lines, ACK, close.

The protocol itself (framing, parsing, what is skipped) is `serial_protocol`.
"""

from __future__ import annotations

import logging
import time
from datetime import datetime, timezone
from typing import AsyncIterator

import serial

from devices.rating_pad.decoding import KEY_DOWN, KeyEvent
from devices.rating_pad.serial_protocol import WHO, Hello, PadLineReader, ack
from devices.readable import wait_readable

log = logging.getLogger(__name__)


class SerialPad:
    """A pad speaking the line protocol of `serial_protocol` (README.md has it in full)."""

    def __init__(self, baudrate: int) -> None:
        self._baudrate = baudrate
        self._port: serial.Serial | None = None
        self._lines = PadLineReader()
        self._hello: Hello | None = None
        self._pressed: int | None = None

    async def open(self, path: str | None) -> None:
        if not path:
            raise FileNotFoundError("the pad is not plugged in")
        # exclusive (flock): a second reader of the port would steal presses.
        self._port = serial.Serial(path, self._baudrate, timeout=0, write_timeout=1, exclusive=True)
        self._port.write(WHO)

    async def events(self) -> AsyncIterator[KeyEvent]:
        while True:
            data = await self._read_available()
            for message in self._lines.feed(data):
                if isinstance(message, Hello):
                    log.info("serial pad %s with %d buttons", message.serial, message.buttons)
                    self._hello = message
                    continue
                # Stamped on arrival: the line carries no time of its own.
                self._pressed = message.button
                yield KeyEvent(f"BUTTON_{message.button}", KEY_DOWN,
                               datetime.now(timezone.utc), time.monotonic())

    async def thank(self) -> None:
        if self._port is not None and self._pressed is not None:
            self._port.write(ack(self._pressed))

    def describe(self) -> str | None:
        hello = self._hello
        who = f"pad {hello.serial}, {hello.buttons} buttons" if hello else "pad not identified"
        lines = self._lines
        counts = ((lines.garbage, "garbage"), (lines.overlong, "overlong"), (lines.cut_off, "cut off"))
        skipped = ", ".join(f"{n} {what}" for n, what in counts if n)
        return f"{who}; lines skipped: {skipped}" if skipped else who

    async def close(self) -> None:
        port, self._port = self._port, None
        self._lines.disconnected()
        self._hello = self._pressed = None
        if port is not None:
            port.close()

    async def _read_available(self) -> bytes:
        """Waits until the port is readable, then reads what is there.

        Raises OSError (pyserial's SerialException is one) when the pad is gone:
        a vanished USB serial device, like a closed pty, reads as an I/O error.
        """
        assert self._port is not None, "read before open"
        await wait_readable(self._port.fileno())
        return self._port.read(self._port.in_waiting or 1)
