"""The TicketPrinter driver: queue tickets printed one at a time through a port, the printer's
status watched while idle, every outcome recorded as a `TicketPrint` event.

The public API (`print_ticket`, `reprint`, `void`, `status`) is described in
devices/printer/ticket.py, beside its models.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable

from devices.base import DeviceSlot, OnSlot, Record
from devices.printer.adapter import PrinterGone, PrinterPort
from devices.printer.config import TicketPrinterConfig
from devices.printer.escpos import RawStatus
from devices.printer.layout import TicketStyle, ticket_bytes
from devices.printer.raster import FontMissing
from devices.printer.session import JobResult, PrinterSession, Timing, not_ready
from devices.printer.ticket import (
    JOBS_KEPT,
    JobVoided,
    PrinterStatus,
    PrintOutcome,
    Ticket,
    UnknownJob,
)
from rpfleet.protocol.messages import PeripheralHealth, TicketPrint

log = logging.getLogger(__name__)

REOPEN_DELAYS_S = (1, 2, 5, 10, 30)
"""While the printer is absent, try to open it again after these pauses (then every 30 s);
a hot-plug attach tries at once."""
JOB_REOPEN_DELAYS_S = (0.0, 0.3, 1.0, 2.0)
"""A job finding the printer closed (or gone since the last poll: power-cycled, replugged)
tries to open it after each of these pauses before it gives up with ``no-device``."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class Job:
    ticket: Ticket
    printed: bool
    voided: bool = False


