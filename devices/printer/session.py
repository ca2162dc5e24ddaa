"""Talking ESC/POS to an open printer port: real-time status queries, and a job printed to
the end (or stopped with the reason), hardware-agnostic.

How the end of a job is known: the job is followed by GS r 1, which the printer answers only
when it reaches it, i.e. once everything before it (the ticket and its cut) is done. While
waiting, DLE EOT queries (answered at once, even by a stopped printer) tell a paper end,
an open cover or an error; then what is left of the job is cleared from the printer's
buffers, so that the rest of a cut-short ticket does not come out when paper is loaded.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from devices.printer import escpos
from devices.printer.adapter import PrinterGone, PrinterPort
from devices.printer.escpos import RawStatus, StatusKind
from devices.printer.ticket import FailureReason


@dataclass(frozen=True)
class Timing:
    answer_s: float = 1.0
    """A status query not answered within this means the printer is gone."""
    poll_s: float = 0.5
    """While a job prints, ask for its status this often."""
    job_s: float = 30.0
    """A job not finished within this (after its last byte went out) has failed."""
    write_s: float = 10.0
    """The printer taking no data for this long has stopped."""


@dataclass(frozen=True)
class JobResult:
    printed: bool
    status: RawStatus | None
    reason: FailureReason | None = None
    detail: str | None = None


def not_ready(status: RawStatus) -> tuple[FailureReason, str] | None:
    """Why a printer in ``status`` would not print, or None when it would."""
    if status.cover_open:
        return "cover-open", "the printer's cover is open"
    if status.paper_out:
        return "paper-out", "the printer is out of paper"
    if status.error:
        return "offline", f"the printer reports an error: {status.error_text()}"
    if status.offline:
        return "offline", "the printer is offline (paper being fed, or waiting to recover)"
    return None


class PrinterSession:
    """One open port: status queries and jobs, one at a time (the caller serialises)."""

    def __init__(self, port: PrinterPort, timing: Timing = Timing()) -> None:
        self.port = port
        self.timing = timing
        self._realtime: list[int] = []
        self._marks = 0

    async def status(self) -> RawStatus:
        """The printer's state now. Raises PrinterGone when it does not answer."""
        printer = await self._query(StatusKind.PRINTER)
        offline = await self._query(StatusKind.OFFLINE_CAUSE)
        paper = await self._query(StatusKind.PAPER)
        error = await self._query(StatusKind.ERROR_CAUSE) if offline & 0x40 else 0
        return RawStatus(printer, offline, paper, error)

    async def print_job(self, job: bytes) -> JobResult:
        """Print ``job`` (whole ESC/POS bytes, ending in a cut) and wait for its end.

        Nothing is sent to a printer that is not ready. Raises PrinterGone when the printer
        stops answering; a paper end, an open cover or an error is a JobResult.
        """
        status = await self.status()
        if (why := not_ready(status)) is not None:
            return JobResult(False, status, *why)
        self._realtime.clear()
        self._marks = 0
        try:
            await self.port.write(job + escpos.PRINTED_MARK, self.timing.write_s)
        except TimeoutError as exc:
            return await self._stopped(f"{exc}")
        deadline = time.monotonic() + self.timing.job_s
        while True:
            await self._collect(self.timing.poll_s, want_mark=True)
            if self._marks:
                return JobResult(True, await self.status())
            status = await self.status()
            if (why := not_ready(status)) is not None:
                await self._clear()
                return JobResult(False, status, why[0], why[1] + " (the ticket was cut short)")
            if time.monotonic() > deadline:
                await self._clear()
                return JobResult(False, status, "offline",
                                 f"the printer did not finish the ticket within "
                                 f"{self.timing.job_s:.0f}s")

    async def _stopped(self, detail: str) -> JobResult:
        status = await self.status()
        await self._clear()
        reason, why = not_ready(status) or ("offline", "the printer stopped taking data")
        return JobResult(False, status, reason, f"{why}: {detail}")

    async def _clear(self) -> None:
        await self.port.write(escpos.CLEAR_BUFFERS, self.timing.write_s)

    async def _query(self, kind: StatusKind) -> int:
        self._realtime.clear()
        await self.port.write(escpos.status_query(kind), self.timing.write_s)
        deadline = time.monotonic() + self.timing.answer_s
        while not self._realtime:
            left = deadline - time.monotonic()
            if left <= 0:
                raise PrinterGone(f"the printer did not answer a status query "
                                  f"within {self.timing.answer_s:.1f}s")
            await self._collect(left, want_mark=False)
        return self._realtime.pop(0)

    async def _collect(self, timeout: float, *, want_mark: bool) -> None:
        """Read for up to ``timeout``, sorting answers into status bytes and printed marks;
        returns early once the awaited kind came."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return
            for byte in await self.port.read(left):
                if escpos.is_realtime_answer(byte):
                    self._realtime.append(byte)
                elif escpos.is_mark_answer(byte):
                    self._marks += 1
            if (self._marks if want_mark else self._realtime):
                return
            await asyncio.sleep(0)
