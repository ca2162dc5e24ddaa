"""agent.drivers.DriverSet with fake rating pads: a new config restarts only the
drivers it removes, adds or changes; the others keep running untouched."""

from __future__ import annotations

import asyncio

from agent.drivers import DriverSet
from devices.rating_pad import RatingPadConfig
from devices.registry import build_driver


def pad(pad_id: str, counter: str) -> RatingPadConfig:
    return RatingPadConfig(id=pad_id, counter=counter, source="fake", bounce=0)


async def wait_until(check, timeout: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        assert loop.time() < deadline, "condition not met"
        await asyncio.sleep(0.01)


async def test_only_the_removed_added_and_changed_drivers_restart():
    taps = []

    async def record(detail, at):
        taps.append(detail)

    runs: list[str] = []

    async def run(driver):
        runs.append(driver.id)
        await driver.run()

    drivers = DriverSet(lambda c: build_driver(c, record), run,
                        [pad("pad-1", "1"), pad("pad-2", "2"), pad("pad-3", "3")])
    drivers.start()
    await wait_until(lambda: all(d.adapter.is_open for d in drivers))
    pad_1, pad_2, pad_3 = drivers

    changes = await drivers.apply([pad("pad-1", "1"), pad("pad-2", "9"), pad("pad-4", "4")])

    assert (changes.stopped, changes.started, changes.kept) == (("pad-2", "pad-3"), ("pad-2", "pad-4"), ("pad-1",))
    assert [d.id for d in drivers] == ["pad-1", "pad-2", "pad-4"] and len(drivers) == 3
    assert drivers[0] is pad_1 and drivers.get("pad-2") is not pad_2
    assert drivers.get("pad-2").config.counter == "9" and drivers.get("pad-3") is None
    await wait_until(lambda: not pad_2.adapter.is_open and not pad_3.adapter.is_open)  # closed
    assert pad_1.adapter.is_open
    await wait_until(lambda: len(runs) == 5)
    assert runs == ["pad-1", "pad-2", "pad-3", "pad-2", "pad-4"]  # pad-1 ran once

    pad_1.adapter.press("KEY_KP5")  # the untouched driver still serves its citizens
    await wait_until(lambda: taps)
    assert taps[0].pad == "pad-1"

    await drivers.stop()
    await drivers.stop()  # safe twice
    assert not any(d.adapter.is_open for d in drivers)


async def test_the_same_config_again_restarts_nothing():
    drivers = DriverSet(lambda c: build_driver(c, None), lambda d: d.run(), [pad("pad-1", "1")])
    drivers.start()
    before = list(drivers)

    changes = await drivers.apply([pad("pad-1", "1")])

    assert not changes.any and list(drivers) == before
    await drivers.stop()
