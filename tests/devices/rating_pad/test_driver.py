import asyncio

import pytest
from pydantic import ValidationError

from devices.rating_pad import RatingPadConfig, build_rating_pad
from devices.rating_pad.fake import FakeKeypad
from devices.registry import build_driver


def fake_config(**overrides) -> RatingPadConfig:
    return RatingPadConfig(id="pad-5", counter="5", source="fake", **overrides)


async def wait_until(check, timeout=5.0):
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


async def test_a_press_is_recorded_before_the_citizen_is_thanked():
    recorded = []

    async def record(detail, at):
        # Feedback must not have happened yet: the tap is not on disk until we return.
        recorded.append((detail, pad.adapter.thanked))

    pad = build_rating_pad(fake_config(), record)
    task = asyncio.create_task(pad.run())
    await wait_until(lambda: pad.health().state == "ok")
    pad.adapter.press("KEY_KP4")
    await wait_until(lambda: pad.adapter.thanked == 1)
    task.cancel()
    detail, thanked_before = recorded[0]
    assert thanked_before == 0
    assert (detail.kind, detail.rating, detail.scale, detail.pad, detail.counter) == (
        "rating-tap", 4, 5, "pad-5", "5"
    )


async def test_a_failed_record_gives_no_thanks_and_the_pad_serves_on():
    import sqlite3

    failures = [sqlite3.OperationalError("database or disk is full")]
    taps = []

    async def record(detail, at):
        if failures:
            raise failures.pop()
        taps.append(detail.rating)

    pad = build_rating_pad(fake_config(bounce=0), record)
    task = asyncio.create_task(pad.run())
    await wait_until(lambda: pad.health().state == "ok")
    pad.adapter.press("KEY_KP5")
    await wait_until(lambda: pad.health().state == "failed")
    assert pad.adapter.thanked == 0
    assert "disk is full" in pad.health().detail
    pad.adapter.press("KEY_KP3")
    await wait_until(lambda: pad.adapter.thanked == 1)
    task.cancel()
    assert taps == [3] and pad.health().state == "ok"


async def test_unplugged_pad_is_reported_missing_and_reopened(monkeypatch):
    monkeypatch.setattr("devices.rating_pad.driver.REOPEN_DELAYS_S", (0.01,))
    taps = []

    async def record(detail, at):
        taps.append(detail.rating)

    pad = build_rating_pad(fake_config(), record)
    task = asyncio.create_task(pad.run())
    await wait_until(lambda: pad.health().state == "ok")
    pad.adapter.unplug()
    await wait_until(lambda: pad.health().state == "missing")
    await wait_until(lambda: pad.health().state == "ok")
    pad.adapter.press("KEY_KP2")
    await wait_until(lambda: taps == [2])
    task.cancel()


async def test_fake_pad_presses_itself_when_asked():
    taps = []

    async def record(detail, at):
        taps.append(detail.rating)

    pad = build_driver(fake_config(fake_press_every=0.01, bounce=0), record)
    task = asyncio.create_task(pad.run())
    await wait_until(lambda: len(taps) >= 5)
    task.cancel()
    assert set(taps) <= {1, 2, 3, 4, 5}


def test_fake_keypad_implements_the_adapter_interface():
    from devices.rating_pad.adapter import KeypadAdapter
    from devices.rating_pad.evdev_adapter import EvdevKeypad

    wanted = {n for n in dir(KeypadAdapter) if not n.startswith("_")}
    assert wanted == {"open", "events", "thank", "close"}
    for adapter in (FakeKeypad, EvdevKeypad):
        assert wanted <= set(dir(adapter)), adapter


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"keys": {"KEY_KP9": 9}}, "outside 1..5"),
        ({"scale": 3, "keys": {"KEY_KP4": 4}}, "outside 1..3"),
        ({"source": "evdev"}, "device or match is required"),
        ({"colour": "red"}, "colour"),
    ],
    ids=["rating-above-5", "rating-above-scale", "evdev-without-device", "unknown-key"],
)
def test_bad_pad_config_is_refused_naming_the_problem(overrides, message):
    with pytest.raises(ValidationError, match=message):
        RatingPadConfig(id="pad", source=overrides.pop("source", "fake"), **overrides)
