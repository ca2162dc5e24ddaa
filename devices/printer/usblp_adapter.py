"""USB printer-class printers (the kernel's usblp: ``/dev/usb/lpN``) as a plain file.

Plain ``os`` I/O on the device node: writes go out from a worker thread, so that a printer
taking data slowly never blocks the agent's event loop; reads wait on the loop. The serial
adapter reuses this once pyserial has opened and configured its port.
"""

from __future__ import annotations

import asyncio
import errno
import os
import select
import time

from devices.printer.adapter import PrinterGone
from devices.readable import wait_readable

CHUNK = 4096


class FilePrinterPort:
    """A printer reached through one file descriptor (``/dev/usb/lpN``, or a tty)."""

    def __init__(self) -> None:
        self._fd = -1
        self._path: str | None = None

    async def open(self, path: str | None) -> None:
        if not path:
            raise PrinterGone("the printer is not plugged in (no device found)")
        self._fd = self._open_fd(path)
        self._path = path

    def _open_fd(self, path: str) -> int:
        try:
            # usblp lets one process in at a time; a second gets EBUSY.
            return os.open(path, os.O_RDWR | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
        except OSError as exc:
            raise PrinterGone(f"cannot open {path}: {_why(exc)}") from None

    async def write(self, data: bytes, timeout: float) -> None:
        fd = self._fd
        if fd < 0:
            raise PrinterGone("the printer is not open")
        await asyncio.to_thread(_write_all, fd, data, timeout)

    async def read(self, timeout: float) -> bytes:
        fd = self._fd
        if fd < 0:
            raise PrinterGone("the printer is not open")
        data = _read_now(fd)
        if data:
            return data
        if not await wait_readable(fd, timeout):
            return b""
        return _read_now(fd)

    async def close(self) -> None:
        fd, self._fd = self._fd, -1
        if fd >= 0:
            os.close(fd)

    def describe(self) -> str | None:
        return f"usb printer at {self._path}" if self._fd >= 0 else None


def _write_all(fd: int, data: bytes, timeout: float) -> None:
    view = memoryview(data)
    deadline = time.monotonic() + timeout
    while view:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"the printer took no data for {timeout:.0f}s "
                               f"({len(view)} of {len(data)} bytes left)")
        try:
            _, writable, _ = select.select([], [fd], [], left)
            if not writable:
                continue
            sent = os.write(fd, view[:CHUNK])
        except BlockingIOError:
            continue
        except OSError as exc:
            raise PrinterGone(f"cannot write to the printer: {_why(exc)}") from None
        view = view[sent:]
        deadline = time.monotonic() + timeout  # the timeout is for no progress at all


def _read_now(fd: int) -> bytes:
    try:
        return os.read(fd, CHUNK)
    except BlockingIOError:
        return b""
    except OSError as exc:
        # EIO / ENODEV: a USB device pulled out (a closed pty reads the same).
        raise PrinterGone(f"the printer went away: {_why(exc)}") from None


def _why(exc: OSError) -> str:
    if exc.errno == errno.EBUSY:
        return "device busy (another program has it open)"
    return exc.strerror or str(exc)
