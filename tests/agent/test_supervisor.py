"""agent.supervisor: drivers are restarted after a back-off and never take others down."""

import asyncio
import random
from types import SimpleNamespace

import pytest

from agent.backoff import Backoff
from agent.supervisor import STABLE_AFTER_S, supervise
from rpfleet.protocol.messages import PeripheralHealth

SAFETY_TIMEOUT_S = 10  # only so that a broken supervisor fails the test instead of hanging it


class FakeDriver:
    """Implements devices.base.Driver; each run() does what ``behaviour`` says."""

    kind = "test-device"

    def __init__(self, id: str, behaviour) -> None:
        self.id = id
        self._behaviour = behaviour
        self.runs = 0
        self.raised: list[BaseException] = []
        self.started = asyncio.Event()

    async def run(self) -> None:
        self.runs += 1
        self.started.set()
        await self._behaviour(self)

    def health(self) -> PeripheralHealth:
        return PeripheralHealth(id=self.id, kind=self.kind, state="ok")


async def crash(driver: FakeDriver) -> None:
    exc = ValueError(f"{driver.id} failure #{driver.runs}")
    driver.raised.append(exc)
    raise exc


async def run_forever(driver: FakeDriver) -> None:
    await asyncio.Event().wait()


class RecordingSleep:
    """The supervisor's ``sleep``: records each wait instead of waiting; after
    ``park_after`` waits it blocks (until cancelled) so the test can look."""

    def __init__(self, park_after: int | None = None) -> None:
        self.delays: list[float] = []
        self._park_after = park_after
        self.parked = asyncio.Event()

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)
        if self._park_after is not None and len(self.delays) >= self._park_after:
            self.parked.set()
            await asyncio.Event().wait()
        await asyncio.sleep(0)


class Crashes:
    def __init__(self) -> None:
        self.seen: list[tuple[object, BaseException]] = []

    def __call__(self, driver, exc: BaseException) -> None:
        self.seen.append((driver, exc))


@pytest.fixture
def clock(monkeypatch):
    """The supervisor's monotonic clock, moved only by the test."""
    now = SimpleNamespace(value=1000.0)
    monkeypatch.setattr("agent.supervisor.time", SimpleNamespace(monotonic=lambda: now.value))
    return now


async def stop(task: asyncio.Task) -> None:
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()


async def test_a_crashing_driver_is_restarted_and_each_crash_reported(clock):
    driver, crashes, sleep = FakeDriver("pad-1", crash), Crashes(), RecordingSleep(park_after=5)
    task = asyncio.create_task(supervise(driver, crashes, Backoff(1, 60, random.Random(9)), sleep))
    await asyncio.wait_for(sleep.parked.wait(), SAFETY_TIMEOUT_S)

    assert driver.runs == 5
    assert [d for d, _ in crashes.seen] == [driver] * 5
    assert [e for _, e in crashes.seen] == driver.raised  # the very exceptions raised
    assert [str(e) for _, e in crashes.seen][-1] == "pad-1 failure #5"
    await stop(task)


async def test_the_waits_between_restarts_come_from_the_backoff(clock):
    driver, sleep = FakeDriver("pad-1", crash), RecordingSleep(park_after=8)
    backoff = Backoff(1, 60, random.Random(9))
    task = asyncio.create_task(supervise(driver, Crashes(), backoff, sleep))
    await asyncio.wait_for(sleep.parked.wait(), SAFETY_TIMEOUT_S)

    twin = Backoff(1, 60, random.Random(9))
    assert sleep.delays == [twin.next() for _ in range(8)]
    assert len(set(sleep.delays)) == 8
    await stop(task)


async def test_a_driver_that_ran_long_enough_starts_its_backoff_afresh(clock):
    async def fail_late_on_the_third_run(driver: FakeDriver) -> None:
        if driver.runs == 3:
            clock.value += STABLE_AFTER_S
        await crash(driver)

    driver, sleep = FakeDriver("pad-1", fail_late_on_the_third_run), RecordingSleep(park_after=5)
    backoff = Backoff(1, 60, random.Random(4))
    task = asyncio.create_task(supervise(driver, Crashes(), backoff, sleep))
    await asyncio.wait_for(sleep.parked.wait(), SAFETY_TIMEOUT_S)

    twin = Backoff(1, 60, random.Random(4))
    expected = [twin.next(), twin.next()]
    twin.reset()
    expected += [twin.next() for _ in range(3)]
    assert sleep.delays == expected
    assert sleep.delays[2] <= 1  # back at the first ceiling
    await stop(task)


