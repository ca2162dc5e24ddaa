"""The bridge driving real drivers over real HTTP: the ticket printer (devices/printer, over a
pseudo-terminal to the ESC/POS emulator) and the soundbox (its fake speaker)."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime

import pytest

from agent.bridge.models import FALLBACK_VI
from devices.printer import TicketPrinterConfig, build_ticket_printer
from devices.soundbox import Soundbox, SoundboxConfig
from devices.soundbox.fake import FakeSpeaker
from rpfleet.protocol.messages import AnnouncementResult, TicketPrint
from tests.agent.bridge.conftest import wait_for
from tests.devices.printer.emulator import PrinterEmulator

TICKET = {"number": "1023", "service": "Cấp đổi căn cước", "counter": "5", "waiting_ahead": 3,
          "qr": "IHN-20261125-000123", "site_name": "Bộ phận một cửa phường Ba Đình"}


class Recorded:
    """The drivers' Record: keeps every event, as the outbox would."""

    def __init__(self) -> None:
        self.events: list = []

    async def __call__(self, detail, at: datetime) -> None:
        self.events.append(detail)

    def of(self, kind: type) -> list:
        return [e for e in self.events if isinstance(e, kind)]


@pytest.fixture
async def printer(tmp_path):
    """The real ticket printer driver on a pty, and the emulator playing the printer."""
    emulator = PrinterEmulator(tmp_path / "usb-Ticket_Printer-if00-port0")
    recorded = Recorded()
    driver = build_ticket_printer(TicketPrinterConfig(
        id="printer-1", port="serial", device=str(emulator.link), status_every=1,
        answer_timeout=0.5, print_timeout=10), recorded)
    task = asyncio.create_task(driver.run())
    await wait_for(lambda: driver.status().online)
    yield driver, emulator, recorded
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    emulator.close()


@pytest.fixture(scope="module")
def voice_pack(tmp_path_factory):
    if shutil.which("espeak-ng") is None:
        pytest.skip("espeak-ng is not installed (scripts/bootstrap installs it)")
    from provisioning.voice_pack_build import build_default_pack

    return build_default_pack(tmp_path_factory.mktemp("vi-default"))


async def test_a_ticket_prints_and_is_reprinted_and_voided(start_bridge, printer):
    driver, emulator, recorded = printer
    running = start_bridge([driver])

    async with running.client() as client:
        printed = await client.post("/v1/tickets", json=TICKET)
        job = printed.json()["job_id"]
        again = await client.post(f"/v1/tickets/{job}/reprint")
        voided = await client.post(f"/v1/tickets/{job}/void")
        refused = await client.post(f"/v1/tickets/{job}/reprint")
        unknown = await client.post("/v1/tickets/0123456789abcdef/void")

    assert printed.status_code == 200, printed.text
    assert printed.json() == {"job_id": job, "printer": "printer-1", "printed": True}
    assert again.status_code == 200 and again.json()["printed"] is True
    assert again.json()["job_id"] != job
    assert voided.json() == {"job_id": job, "printer": "printer-1", "voided": True}
    assert (refused.status_code, refused.json()["error"]) == (409, "job-voided")
    assert (unknown.status_code, unknown.json()["error"]) == (404, "unknown-job")
    await wait_for(lambda: len(emulator.tickets) == 2)
    for paper in emulator.tickets:
        assert paper.cut and "1023" in paper.texts()
        assert [qr.data for qr in paper.qrs()] == ["IHN-20261125-000123"]
    assert [(e.outcome, e.number) for e in recorded.of(TicketPrint)] == [
        ("printed", "1023"), ("reprinted", "1023"), ("voided", "1023")]


