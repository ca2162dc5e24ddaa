"""Serial pads over real pseudo-terminals: the SerialPad adapter under the RatingPad driver."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from devices.rating_pad import RatingPadConfig, build_rating_pad
from devices.rating_pad.serial_adapter import SerialPad
from tests.devices.rating_pad.pty_pad import PtyPad, wait_until


@pytest.fixture
def pad(tmp_path):
    by_id = tmp_path / "serial" / "by-id" / "usb-Acme_RatingPad_RP5-00123-if00"
    by_id.parent.mkdir(parents=True)
    pad = PtyPad(by_id)
    yield pad
    pad.unplug()


def config_for(pad: PtyPad) -> RatingPadConfig:
    # bounce 0: presses follow each other as fast as the test writes them.
    return RatingPadConfig(
        id="exit-pad", counter="exit", source="serial", device=str(pad.by_id), bounce=0
    )


@contextlib.asynccontextmanager
async def serving(driver):
    task = asyncio.create_task(driver.run())
    try:
        yield driver
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_a_press_is_acked_only_after_it_is_recorded(pad):
    recorded = []

    async def record(detail, at):
        pad.mark("RECORDED")  # lands in the agent->pad stream between what came before and after
        recorded.append(detail)

    async with serving(build_rating_pad(config_for(pad), record)) as driver:
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.send(b"HELLO RP5-00123 5\r\nPRESS 4\r\n")
        await wait_until(lambda: len(pad.received()) == 3)

        assert pad.received() == ["WHO", "RECORDED", "ACK 4"]
        assert [(d.rating, d.scale, d.pad, d.counter) for d in recorded] == [(4, 5, "exit-pad", "exit")]
        assert driver.health().state == "ok"
        assert driver.health().detail == "pad RP5-00123, 5 buttons"


async def test_garbage_and_overlong_lines_are_skipped_counted_and_the_pad_serves_on(pad):
    ratings = []

    async def record(detail, at):
        ratings.append(detail.rating)

    async with serving(build_rating_pad(config_for(pad), record)) as driver:
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.send(b"\x00\xff\x13\x86noise\nPRESS 2\n" + b"#" * 300 + b"\nPRESS 5\r\nPRESS 7\n")
        await wait_until(lambda: pad.received()[1:] == ["ACK 2", "ACK 5"])

        assert ratings == [2, 5]  # BUTTON_7 is no key of a 5-button pad
        await wait_until(lambda: "1 garbage, 1 overlong" in (driver.health().detail or ""))
        assert driver.health().detail == "pad not identified; lines skipped: 1 garbage, 1 overlong"


async def test_a_pad_that_vanishes_mid_line_is_reopened_when_hot_plug_finds_it(pad, monkeypatch):
    monkeypatch.setattr("devices.rating_pad.driver.REOPEN_DELAYS_S", (3600,))  # only attach() can wake it
    ratings = []

    async def record(detail, at):
        ratings.append(detail.rating)

    async with serving(build_rating_pad(config_for(pad), record)) as driver:
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.send(b"HELLO RP5-00123 5\nPRESS 1\nPRESS 2")  # "PRESS 2" never gets its newline
        await wait_until(lambda: pad.received()[1:] == ["ACK 1"])

        pad.unplug()
        await wait_until(lambda: driver.health().state == "missing")
        pad.plug_in()
        driver.attach(pad.devnode)  # what hot-plug does when udev reports the pad again
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.send(b"\nPRESS 4\n")  # glued to the old half line this would be "PRESS 2"
        await wait_until(lambda: pad.received()[1:] == ["ACK 4"])

        assert ratings == [1, 4]
        assert driver.health().state == "ok"
        assert driver.health().detail == "pad not identified; lines skipped: 1 cut off"


async def test_a_pad_that_returns_under_its_by_id_name_is_reopened_by_the_retry_loop(pad, monkeypatch):
    monkeypatch.setattr("devices.rating_pad.driver.REOPEN_DELAYS_S", (0.01,))
    ratings = []

    async def record(detail, at):
        ratings.append(detail.rating)

    async with serving(build_rating_pad(config_for(pad), record)) as driver:
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.unplug()
        await wait_until(lambda: driver.health().state == "missing")
        pad.plug_in()
        await wait_until(lambda: pad.received() == ["WHO"])
        pad.send(b"PRESS 3\n")
        await wait_until(lambda: pad.received()[1:] == ["ACK 3"])
        assert ratings == [3]


async def test_the_port_is_claimed_exclusively(pad):
    first, second = SerialPad(9600), SerialPad(9600)
    await first.open(str(pad.by_id))
    try:
        with pytest.raises(OSError, match="exclusively lock"):
            await second.open(str(pad.by_id))
    finally:
        await first.close()
        await second.close()
        await first.close()