async def test_a_driver_that_returns_is_treated_as_a_failure(clock):
    async def give_up(driver: FakeDriver) -> None:
        return None

    driver, crashes = FakeDriver("scanner-1", give_up), Crashes()
    sleep = RecordingSleep(park_after=2)
    task = asyncio.create_task(supervise(driver, crashes, Backoff(1, 60, random.Random(1)), sleep))
    await asyncio.wait_for(sleep.parked.wait(), SAFETY_TIMEOUT_S)

    assert driver.runs == 2
    assert len(crashes.seen) == 2
    for _, exc in crashes.seen:
        with pytest.raises(RuntimeError, match="stopped by itself"):
            raise exc
    await stop(task)


async def test_cancelling_ends_the_task_while_the_driver_runs(clock):
    cancelled = asyncio.Event()

    async def serve(driver: FakeDriver) -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    driver, crashes, sleep = FakeDriver("pad-1", serve), Crashes(), RecordingSleep()
    task = asyncio.create_task(supervise(driver, crashes, Backoff(1, 60), sleep))
    await asyncio.wait_for(driver.started.wait(), SAFETY_TIMEOUT_S)

    await stop(task)
    assert cancelled.is_set()  # the driver saw the cancellation (and could close its device)
    assert crashes.seen == []  # a cancellation is not a crash
    assert sleep.delays == []
    assert driver.runs == 1


async def test_cancelling_ends_the_task_during_the_backoff(clock):
    driver, crashes, sleep = FakeDriver("pad-1", crash), Crashes(), RecordingSleep(park_after=1)
    task = asyncio.create_task(supervise(driver, crashes, Backoff(1, 60), sleep))
    await asyncio.wait_for(sleep.parked.wait(), SAFETY_TIMEOUT_S)

    await stop(task)
    assert driver.runs == 1
    assert len(crashes.seen) == 1


async def test_a_crashing_driver_does_not_affect_another_one(clock):
    crashes = Crashes()
    produced: list[int] = []  # for each item: how many crashes the other driver had by then

    async def produce(driver: FakeDriver) -> None:
        while True:
            produced.append(len(crashes.seen))
            await asyncio.sleep(0)

    crasher, producer = FakeDriver("pad-1", crash), FakeDriver("pad-2", produce)
    tasks = [
        asyncio.create_task(supervise(crasher, crashes, Backoff(1, 60, random.Random(1)),
                                      RecordingSleep())),
        asyncio.create_task(supervise(producer, crashes, Backoff(1, 60, random.Random(2)),
                                      RecordingSleep())),
    ]

    async def fifty_crashes_and_still_producing() -> None:
        while not (produced and produced[-1] >= 50):
            await asyncio.sleep(0)

    await asyncio.wait_for(fifty_crashes_and_still_producing(), SAFETY_TIMEOUT_S)

    assert {d.id for d, _ in crashes.seen} == {"pad-1"}
    assert producer.runs == 1  # never restarted
    assert set(range(1, 51)) <= set(produced)  # it produced between every pair of crashes
    assert not tasks[1].done()
    for task in tasks:
        await stop(task)


async def test_a_cancelled_error_from_inside_the_driver_is_a_crash_not_a_stop(clock):
    async def lose_an_inner_future(driver: FakeDriver) -> None:
        if driver.runs == 1:
            reply = asyncio.get_running_loop().create_future()
            reply.cancel()  # e.g. the device's transport was closed under the driver
            await reply
        await asyncio.Event().wait()

    driver, crashes, sleep = FakeDriver("pad-1", lose_an_inner_future), Crashes(), RecordingSleep()
    task = asyncio.create_task(supervise(driver, crashes, Backoff(1, 60), sleep))

    async def second_run() -> None:
        while driver.runs < 2:
            await asyncio.sleep(0)

    waiting = asyncio.create_task(second_run())
    await asyncio.wait({task, waiting}, timeout=SAFETY_TIMEOUT_S,
                       return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    assert not task.done(), "the supervisor stopped supervising the driver"
    assert driver.runs == 2
    assert len(crashes.seen) == 1
    await stop(task)
