import asyncio
import time

import pytest

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


async def test_taps_carry_the_misuse_reason_and_the_monotonic_stamp():
    details = []

    async def record(detail, at):
        details.append(detail)

    before = time.monotonic_ns()
    pad = build_rating_pad(fake_config(bounce=0), record)
    task = asyncio.create_task(pad.run())
    await wait_until(lambda: pad.health().state == "ok")
    for _ in range(4):
        pad.adapter.press("KEY_KP1")
    await wait_until(lambda: len(details) == 4)
    task.cancel()
    after = time.monotonic_ns()

    assert [d.suspect for d in details] == [None, None, None, "hammered: rating 1 pressed 4 times in 10s"]
    stamps = [d.mono_ns for d in details]
    assert stamps == sorted(stamps) and before <= stamps[0] and stamps[-1] <= after


def test_every_adapter_implements_the_adapter_interface():
    from devices.rating_pad.adapter import KeypadAdapter
    from devices.rating_pad.evdev_adapter import EvdevKeypad
    from devices.rating_pad.serial_adapter import SerialPad

    wanted = {n for n in dir(KeypadAdapter) if not n.startswith("_")}
    assert wanted == {"open", "events", "thank", "close", "describe"}
    for adapter in (FakeKeypad, EvdevKeypad, SerialPad):
        assert wanted <= set(dir(adapter)), adapter


@pytest.mark.parametrize(
    "source, adapter",
    [("fake", "FakeKeypad"), ("evdev", "EvdevKeypad"), ("serial", "SerialPad")],
    ids=["fake", "evdev", "serial"],
)
def test_the_source_picks_the_adapter(source, adapter):
    config = RatingPadConfig(id="pad", source=source, device="/dev/serial/by-id/x")
    assert type(build_rating_pad(config, record=None).adapter).__name__ == adapter
