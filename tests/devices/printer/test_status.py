"""Printer status: the DLE EOT answers decoded, what stops a ticket, status answers told
apart from the end-of-job mark, and the fake printer (demo) behind the same port."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from devices.printer import escpos
from devices.printer.config import TicketPrinterConfig
from devices.printer.driver import build_ticket_printer
from devices.printer.escpos import RawStatus, StatusKind
from devices.printer.session import not_ready
from devices.printer.ticket import Ticket
from tests.devices.printer.emulator import EscPosPrinter


def ask(printer: EscPosPrinter) -> RawStatus:
    answers = [printer.feed(escpos.status_query(kind))[0] for kind in StatusKind]
    printer_byte, offline, error, paper = answers
    return RawStatus(printer_byte, offline, paper, error)


@pytest.mark.parametrize("setup, reason, paper", [
    (lambda p: None, None, "ok"),
    (lambda p: setattr(p, "paper_dots", 0), "paper-out", "out"),
    (lambda p: setattr(p, "cover_open", True), "cover-open", "ok"),
    (lambda p: setattr(p, "error", True), "offline", "ok"),
    (lambda p: (setattr(p, "paper_dots", 50), setattr(p, "near_end_dots", 100)), None, "near-end"),
], ids=["ready", "paper-out", "cover-open", "error", "near-end"])
def test_status_answers_decode_to_what_the_printer_is(setup, reason, paper):
    printer = EscPosPrinter()
    setup(printer)

    status = ask(printer)

    assert all(escpos.is_realtime_answer(b) for b in (status.printer, status.offline_cause,
                                                      status.paper, status.error_cause))
    assert (not_ready(status) or (None,))[0] == reason
    assert ("out" if status.paper_out else "near-end" if status.paper_near_end else "ok") == paper


def test_an_error_is_explained_for_it():
    status = RawStatus(printer=0x1A, offline_cause=0x52, paper=0x12, error_cause=0x32)

    assert not_ready(status) == ("offline", "the printer reports an error: unrecoverable error")


def test_the_cover_is_named_before_the_paper():
    # an open cover also shows no paper on many printers; the cover is what to fix
    status = RawStatus(printer=0x1A, offline_cause=0x36, paper=0x72)
    assert not_ready(status)[0] == "cover-open"


@pytest.mark.parametrize("byte, realtime, mark", [
    (0x12, True, False), (0x1A, True, False), (0x72, True, False),
    (0x00, False, True), (0x03, False, True), (0x0F, False, True),
    (0x11, False, False), (0x13, False, False),  # XON / XOFF
    (0x37, False, False),
], ids=["ready", "offline", "paper-end", "mark", "mark-near-end", "mark-end", "xon", "xoff",
        "clear-answer"])
def test_status_answers_and_end_marks_are_told_apart(byte, realtime, mark):
    assert (escpos.is_realtime_answer(byte), escpos.is_mark_answer(byte)) == (realtime, mark)


def test_the_end_mark_is_answered_only_after_what_came_before_printed():
    printer = EscPosPrinter(paper_dots=40)
    job = escpos.INIT + b"1\n2\n3\n" + escpos.cut() + escpos.PRINTED_MARK

    assert printer.feed(job) == b"", "stopped at the paper end: no mark"
    printer.paper_dots = None
    assert printer.resume() == b"\x00"


async def test_the_fake_printer_serves_the_driver_like_a_real_one():
    events = []

    async def record(detail, at):
        events.append(detail)

    printer = build_ticket_printer(TicketPrinterConfig(id="demo", port="fake"), record)
    task = asyncio.create_task(printer.run())
    try:
        ticket = Ticket(number="A001", service="Chứng thực bản sao", waiting_ahead=0,
                        issued_at=datetime.now(timezone.utc))
        printed = await printer.print_ticket(ticket)
        printer.port.paper = "out"
        failed = await printer.print_ticket(ticket)
        printer.port.unplug()
        gone = await printer.print_ticket(ticket)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert printed.printed and len(printer.port.tickets) == 1
    assert (failed.printed, failed.reason, gone.reason) == (False, "paper-out", "no-device")
    assert [e.outcome for e in events] == ["printed", "failed", "failed"]
