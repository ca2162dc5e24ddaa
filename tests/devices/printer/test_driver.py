"""The TicketPrinter driver, for real, over pseudo-terminals against the printer emulator:
tickets printed to the cut, paper running out mid-ticket, the cover, errors, a printer
switched off, vanishing and coming back, reprint and void, and the events recorded."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest
import serial

from devices.printer.config import TicketPrinterConfig
from devices.printer.driver import TicketPrinter, build_ticket_printer
from devices.printer.ticket import JobVoided, Ticket, UnknownJob
from devices.printer.usblp_adapter import FilePrinterPort
from tests.devices.printer.emulator import PrinterEmulator, Text
from tests.devices.rating_pad.pty_pad import wait_until

BOOKING = "https://ihanoi.hanoi.gov.vn/dat-lich/xac-nhan?ma=BK-7F3A9C"


def ticket(number: str = "A012", **fields) -> Ticket:
    values = dict(number=number, service="Cấp đổi căn cước", counter="5",
                  issued_at=datetime(2026, 11, 25, 1, 34, tzinfo=timezone.utc), waiting_ahead=3,
                  qr=BOOKING, site_name="UBND phường Ba Đình")
    return Ticket(**{**values, **fields})


class Events(list):
    async def __call__(self, detail, at) -> None:
        assert at.tzinfo is not None
        self.append(detail)


@pytest.fixture
def link(tmp_path: Path) -> Path:
    path = tmp_path / "serial" / "by-id" / "usb-Xprinter_XP-80C_0123-if00-port0"
    path.parent.mkdir(parents=True)
    return path


@pytest.fixture
def emulator(link: Path):
    printer = PrinterEmulator(link)
    yield printer
    printer.close()


def config(link: Path, **fields) -> TicketPrinterConfig:
    values = dict(id="may-in-ve", port="serial", device=str(link), status_every=1,
                  answer_timeout=1, print_timeout=10)
    return TicketPrinterConfig(**{**values, **fields})


@pytest.fixture
async def printer(link: Path, emulator: PrinterEmulator):
    events = Events()
    driver = build_ticket_printer(config(link), events)
    driver.events = events  # type: ignore[attr-defined]
    task = asyncio.create_task(driver.run())
    await wait_until(lambda: driver.health().state == "ok")
    yield driver
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def complete(printed) -> bool:
    """A whole queue ticket: the number large, the QR code, cut."""
    texts = [e for e in printed.elements if isinstance(e, Text) and e.text == "A012"]
    return printed.cut and not printed.cut_short and len(texts) == 1 and bool(printed.qrs())


# -- printing -----------------------------------------------------------------------------


async def test_a_ticket_prints_to_the_cut_and_is_recorded(printer, emulator):
    outcome = await printer.print_ticket(ticket())

    assert outcome.printed and outcome.reason is None
    assert len(emulator.tickets) == 1 and complete(emulator.tickets[0])
    assert emulator.tickets[0].qrs()[0].data == BOOKING
    assert emulator.unknown == []
    [event] = printer.events
    assert (event.kind, event.outcome, event.job_id, event.number, event.counter) == (
        "ticket", "printed", outcome.job_id, "A012", "5")
    assert "qr" not in event.model_dump() and BOOKING not in event.model_dump_json()
    assert printer.status().online and printer.status().paper == "ok"


async def test_the_status_is_asked_after_each_ticket(printer, emulator):
    emulator.paper_dots, emulator.near_end_dots = 5000, 4900  # trips once this ticket is out
    before = emulator.status_queries

    outcome = await printer.print_ticket(ticket())

    assert outcome.printed
    assert emulator.status_queries >= before + 6, "before and after the ticket"
    assert printer.status().paper == "near-end"
    assert printer.health().state == "degraded" and "near end" in printer.health().detail


async def test_tickets_asked_for_together_print_one_after_the_other(printer, emulator):
    outcomes = await asyncio.gather(*(printer.print_ticket(ticket(f"A0{n}")) for n in (10, 11, 12)))

    assert all(o.printed for o in outcomes)
    numbers = [[e.text for e in t.elements if isinstance(e, Text) and e.width == 4][0]
               for t in emulator.tickets]
    assert numbers == ["A010", "A011", "A012"]
    assert [e.job_id for e in printer.events] == [o.job_id for o in outcomes]


async def test_a_usb_printer_class_device_is_plain_file_io(link, emulator):
    events = Events()
    driver = TicketPrinter(config(link, port="usblp", device="/dev/usb/lp0"), FilePrinterPort(),
                           events)
    driver.slot.attach(str(link))  # hot-plug found its node (here the emulator's pty)
    task = asyncio.create_task(driver.run())
    try:
        outcome = await driver.print_ticket(ticket())
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    assert outcome.printed and complete(emulator.tickets[0])


# -- paper, cover, errors -------------------------------------------------------------------


async def test_paper_running_out_mid_ticket_fails_it_and_its_rest_never_prints(printer, emulator):
    emulator.paper_dots = 160  # the roll ends a few lines into the ticket

    outcome = await printer.print_ticket(ticket())

    assert not outcome.printed and outcome.reason == "paper-out"
    assert "cut short" in outcome.detail
    assert emulator.tickets == [] and emulator.printing.cut_short
    await wait_until(lambda: emulator.buffers_cleared == 1)
    assert printer.status().paper == "out"
    assert (printer.health().state, printer.health().detail) == ("failed", "paper out")
    [event] = printer.events
    assert (event.outcome, event.reason) == ("failed", "paper-out")

    emulator.load_paper()
    await wait_until(lambda: printer.health().state == "ok")  # seen by the idle poll
    again = await printer.print_ticket(ticket())

    assert again.printed
    assert len(emulator.tickets) == 1 and complete(emulator.tickets[0])
    assert len(emulator.cut_short) == 1, "only the torn-off half of the first one"


async def test_no_ticket_is_sent_to_a_printer_out_of_paper(printer, emulator):
    emulator.load_paper(0)
    sent = len(emulator.received)

    outcome = await printer.print_ticket(ticket())

    assert (outcome.printed, outcome.reason) == (False, "paper-out")
    assert b"\x1dv0" not in emulator.received[sent:], "no ticket bytes went out"


async def test_a_cover_opened_while_idle_is_seen_by_the_poll(printer, emulator):
    emulator.set_cover(True)
    await wait_until(lambda: printer.health().state == "failed")

    assert printer.health().detail == "cover open" and printer.status().cover_open
    outcome = await printer.print_ticket(ticket())
    assert (outcome.printed, outcome.reason) == (False, "cover-open")

    emulator.set_cover(False)
    assert (await printer.print_ticket(ticket())).printed


async def test_a_cover_opened_mid_ticket(printer, emulator):
    emulator.cover_opens_after_dots = 200

    outcome = await printer.print_ticket(ticket())

    assert (outcome.printed, outcome.reason) == (False, "cover-open")
    assert emulator.tickets == []


async def test_a_printer_in_error_is_offline_with_the_cause_for_it(printer, emulator):
    emulator.set_error(True)

    outcome = await printer.print_ticket(ticket())

    assert (outcome.printed, outcome.reason) == (False, "offline")
    assert "unrecoverable error" in outcome.detail
    assert printer.health().state == "failed" and "unrecoverable" in printer.health().detail


# -- the device going away ---------------------------------------------------------------------


async def test_a_printer_switched_off_is_no_device_and_is_reopened_when_back(printer, emulator):
    emulator.mute = True  # off, behind a USB-serial adapter that stays

    outcome = await printer.print_ticket(ticket())

    assert (outcome.printed, outcome.reason) == (False, "no-device")
    assert printer.health().state == "missing"
    assert "did not answer" in printer.health().detail

    emulator.mute = False
    assert (await printer.print_ticket(ticket())).printed


async def test_a_power_cycled_printer_is_reopened_for_the_next_job(printer, emulator):
    assert (await printer.print_ticket(ticket())).printed
    opens = printer.opens

    emulator.power_cycle()  # a new tty behind the same by-id link, the old one dead
    outcome = await printer.print_ticket(ticket())

    assert outcome.printed
    assert printer.opens == opens + 1
    assert len(emulator.tickets) == 2 and complete(emulator.tickets[1])


async def test_a_vanished_printer_is_missing_and_comes_back_by_itself(printer, emulator):
    emulator.unplug()
    await wait_until(lambda: printer.health().state == "missing")
    outcome = await printer.print_ticket(ticket())
    assert (outcome.printed, outcome.reason) == (False, "no-device")

    emulator.plug_in()
    printer.attach(str(emulator.link))  # hot-plug: reopened at once, not at the next retry
    await wait_until(lambda: printer.health().state == "ok")

    assert (await printer.print_ticket(ticket())).printed


async def test_a_printer_held_by_another_program_is_not_left_busy(printer, emulator, link):
    emulator.unplug()
    await wait_until(lambda: printer.health().state == "missing")
    emulator.plug_in()
    other = serial.Serial(str(link), 115200, exclusive=True)  # e.g. a vendor's tool
    try:
        outcome = await printer.print_ticket(ticket())
        assert (outcome.printed, outcome.reason) == (False, "no-device")
        assert "lock" in outcome.detail.lower() or "busy" in outcome.detail.lower()
    finally:
        other.close()

    assert (await printer.print_ticket(ticket())).printed


# -- reprint and void ---------------------------------------------------------------------------


async def test_reprint_and_void_are_printed_and_recorded(printer, emulator):
    first = await printer.print_ticket(ticket())

    again = await printer.reprint(first.job_id)
    await printer.void(first.job_id)
    await printer.void(first.job_id)  # twice: once recorded

    assert again.printed and again.job_id != first.job_id
    assert len(emulator.tickets) == 2 and all(complete(t) for t in emulator.tickets)
    assert [(e.outcome, e.job_id, e.reprint_of) for e in printer.events] == [
        ("printed", first.job_id, None),
        ("reprinted", again.job_id, first.job_id),
        ("voided", first.job_id, None),
    ]
    with pytest.raises(JobVoided, match="voided"):
        await printer.reprint(first.job_id)
    with pytest.raises(UnknownJob, match="no job"):
        await printer.reprint("0" * 32)
    with pytest.raises(UnknownJob):
        await printer.void("0" * 32)


async def test_a_failed_ticket_printed_later_is_issued_then(printer, emulator):
    emulator.load_paper(0)
    failed = await printer.print_ticket(ticket())
    emulator.load_paper()

    later = await printer.reprint(failed.job_id)

    assert later.printed
    assert [(e.outcome, e.reprint_of) for e in printer.events] == [
        ("failed", None), ("printed", failed.job_id)]


async def test_stopping_closes_the_port(link, emulator):
    driver = build_ticket_printer(config(link), Events())
    task = asyncio.create_task(driver.run())
    await wait_until(lambda: driver.health().state == "ok")

    task.cancel()
    await asyncio.gather(task, return_exceptions=True)

    assert driver.health().state == "missing"
    # the port is free again: another program can take it exclusively
    serial.Serial(str(link), 115200, exclusive=True).close()


async def test_busy_from_the_ticket_asked_for_until_it_is_out(printer, emulator):
    """What the updater's install gate asks (agent/update_link.py NodeProbe.busy)."""
    assert printer.busy is False
    job = asyncio.create_task(printer.print_ticket(ticket()))
    await asyncio.sleep(0)  # the job has started and waits for the printer
    assert printer.busy is True
    assert (await job).printed
    assert printer.busy is False
