"""The sample kiosk page in headless Chromium, against a real agent: its device bridge, a fake
QR reader (the scanner driver), and the real ticket printer driver on a pseudo-terminal with
the ESC/POS emulator playing the printer.

The page gets ``window.rpfleet`` as the kiosk browser's supervisor injects it (here: by
Playwright's init script), and uses nothing but the bridge.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from agent.bridge.models import FALLBACK_VI
from agent.bridge.settings import BridgeSettings
from rpfleet.protocol.messages import Scan, TicketPrint
from tests.conftest import eventually
from tests.devices.printer.emulator import PrinterEmulator

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
TIMEOUT_MS = 15_000
SCREENSHOT = os.environ.get("RPFLEET_KIOSK_SCREENSHOT")
"""Set to a PNG path to keep a picture of the page with a ticket taken."""


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium",
                                             args=["--no-sandbox"])
        yield browser
        browser.close()


class Kiosk:
    def __init__(self, runner, emulator: PrinterEmulator, page) -> None:
        self.runner = runner
        self.emulator = emulator
        self.page = page

    @property
    def agent(self):
        return self.runner.agent

    def driver(self, id: str):
        return next(d for d in self.agent.drivers if d.id == id)

    def scan(self, code: str) -> None:
        """The citizen holds ``code`` under the kiosk's QR reader."""
        self.runner.call(self.driver("qr-kiosk").adapter.scan, code)

    def recorded(self, kind: type) -> list:
        events = self.runner.call(self.agent.outbox.oldest, 1000)
        return [e.detail for e in events if isinstance(e.detail, kind)]

    def text(self, selector: str) -> str:
        return self.page.locator(selector).inner_text()


@pytest.fixture
def kiosk(chromium, running_agent, new_node, tmp_path, tokens):
    emulator = PrinterEmulator(tmp_path / "usb-Ticket_Printer-if00-port0")
    runner = running_agent(new_node(), peripherals=[
        {"kind": "scanner", "id": "qr-kiosk", "counter": "kiosk-1", "source": "fake"},
        {"kind": "ticket-printer", "id": "printer-1", "port": "serial",
         "device": str(emulator.link), "status_every": 1, "answer_timeout": 0.5},
    ], bridge=BridgeSettings(port=0, sample_page=True))
    bridge = runner.agent.bridge
    tokens.append(bridge.token)  # checked against every log record after the test
    eventually(lambda: bridge.bound)
    context = chromium.new_context(timezone_id="Asia/Ho_Chi_Minh", locale="vi-VN",
                                   viewport={"width": 1280, "height": 800})
    context.add_init_script(f"window.rpfleet = {json.dumps(bridge.page_globals())};")
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(bridge.url + "/kiosk/")
    kiosk = Kiosk(runner, emulator, page)
    expect(page.locator("#connection")).to_have_text("Thiết bị: đã kết nối")
    expect(page.locator("#printer")).to_have_text("Máy in: sẵn sàng")
    yield kiosk
    context.close()
    emulator.close()


def expect(locator):
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def test_choosing_a_service_prints_its_next_number(kiosk):
    page = kiosk.page
    assert page.locator("#services button .name").all_inner_texts() == [
        "Hộ tịch", "Đất đai", "Đăng ký kinh doanh", "Chứng thực", "Lý lịch tư pháp", "Xây dựng"]

    page.click("button[data-service=ho-tich]")
    expect(page.locator("#result-number")).to_have_text("1001")
    expect(page.locator("#result-message")).to_have_text("Mời bạn nhận phiếu bên dưới")
    assert kiosk.text("#result-service") == "Hộ tịch · Quầy 1"
    page.click("#done")
    page.click("button[data-service=ho-tich]")
    expect(page.locator("#result-number")).to_have_text("1002")
    if SCREENSHOT:
        page.screenshot(path=SCREENSHOT)

    eventually(lambda: len(kiosk.emulator.tickets) == 2)
    assert [("1001" in t.texts(), "1002" in t.texts(), t.cut) for t in kiosk.emulator.tickets] == [
        (True, False, True), (False, True, True)]
    printed = eventually(lambda: kiosk.recorded(TicketPrint))
    assert [(e.number, e.service, e.counter, e.outcome) for e in printed] == [
        ("1001", "Hộ tịch", "1", "printed"), ("1002", "Hộ tịch", "1", "printed")]


def test_scanning_an_ihanoi_booking_checks_in_and_prints_its_ticket(kiosk):
    page = kiosk.page
    today = datetime.now(HANOI)
    code = f"IHN-{today:%Y%m%d}-000123"

    kiosk.scan(code)

    expect(page.locator("#booking-title")).to_have_text(f"Lịch hẹn {code}")
    expect(page.locator("#booking-detail")).to_have_text(
        f"Ngày hẹn: {today:%d/%m/%Y} · Đã xác nhận")
    expect(page.locator("#result-number")).to_have_text("9001")
    assert kiosk.text("#result-service") == "Lịch hẹn iHanoi · Quầy 7"
    eventually(lambda: kiosk.emulator.tickets)
    assert [qr.data for qr in kiosk.emulator.tickets[0].qrs()] == [code]
    scans = kiosk.recorded(Scan)
    assert [(s.code, s.code_kind) for s in scans] == [(code, "ihanoi-booking")]


def test_a_ticket_that_cannot_print_sends_the_citizen_to_the_desk(kiosk):
    page = kiosk.page
    kiosk.emulator.load_paper(0)  # the roll ran out
    expect(page.locator("#printer")).to_have_text("Máy in: hết giấy")  # pushed by the bridge

    page.click("button[data-service=dat-dai]")

    expect(page.locator("#result-message")).to_have_text(FALLBACK_VI)
    assert kiosk.text("#result-label") == "Không in được phiếu"
    assert kiosk.text("#result-number") == ""
    assert kiosk.emulator.tickets == []
    failed = eventually(lambda: kiosk.recorded(TicketPrint))
    assert [(e.number, e.outcome, e.reason) for e in failed] == [("2001", "failed", "paper-out")]

    kiosk.emulator.load_paper()  # a new roll: the number was not used up
    expect(page.locator("#printer")).to_have_text("Máy in: sẵn sàng")
    page.click("#done")
    page.click("button[data-service=dat-dai]")
    expect(page.locator("#result-number")).to_have_text("2001")