class TicketPrinter(OnSlot):
    """Serves one ESC/POS ticket printer (see devices/printer/ticket.py for the API)."""

    kind = "ticket-printer"

    def __init__(self, config: TicketPrinterConfig, port: PrinterPort, record: Record, *,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.config = config
        self.id = config.id
        self.port = port
        self.slot = DeviceSlot(config.device)
        self._record = record
        self._clock = clock
        self._style = TicketStyle(
            width_dots=576 if config.paper_width == 80 else 384,
            vietnamese_code_page=config.vietnamese_code_page,
            qr_module=config.qr_module, partial_cut=config.partial_cut)
        self._timing = Timing(answer_s=config.answer_timeout, job_s=config.print_timeout)
        self._session: PrinterSession | None = None
        self._opened_path: str | None = None
        self._io: asyncio.Lock | None = None
        self._status = PrinterStatus(present=False, online=False)
        self._missing_why = "not opened yet"
        self._offline_why = ""
        self._jobs: OrderedDict[str, Job] = OrderedDict()
        self._printing = 0
        self.opens = 0
        """How many times the printer was opened (a reopen after a power cycle counts)."""

    # -- the API ---------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A ticket is being printed or waits for the printer (the updater waits for quiet)."""
        return self._printing > 0

    async def print_ticket(self, ticket: Ticket) -> PrintOutcome:
        return await self._print(ticket, reprint_of=None)

    async def reprint(self, job_id: str) -> PrintOutcome:
        job = self._job(job_id)
        if job.voided:
            raise JobVoided(f"job {job_id} (ticket {job.ticket.number}) was voided")
        return await self._print(job.ticket, reprint_of=job_id)

    async def void(self, job_id: str) -> None:
        job = self._job(job_id)
        if job.voided:
            return
        job.voided = True
        log.info("printer %s: job %s (ticket %s) voided", self.id, job_id, job.ticket.number)
        await self._report(job_id, job.ticket, "voided")

    def status(self) -> PrinterStatus:
        return self._status

    def health(self) -> PeripheralHealth:
        status = self._status
        if not status.present:
            return self._health("missing", self._missing_why)
        if status.cover_open:
            return self._health("failed", "cover open")
        if status.paper == "out":
            return self._health("failed", "paper out")
        if not status.online:
            return self._health("failed", self._offline_why)
        if status.paper == "near-end":
            return self._health("degraded", "paper near end: change the roll soon")
        return self._health("ok", self.port.describe())

    async def run(self) -> None:
        """Open the printer (again and again while it is absent) and poll its status while
        idle, until cancelled; closes it on the way out."""
        failures = 0
        try:
            while True:
                async with self._lock():
                    if self._session is not None and self._opened_path != self.slot.path:
                        await self._close("hot-plug moved it")
                    if self._session is None:
                        await self._open()
                    else:
                        await self._poll()
                if self._session is not None:
                    failures = 0
                    delay = self.config.status_every
                else:
                    delay = REOPEN_DELAYS_S[min(failures, len(REOPEN_DELAYS_S) - 1)]
                    failures += 1
                await self.slot.wait_change(delay)
        finally:
            await self._close("stopped")

    # -- printing --------------------------------------------------------------------------

    async def _print(self, ticket: Ticket, reprint_of: str | None) -> PrintOutcome:
        job_id = uuid.uuid4().hex
        self._printing += 1
        try:
            async with self._lock():  # first come, first printed: the lock queues in order
                try:
                    data = await asyncio.to_thread(ticket_bytes, ticket, self._style)
                except (FontMissing, ValueError) as exc:
                    result = JobResult(False, None, "failed",
                                       f"the ticket could not be laid out: {exc}")
                else:
                    result = await self._run_job(data)
        finally:
            self._printing -= 1
        earlier = self._jobs.get(reprint_of) if reprint_of else None
        self._keep(job_id, Job(ticket, result.printed))
        if result.printed:
            outcome = "reprinted" if earlier is not None and earlier.printed else "printed"
            log.info("printer %s: ticket %s %s (job %s)", self.id, ticket.number, outcome, job_id)
        else:
            outcome = "failed"
            log.warning("printer %s: ticket %s not printed (job %s): %s: %s",
                        self.id, ticket.number, job_id, result.reason, result.detail)
        await self._report(job_id, ticket, outcome, result.reason, result.detail, reprint_of)
        return PrintOutcome(job_id=job_id, printed=result.printed, reason=result.reason,
                            detail=result.detail)

    async def _run_job(self, data: bytes) -> JobResult:
        """Print under the lock: reopen a printer that is closed or went away while idle."""
        session = await self._ready_session()
        if session is None:
            return JobResult(False, None, "no-device", f"no printer: {self._missing_why}")
        try:
            result = await session.print_job(data)
        except PrinterGone as exc:
            await self._close(str(exc))
            return JobResult(False, None, "no-device",
                             f"the printer went away while printing: {exc}")
        if result.status is not None:
            self._take_status(result.status)
        return result

    async def _ready_session(self) -> PrinterSession | None:
        """The open session, after making sure the printer still answers; None when it cannot
        be opened within JOB_REOPEN_DELAYS_S."""
        if self._session is not None:
            try:
                self._take_status(await self._session.status())
                return self._session
            except PrinterGone as exc:
                await self._close(str(exc))  # power-cycled or replugged since the last poll
        for pause in JOB_REOPEN_DELAYS_S:
            if pause:
                await asyncio.sleep(pause)
            if await self._open():
                return self._session
        return None

    # -- the device ------------------------------------------------------------------------

    async def _open(self) -> bool:
        path = self.slot.path
        try:
            await self.port.open(path)
            session = PrinterSession(self.port, self._timing)
            status = await session.status()
        except PrinterGone as exc:
            await self.port.close()
            self._gone(str(exc) or type(exc).__name__)
            return False
        self._session, self._opened_path = session, path
        self.opens += 1
        log.info("printer %s: opened %s", self.id, self.port.describe())
        self._take_status(status)
        return True

    async def _poll(self) -> None:
        assert self._session is not None
        try:
            self._take_status(await self._session.status())
        except PrinterGone as exc:
            await self._close(str(exc))

    async def _close(self, why: str) -> None:
        if self._session is not None:
            log.info("printer %s: closed (%s)", self.id, why)
        self._session = None
        await self.port.close()
        self._gone(why)

    def _gone(self, why: str) -> None:
        if self._status.present or why != self._missing_why:
            log.info("printer %s: missing (%s)", self.id, why)
        self._missing_why = why
        self._status = PrinterStatus(present=False, online=False, checked_at=self._clock())

    def _take_status(self, raw: RawStatus) -> None:
        paper = "out" if raw.paper_out else "near-end" if raw.paper_near_end else "ok"
        why = not_ready(raw)
        self._offline_why = why[1] if why else ""
        status = PrinterStatus(present=True, online=why is None, paper=paper,
                               cover_open=raw.cover_open, checked_at=self._clock())
        if (status.online, status.paper, status.cover_open) != (
                self._status.online, self._status.paper, self._status.cover_open):
            log.info("printer %s: %s, paper %s%s", self.id,
                     "online" if status.online else f"not ready ({self._offline_why})",
                     paper, ", cover open" if raw.cover_open else "")
        self._status = status

    def _lock(self) -> asyncio.Lock:
        # Made on first use, so on the loop that runs the driver.
        if self._io is None:
            self._io = asyncio.Lock()
        return self._io

    # -- jobs and events -------------------------------------------------------------------

    def _job(self, job_id: str) -> Job:
        job = self._jobs.get(job_id)
        if job is None:
            raise UnknownJob(f"printer {self.id} has no job {job_id!r}")
        return job

    def _keep(self, job_id: str, job: Job) -> None:
        self._jobs[job_id] = job
        while len(self._jobs) > JOBS_KEPT:
            self._jobs.popitem(last=False)

    async def _report(self, job_id: str, ticket: Ticket, outcome: str, reason: str | None = None,
                      detail: str | None = None, reprint_of: str | None = None) -> None:
        event = TicketPrint(printer=self.id, job_id=job_id, number=ticket.number,
                            service=ticket.service, counter=ticket.counter, outcome=outcome,
                            reason=reason, detail=detail[:2000] if detail else None,
                            reprint_of=reprint_of)
        try:
            await self._record(event, self._clock())
        except Exception:  # noqa: BLE001 - the ticket is out (or not) either way
            log.exception("printer %s: the %s of job %s could not be recorded",
                          self.id, outcome, job_id)

    def _health(self, state: str, detail: str | None) -> PeripheralHealth:
        return PeripheralHealth(id=self.id, kind=self.kind, state=state,
                                detail=detail[:2000] if detail else None)


def build_ticket_printer(config: TicketPrinterConfig, record: Record) -> TicketPrinter:
    """The printer's driver with the port its ``port`` names; hardware libraries load only
    here."""
    port: PrinterPort
    if config.port == "fake":
        from devices.printer.fake import FakePrinter

        port = FakePrinter()
    elif config.port == "serial":
        from devices.printer.serial_adapter import SerialPrinterPort

        port = SerialPrinterPort(config.baudrate, config.flow_control)
    else:
        from devices.printer.usblp_adapter import FilePrinterPort

        port = FilePrinterPort()
    return TicketPrinter(config, port, record)
