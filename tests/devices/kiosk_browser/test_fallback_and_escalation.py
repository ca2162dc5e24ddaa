"""Two kiosks started together while their page's server is down show the fallback page and
come back by themselves when it answers; a page that keeps failing climbs the whole repair
ladder and ends in an alarm, not a reboot loop."""

from __future__ import annotations

import io
import shutil
import socket

import pytest
from PIL import Image, ImageStat

from devices.kiosk_browser.config import KioskBrowserConfig
from tests.conftest import eventually
from tests.devices.kiosk_browser.harness import RunningKiosk
from tests.devices.kiosk_browser.pages import PageServer

CHROMIUM = "/usr/bin/chromium"
FALLBACK_TEXT = "Vui lòng lấy số tại quầy hướng dẫn"

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="chromium is not installed (scripts/bootstrap installs it)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(name: str, url: str, **fields) -> KioskBrowserConfig:
    return KioskBrowserConfig.model_validate({
        "id": name, "url": url, "chromium": CHROMIUM, "headless": True, "window_size": (800, 450),
        "heartbeat": 0.3, "heartbeat_timeout": 1.5, "recheck_every": 0.5,
        "screenshot_every": None, "cec": "fake", "system": "fake", **fields})


def test_two_kiosks_show_the_fallback_and_return_by_themselves(tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}/kiosk"
    kiosks = [RunningKiosk(config(f"kiosk-{n}", url), tmp_path / f"k{n}") for n in (1, 2)]
    server = None
    try:
        for kiosk in kiosks:
            kiosk.start()
        for kiosk in kiosks:
            eventually(lambda: (kiosk.evaluate("document.body.innerText") or "").startswith(FALLBACK_TEXT))
            assert kiosk.href().startswith("file://")
            health = kiosk.driver.health()
            assert health.state == "degraded" and "fallback" in health.detail
            assert [a.code for a in kiosk.alarms()] == [f"page-unreachable:{kiosk.driver.id}"]
        # What a citizen sees: big light letters on a dark ground, not an empty screen.
        image, _ = kiosks[0].call(kiosks[0].driver.screenshot(640))
        with Image.open(io.BytesIO(image)) as shot:
            grey = shot.convert("L")
            assert ImageStat.Stat(grey).stddev[0] > 20
            assert grey.getextrema()[1] > 200
        server = PageServer(port).start()
        for kiosk in kiosks:
            eventually(lambda: kiosk.href() == url and kiosk.driver.health().state == "ok")
            assert kiosk.evaluate("document.querySelector('h1').textContent") == "Lấy số thứ tự"
            eventually(lambda: kiosk.alarms()[-1].cleared)
            assert kiosk.repairs() == []  # the server's absence is not the page's fault
        assert server.hits.count("/kiosk") >= 2
    finally:
        for kiosk in kiosks:
            kiosk.stop()
        if server is not None:
            server.stop()


def test_a_page_that_keeps_hanging_climbs_the_ladder_and_ends_in_an_alarm(tmp_path):
    server = PageServer().start()
    kiosk = RunningKiosk(
        config("kiosk-hang", server.url("/hang"), failures_before_repair=1, heartbeat_timeout=1,
               repairs_per_hour={"reload": 1, "restart_browser": 1, "restart_display": 1,
                                 "reboot": 1}),
        tmp_path)
    try:
        kiosk.start()
        alarm = eventually(lambda: next((a for a in kiosk.alarms() if not a.cleared
                                         and a.code == "kiosk-browser-failing:kiosk-hang"), None),
                           timeout=60)
        assert alarm.severity == "critical" and "reboot x1" in alarm.message
        assert [r.step for r in kiosk.repairs()] == [
            "reload", "restart-browser", "restart-display", "reboot"]
        assert kiosk.system.requests == [("restart-display", "display-manager.service"),
                                         ("reboot",)]
        assert kiosk.driver.health().state == "failed"
        # Given up: still only the alarm; no second reboot, whatever it keeps trying.
        steps_before = len(kiosk.repairs())
        checked = kiosk.driver.heartbeats
        eventually(lambda: kiosk.driver.heartbeats >= checked + 3)
        assert kiosk.system.requests.count(("reboot",)) == 1
        assert (kiosk.driver.home / "repairs.json").is_file()
        assert len(kiosk.repairs()) == steps_before
    finally:
        kiosk.stop()
        server.stop()
