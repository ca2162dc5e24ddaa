"""Allowed URLs, black/frozen screens, the screen power schedule and the config model."""

from __future__ import annotations

import io
import tomllib
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from pydantic import ValidationError

from devices.kiosk_browser.config import KioskBrowserConfig, ScreenSchedule
from devices.kiosk_browser.imaging import downscale, thumbnail
from devices.kiosk_browser.pages import UrlPolicy
from devices.kiosk_browser.power import screen_on
from devices.kiosk_browser.screen import THUMB, Frame, ScreenWatch

HANOI = timezone(timedelta(hours=7))
SAMPLE = Path(__file__).resolve().parents[3] / "devices" / "kiosk_browser" / "sample.toml"


# -- URLs -----------------------------------------------------------------------------------

POLICY = UrlPolicy("https://q.hanoi.gov.vn/kiosk/ba-dinh", ("https://sso.hanoi.gov.vn/login",),
                   "file:///opt/fallback/index.html")


@pytest.mark.parametrize("url, where", [
    ("https://q.hanoi.gov.vn/kiosk/ba-dinh", "page"),
    ("https://q.hanoi.gov.vn/kiosk/ba-dinh#menu", "page"),
    ("https://q.hanoi.gov.vn/other", "allowed"),
    ("https://sso.hanoi.gov.vn/login?next=1", "allowed"),
    ("https://sso.hanoi.gov.vn/account", "disallowed"),
    ("https://q.hanoi.gov.vn.evil.example/kiosk", "disallowed"),
    ("http://q.hanoi.gov.vn/kiosk/ba-dinh", "disallowed"),
    ("https://www.youtube.com/", "disallowed"),
    ("chrome-error://chromewebdata/", "error"),
    ("file:///opt/fallback/index.html?text=x", "fallback"),
    ("file:///etc/passwd", "disallowed"),
    ("about:blank", "blank"),
], ids=lambda v: v if len(v) < 40 else v[:40])
def test_url_policy(url, where):
    assert POLICY.classify(url) == where


# -- screens --------------------------------------------------------------------------------

def png_of(colour="black", text: str | None = None, size=(640, 360)) -> bytes:
    image = Image.new("RGB", size, colour)
    if text:
        draw = ImageDraw.Draw(image)
        for row in range(0, size[1], 40):
            draw.text((10, row), text, fill="white" if colour == "black" else "black")
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def test_two_black_frames_are_a_blank_screen_one_is_not():
    watch = ScreenWatch(frozen_after_s=None)
    black = thumbnail(png_of("black"))
    assert len(black) == THUMB[0] * THUMB[1]
    assert watch.see(Frame(0, black)).state == "unknown"
    verdict = watch.see(Frame(1, black))
    assert verdict.state == "blank" and "black" in verdict.detail
    assert watch.see(Frame(2, thumbnail(png_of("white", "Lấy số thứ tự 1023")))).state == "ok"


def test_an_unchanged_screen_is_frozen_only_when_the_page_should_change():
    text = thumbnail(png_of("white", "Quầy 5: số 1023"))
    watch = ScreenWatch(frozen_after_s=30)
    assert [watch.see(Frame(t, text)).state for t in (0, 20, 40)] == ["ok", "ok", "frozen"]
    assert watch.see(Frame(50, thumbnail(png_of("white", "Quầy 6: số 1024")))).state == "ok"
    still = ScreenWatch(frozen_after_s=None)
    assert [still.see(Frame(t, text)).state for t in (0, 100, 1000)] == ["ok"] * 3


def test_screenshots_are_downscaled():
    image, media = downscale(png_of("white", "x", size=(1920, 1080)), 320)
    assert media in ("image/webp", "image/png")
    with Image.open(io.BytesIO(image)) as small:
        assert small.size == (320, 180)
    with pytest.raises(ValueError, match="max_width"):
        downscale(png_of(), 4)


# -- screen power ---------------------------------------------------------------------------

SCHEDULE = ScreenSchedule()  # Mon-Fri 07:30-17:30, on 15 min before, off 15 min after


@pytest.mark.parametrize("local, on", [
    (datetime(2026, 11, 23, 7, 14, tzinfo=HANOI), False),   # Monday, before the margin
    (datetime(2026, 11, 23, 7, 15, tzinfo=HANOI), True),    # on 15 min before opening
    (datetime(2026, 11, 23, 12, 0, tzinfo=HANOI), True),
    (datetime(2026, 11, 23, 17, 44, tzinfo=HANOI), True),
    (datetime(2026, 11, 23, 17, 45, tzinfo=HANOI), False),
    (datetime(2026, 11, 28, 10, 0, tzinfo=HANOI), False),   # Saturday
    (datetime(2026, 11, 29, 10, 0, tzinfo=HANOI), False),   # Sunday
    (datetime(2026, 11, 23, 1, 0, tzinfo=timezone.utc), True),  # 08:00 in Hanoi
], ids=["mon-early", "mon-margin", "mon-noon", "mon-closing", "mon-after", "sat", "sun", "utc"])
def test_screen_schedule(local, on):
    assert screen_on(SCHEDULE, local) is on


def test_screen_schedule_with_saturday_mornings():
    schedule = ScreenSchedule(days=["Mon", "Sat"], opens="08:00", closes="11:30", on_before=0)
    assert screen_on(schedule, datetime(2026, 11, 28, 8, 0, tzinfo=HANOI))
    assert not screen_on(schedule, datetime(2026, 11, 28, 11, 45, tzinfo=HANOI))
    with pytest.raises(ValueError, match="timezone-aware"):
        screen_on(schedule, datetime(2026, 11, 28, 8, 0))


# -- config ---------------------------------------------------------------------------------

def test_the_sample_config_is_valid():
    tables = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))["peripherals"]
    configs = [KioskBrowserConfig.model_validate(t) for t in tables]
    assert configs[0].fallback_text == "Vui lòng lấy số tại quầy hướng dẫn"
    assert any(c.screen_schedule is not None for c in configs)


@pytest.mark.parametrize("fields, match", [
    ({"url": "ftp://q.hanoi.gov.vn/"}, "url"),
    ({"allowed": ["javascript:alert(1)"]}, "allowed"),
    ({"display": "0"}, "display"),
    ({"repairs_per_hour": {"reboot": 10}}, "repairs_per_hour.reboot"),
    ({"screen_schedule": {"opens": "18:00"}}, "opens"),
    ({"screen_schedule": {"timezone": "Asia/Hanoi"}}, "timezone"),
    ({"screen_schedule": {"days": ["mon", "someday"]}}, "days"),
    ({"heartbeat": "soon"}, "heartbeat"),
    ({"colour": "red"}, "colour"),
], ids=["url", "allowed", "display", "reboots", "opens", "zone", "days", "duration", "unknown"])
def test_bad_config_names_the_field(fields, match):
    with pytest.raises(ValidationError, match=match):
        KioskBrowserConfig.model_validate(
            {"id": "kiosk", "url": "https://q.hanoi.gov.vn/kiosk", **fields})
