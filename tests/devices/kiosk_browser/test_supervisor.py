"""The real supervisor against real headless Chromium: one browser for the module, pages
that hang, crash, leave for a disallowed URL and go black; screenshots; page globals; the
screen power schedule."""

from __future__ import annotations

import io
import shutil
from datetime import datetime, timedelta, timezone

import pytest
from PIL import Image

from devices.kiosk_browser.config import KioskBrowserConfig
from tests.conftest import eventually
from tests.devices.kiosk_browser.harness import RunningKiosk
from tests.devices.kiosk_browser.pages import PageServer

CHROMIUM = "/usr/bin/chromium"
GLOBALS = {"bridge": "http://127.0.0.1:8787", "token": "t-0123456789abcdef", "node": "bd-q1"}
HANOI = timezone(timedelta(hours=7))

pytestmark = pytest.mark.skipif(shutil.which(CHROMIUM) is None,
                                reason="chromium is not installed (scripts/bootstrap installs it)")


@pytest.fixture(scope="module")
def server():
    pages = PageServer().start()
    yield pages
    pages.stop()


@pytest.fixture(scope="module")
def kiosk(server, tmp_path_factory):
    config = KioskBrowserConfig(
        id="kiosk-test", url=server.url("/kiosk"), chromium=CHROMIUM, headless=True,
        window_size=(800, 450), heartbeat=0.3, heartbeat_timeout=1.5, failures_before_repair=2,
        screenshot_every=0.4, frozen_after=2, repairs_per_hour={"reload": 60, "restart_browser": 30},
        screen_schedule={}, cec="fake", system="fake")
    running = RunningKiosk(config, tmp_path_factory.mktemp("state"), page_globals=GLOBALS).start()
    yield running
    running.stop()


def at_home(kiosk: RunningKiosk, server: PageServer) -> bool:
    return kiosk.href() == server.url("/kiosk") and kiosk.driver.health().state == "ok"


def home(kiosk: RunningKiosk, server: PageServer) -> None:
    """Back on the kiosk's page (an earlier test may have left it on another allowed one)."""
    if kiosk.href() != server.url("/kiosk"):
        try:
            kiosk.page("Page.navigate", {"url": server.url("/kiosk")})
        except Exception:  # noqa: BLE001 - a page being repaired; the supervisor brings it home
            pass
    # ... and mended: the next trouble starts again from the bottom of the ladder.
    eventually(lambda: at_home(kiosk, server) and kiosk.driver.ladder.history.level == -1)


def test_the_page_comes_up_and_is_served(kiosk, server):
    home(kiosk, server)
    assert kiosk.evaluate("document.querySelector('h1').textContent") == "Lấy số thứ tự"
    assert (kiosk.driver.home / "profile").is_dir()
    assert kiosk.system.requests == []


def test_page_globals_reach_allowed_documents_before_their_scripts(kiosk, server):
    home(kiosk, server)
    kiosk.page("Page.navigate", {"url": server.url("/globals")})
    seen = eventually(lambda: kiosk.href() == server.url("/globals")
                      and kiosk.evaluate("window.seenAtStart"))
    assert eval_json(seen) == GLOBALS


def test_page_globals_set_after_the_start_reach_the_page(kiosk, server):
    """The agent binds its device bridge when it can, perhaps after the browser started."""
    home(kiosk, server)
    later = {**GLOBALS, "token": "t-fedcba9876543210"}
    kiosk.driver.page_globals = later
    eventually(lambda: kiosk.driver._injected == later)
    home(kiosk, server)
    kiosk.page("Page.navigate", {"url": server.url("/globals")})
    seen = eventually(lambda: kiosk.href() == server.url("/globals")
                      and kiosk.evaluate("window.seenAtStart"))
    assert eval_json(seen) == later


def test_page_globals_stay_away_from_a_disallowed_origin(kiosk, server):
    home(kiosk, server)
    mark = len(server.hits)
    kiosk.page("Page.navigate", {"url": server.url("/globals", host="localhost")})
    # The supervisor sends it back, but the page's first script has reported what it saw.
    report = eventually(lambda: next((seen_report(hit) for hit in server.hits[mark:]
                                      if hit.startswith("/seen?")), None))
    assert report == [f"localhost:{server.port}", "null"]
    eventually(lambda: at_home(kiosk, server))