async def test_a_ticket_that_does_not_print_tells_the_page_what_to_show(start_bridge, printer):
    driver, emulator, _ = printer
    running = start_bridge([driver])
    emulator.load_paper(0)  # the roll is empty

    async with running.client() as client:
        answer = await client.post("/v1/tickets", json=TICKET)
        status = await client.get("/v1/status")

    assert answer.status_code == 503
    assert answer.json()["printed"] is False
    assert answer.json()["reason"] == "paper-out"
    assert answer.json()["fallback"] == FALLBACK_VI == "Vui lòng lấy số tại quầy hướng dẫn"
    assert status.json()["printers"][0]["status"]["paper"] == "out"
    assert status.json()["peripherals"] == [
        {"id": "printer-1", "kind": "ticket-printer", "state": "failed", "detail": "paper out"}]
    assert emulator.tickets == []


async def test_without_a_printer_the_page_is_told_to_send_citizens_to_the_desk(start_bridge):
    running = start_bridge()

    async with running.client() as client:
        answer = await client.post("/v1/tickets", json=TICKET)

    assert answer.status_code == 503
    assert answer.json()["error"] == "no-printer"
    assert answer.json()["fallback"] == FALLBACK_VI


async def test_a_bad_ticket_is_refused_naming_the_field(start_bridge, printer):
    driver, emulator, _ = printer
    running = start_bridge([driver])

    async with running.client() as client:
        answer = await client.post("/v1/tickets", json={**TICKET, "waiting_ahead": -1})
        extra = await client.post("/v1/tickets", json={**TICKET, "colour": "red"})

    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid-request" and answer.json()["field"] == "waiting_ahead"
    assert extra.json()["field"] == "colour"
    assert emulator.tickets == []


async def test_an_announcement_is_said_by_the_local_soundbox(start_bridge, voice_pack):
    recorded = Recorded()
    speaker = FakeSpeaker()
    box = Soundbox(SoundboxConfig(id="sb-kiosk", output="fake", voice_pack=voice_pack), speaker,
                   recorded)
    task = asyncio.create_task(box.run())
    try:
        await wait_for(lambda: box.health().state == "ok")
        running = start_bridge([box])

        async with running.client() as client:
            taken = await client.post("/v1/announcements", json={
                "kind": "queue-call", "ticket": "1023", "counter": "5"})
            bad = await client.post("/v1/announcements", json={"kind": "payment"})

        assert taken.status_code == 202, taken.text
        assert taken.json()["soundboxes"] == ["sb-kiosk"]
        await wait_for(lambda: recorded.of(AnnouncementResult))
        result = recorded.of(AnnouncementResult)[0]
        assert (result.announce_id, result.outcome) == (taken.json()["id"], "played")
        assert speaker.said[0].words == (
            "mời công dân có số thứ tự một nghìn không trăm hai mươi ba đến quầy số năm")
        assert (bad.status_code, bad.json()["field"]) == (422, "kind")
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def test_without_a_soundbox_an_announcement_is_refused(start_bridge):
    running = start_bridge()

    async with running.client() as client:
        answer = await client.post("/v1/announcements", json={"kind": "text", "text": "Xin chào"})

    assert (answer.status_code, answer.json()["error"]) == (503, "no-soundbox")


def test_the_printer_and_soundbox_drivers_fit_the_bridge_protocols():
    from agent.bridge.peripherals import printers, soundboxes

    driver = build_ticket_printer(TicketPrinterConfig(id="p", port="fake"), Recorded())
    box = Soundbox(SoundboxConfig(id="sb", output="fake"), FakeSpeaker(), Recorded())

    assert printers([driver, box]) == [driver]
    assert soundboxes([driver, box]) == [box]


async def test_a_failing_driver_still_gets_the_page_a_json_answer_with_the_fallback(
        start_bridge, printer):
    driver, _, _ = printer

    async def broken(ticket):
        raise RuntimeError("a bug in a driver")

    driver.print_ticket = broken  # the real driver with one method broken
    running = start_bridge([driver])

    async with running.client() as client:
        answer = await client.post("/v1/tickets", json=TICKET)

    assert answer.status_code == 500
    assert answer.json()["error"] == "bridge-failed"
    assert answer.json()["fallback"] == FALLBACK_VI
