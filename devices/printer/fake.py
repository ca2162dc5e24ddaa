"""A ticket printer in memory, behind the same interface as the real ports (the demo, and
tests of the driver's bookkeeping; tests/devices/printer/emulator.py is the full one).

It answers DLE EOT status queries from its flags and takes a job as printed when the job's
closing GS r 1 arrives while it has paper and its cover is shut; `tickets` keeps each
printed job's bytes.
"""

from __future__ import annotations

import asyncio

from devices.printer import escpos
from devices.printer.adapter import PrinterGone


class FakePrinter:
    def __init__(self) -> None:
        self.present = True
        self.paper = "ok"
        """ok, near-end or out."""
        self.cover_open = False
        self.tickets: list[bytes] = []
        self.is_open = False
        self._pending = b""
        self._answers = bytearray()
        self._arrived: asyncio.Event | None = None

    async def open(self, path: str | None) -> None:
        if not self.present:
            raise PrinterGone("the fake printer is unplugged")
        self.is_open = True
        self._pending = b""
        self._answers.clear()

    async def write(self, data: bytes, timeout: float) -> None:
        self._check()
        self._pending += data
        for kind in escpos.StatusKind:
            query = escpos.status_query(kind)
            while query in self._pending:
                self._pending = self._pending.replace(query, b"", 1)
                self._answer(self._status_byte(kind))
        if escpos.CLEAR_BUFFERS in self._pending:
            self._pending = b""
        if self._pending.endswith(escpos.PRINTED_MARK) and self._ready():
            self.tickets.append(self._pending[: -len(escpos.PRINTED_MARK)])
            self._pending = b""
            self._answer(0)

    async def read(self, timeout: float) -> bytes:
        self._check()
        if not self._answers:
            self._arrived = asyncio.Event()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except asyncio.TimeoutError:
                return b""
            self._check()
        data, self._answers = bytes(self._answers), bytearray()
        return data

    async def close(self) -> None:
        self.is_open = False

    def describe(self) -> str | None:
        return "fake printer"

    def unplug(self) -> None:
        self.present = False

    def plug_in(self) -> None:
        self.present = True

    def _check(self) -> None:
        if not (self.present and self.is_open):
            raise PrinterGone("the fake printer is unplugged")

    def _ready(self) -> bool:
        return self.paper != "out" and not self.cover_open

    def _answer(self, byte: int) -> None:
        self._answers.append(byte)
        if self._arrived is not None:
            self._arrived.set()

    def _status_byte(self, kind: escpos.StatusKind) -> int:
        byte = 0x12
        if kind is escpos.StatusKind.PRINTER and not self._ready():
            byte |= 0x08
        elif kind is escpos.StatusKind.OFFLINE_CAUSE:
            byte |= (0x04 if self.cover_open else 0) | (0x20 if self.paper == "out" else 0)
        elif kind is escpos.StatusKind.PAPER:
            byte |= {"ok": 0, "near-end": 0x0C, "out": 0x6C}[self.paper]
        return byte