def test_a_hung_page_is_reloaded(kiosk, server):
    home(kiosk, server)
    mark = len(kiosk.events)
    kiosk.page("Page.navigate", {"url": server.url("/hang")})
    eventually(lambda: any(r.trouble == "hung" and r.step == "reload"
                           for r in kiosk.repairs(mark)))
    eventually(lambda: at_home(kiosk, server))
    assert kiosk.evaluate("1 + 1") == 2


def test_a_crashed_renderer_is_reloaded(kiosk, server):
    home(kiosk, server)
    mark = len(kiosk.events)
    with pytest.raises(Exception):  # the renderer dies before it can answer
        kiosk.page("Page.crash", timeout=2)
    eventually(lambda: any(r.trouble == "crashed" and r.step == "reload"
                           for r in kiosk.repairs(mark)))
    eventually(lambda: at_home(kiosk, server))


def test_a_disallowed_url_is_navigated_back(kiosk, server):
    home(kiosk, server)
    mark = len(kiosk.events)
    kiosk.page("Page.navigate", {"url": "http://localhost:%d/kiosk" % server.port})
    repair = eventually(lambda: next((r for r in kiosk.repairs(mark)
                                      if r.trouble == "disallowed"), None))
    assert repair.step == "reload" and "localhost" in repair.reason
    eventually(lambda: at_home(kiosk, server))


def test_a_popup_window_is_closed_and_dialogs_do_not_block(kiosk, server):
    home(kiosk, server)
    opened = kiosk.page("Runtime.evaluate", {  # as if a citizen tapped a link: no popup blocker
        "expression": "window.open('/black', '_blank') !== null", "userGesture": True,
        "returnByValue": True})
    assert opened["result"]["value"] is True
    eventually(lambda: [t["url"] for t in kiosk.page("Target.getTargets")["targetInfos"]
                        if t["type"] == "page"] == [server.url("/kiosk")])
    kiosk.evaluate("setTimeout(() => { alert('Lỗi'); window.afterAlert = true; }, 0) && 1")
    eventually(lambda: kiosk.evaluate("window.afterAlert") is True)  # alert() was dismissed


def test_a_black_screen_is_a_peripheral_fault_until_the_page_is_back(kiosk, server):
    home(kiosk, server)
    kiosk.page("Page.navigate", {"url": server.url("/black")})
    health = eventually(lambda: (h := kiosk.driver.health()).state == "failed" and h)
    assert "black" in health.detail
    kiosk.page("Page.navigate", {"url": server.url("/kiosk")})
    eventually(lambda: at_home(kiosk, server) and kiosk.driver.watch.verdict.state == "ok")


def test_a_page_that_stops_changing_is_a_frozen_screen(kiosk, server):
    """The kiosk's page shows a running clock; a still one is frozen (``frozen_after``)."""
    home(kiosk, server)
    kiosk.page("Page.navigate", {"url": server.url("/globals")})
    health = eventually(lambda: (h := kiosk.driver.health()).state == "failed" and h)
    assert "has not changed" in health.detail
    home(kiosk, server)
    eventually(lambda: kiosk.driver.watch.verdict.state == "ok")


def test_screenshot_on_command_is_small(kiosk, server):
    home(kiosk, server)
    image, media = kiosk.call(kiosk.driver.screenshot(320))
    assert media in ("image/webp", "image/png")
    with Image.open(io.BytesIO(image)) as shot:
        assert shot.size == (320, 180)
        assert shot.format == media.split("/")[1].upper()
        # The page is white with dark text: not one colour.
        assert shot.convert("L").getextrema()[0] < 128 < shot.convert("L").getextrema()[1]


def test_the_screen_is_off_at_the_weekend_and_on_before_opening(kiosk):
    eventually(lambda: kiosk.screen.on is not None)
    now = datetime.now(HANOI)
    sunday = (now + timedelta(days=(6 - now.weekday()) % 7 + 7)).replace(hour=10, minute=0)
    kiosk.offset = sunday - now
    eventually(lambda: kiosk.screen.on is False)
    monday = (sunday + timedelta(days=1)).replace(hour=7, minute=20)
    kiosk.offset = monday - now
    eventually(lambda: kiosk.screen.on is True)
    assert kiosk.screen.requests[-2:] == [False, True]


def seen_report(hit: str) -> list:
    from urllib.parse import unquote

    return eval_json(unquote(hit.split("?", 1)[1]))


def eval_json(text: str):
    import json

    return json.loads(text)
