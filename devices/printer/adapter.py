"""The interface every printer port implements (a USB printer-class device, a serial port,
or the fake): bytes out, bytes in. What the bytes mean is `session` and `escpos`."""

from __future__ import annotations

from typing import Protocol


class PrinterGone(OSError):
    """The printer is not there: not plugged in, switched off, vanished, or held by another
    program (device busy). The driver closes the port and opens it again later."""


class PrinterPort(Protocol):
    async def open(self, path: str | None) -> None:
        """Open the printer at ``path`` (the device hot-plug found, else the configured one)
        for this program alone. Raises `PrinterGone` when it cannot."""

    async def write(self, data: bytes, timeout: float) -> None:
        """Hand all of ``data`` to the device; returns once it has taken the last byte.

        Raises `PrinterGone` when the device fails, and `TimeoutError` when it takes nothing
        for ``timeout`` seconds (a printer that stopped with a full buffer, flow control
        holding us back). Never blocks the event loop.
        """

    async def read(self, timeout: float) -> bytes:
        """What the printer sent within ``timeout`` seconds (at least one byte), or b"" when
        it sent nothing. Raises `PrinterGone` when the device fails."""

    async def close(self) -> None:
        """Release the device; safe to call twice."""

    def describe(self) -> str | None:
        """What a technician should know about the open port (its path, its settings)."""
