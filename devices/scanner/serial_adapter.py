"""Serial barcode/QR readers through pyserial. Kept thin: everything testable lives in `lines`."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timezone
from typing import Any, AsyncIterator

from devices.scanner.reads import Chunk


class SerialReader:
    def __init__(self, baudrate: int, ack: bytes | None = None) -> None:
        self._baudrate = baudrate
        self._ack = ack
        self._port: Any = None

    async def open(self, path: str | None) -> None:
        import serial

        if not path:
            raise FileNotFoundError("the reader is not plugged in")
        # timeout=0: reads never block; the event loop says when there are bytes.
        # exclusive: no second program (ModemManager, a getty) reads our codes.
        self._port = serial.Serial(path, self._baudrate, timeout=0, exclusive=True)

    async def items(self) -> AsyncIterator[Chunk]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Chunk | OSError] = asyncio.Queue()
        port, fd = self._port, self._port.fileno()

        def readable() -> None:
            try:
                data = port.read(max(1, port.in_waiting))
            except OSError as exc:  # pyserial's SerialException is one: the reader went away
                loop.remove_reader(fd)
                queue.put_nowait(exc)
                return
            if data:
                queue.put_nowait(Chunk(data, datetime.now(timezone.utc), time.monotonic()))

        loop.add_reader(fd, readable)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, OSError):
                    raise item
                yield item
        finally:
            loop.remove_reader(fd)

    async def acknowledge(self) -> None:
        if self._ack and self._port is not None:
            self._port.write(self._ack)

    async def close(self) -> None:
        port, self._port = self._port, None
        if port is not None:
            port.close()
