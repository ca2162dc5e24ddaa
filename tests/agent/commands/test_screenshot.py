"""screenshot against the real kiosk-browser driver in headless Chromium: the picture comes
back downscaled to the width asked, as the driver's interface promises."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from agent.commands.args import parse_args
from agent.commands.handlers import Handlers, NodeParts
from agent.commands.system import FakeSystemActions
from tests.agent.commands.helpers import FakeJournal, command
from tests.conftest import eventually

pytest.importorskip("devices.kiosk_browser.driver")

from devices.kiosk_browser.config import KioskBrowserConfig
from tests.devices.kiosk_browser.harness import RunningKiosk
from tests.devices.kiosk_browser.pages import PageServer
from tests.devices.kiosk_browser.test_supervisor import CHROMIUM


@pytest.fixture
def kiosk(tmp_path):
    pages = PageServer().start()
    config = KioskBrowserConfig(
        id="kiosk-1", url=pages.url("/kiosk"), chromium=CHROMIUM, headless=True,
        window_size=(800, 450), heartbeat=0.3, heartbeat_timeout=1.5, screen_schedule={},
        cec="fake", system="fake")
    running = RunningKiosk(config, tmp_path / "state").start()
    yield running
    running.stop()
    pages.stop()


def test_a_screenshot_of_the_kiosk_comes_back_no_wider_than_asked(kiosk):
    eventually(lambda: kiosk.driver.health().state == "ok", timeout=60)
    handlers = Handlers(NodeParts(drivers=lambda: [kiosk.driver], system=FakeSystemActions(),
                                  journal=FakeJournal(), clock=lambda: command().issued_at))
    sent = command("screenshot", args={"max_width": 320})
    done = kiosk.call(handlers.run(sent, parse_args("screenshot", sent.args)))
    assert done.outcome == "ok", done.detail
    image = Image.open(io.BytesIO(base64.b64decode(done.output["data_base64"])))
    assert image.width == 320 and 0 < image.height < 320  # downscaled from the wider screen
    assert done.output["media_type"] == Image.MIME[image.format]
    assert done.output["peripheral"] == "kiosk-1"
