"""agent.hotplug: real rating pad drivers follow recorded devices that a fake udev plugs in and out."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import pytest

from agent.backoff import Backoff
from agent.hotplug import HotPlug
from devices.hotplug.fake import FakeMonitor
from devices.hotplug.match import DeviceMatch
from devices.rating_pad import RatingPadConfig
from devices.rating_pad.fake import FakeKeypad
from devices.registry import build_driver
from tests.devices.hotplug.cases import case_devices

KEYPAD = case_devices("numeric-keypad-three-event-nodes")
(ZSTICK,) = case_devices("cdc-acm-unknown")


class KeypadAtNodes(FakeKeypad):
    """The fake keypad, opening only at nodes that exist, as the evdev adapter does."""

    def __init__(self, keys: dict[str, int]) -> None:
        super().__init__(keys)
        self.nodes: set[str] = set()
        self.opened_at: list[str] = []

    async def open(self, path: str | None = None) -> None:
        if path not in self.nodes:
            raise FileNotFoundError(f"no such device: {path}")
        self.opened_at.append(path)
        await super().open(path)


def replugged(devices: list[dict[str, str]], renames: dict[str, str]) -> list[dict[str, str]]:
    """The same devices after a replug: the kernel handed out other names."""
    def rename(value: str) -> str:
        for old, new in renames.items():
            value = value.replace(old, new)
        return value

    return [{key: rename(value) for key, value in properties.items()} for properties in devices]


async def wait_until(check, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not check():
            await asyncio.sleep(0.01)


def pad(record, **overrides):
    config = {"id": "pad-5", "counter": "5", "source": "fake", "bounce": 0,
              "match": DeviceMatch(by_id="usb-0c45_USB_Keyboard-event-kbd")} | overrides
    return build_driver(RatingPadConfig(**config), record)


@pytest.fixture
def recorded():
    return []


@pytest.fixture
def record(recorded):
    async def record(detail, at):
        recorded.append(detail)

    return record


async def running(*coroutines):
    return [asyncio.create_task(c) for c in coroutines]


async def stop(tasks):
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def test_a_replug_under_new_kernel_names_resumes_the_same_driver_at_once(monkeypatch, record, recorded):
    # Without hot-plug the pad would wait an hour before trying its device again.
    monkeypatch.setattr("devices.rating_pad.driver.REOPEN_DELAYS_S", (3600,))
    driver = pad(record)
    driver.adapter = keypad = KeypadAtNodes(driver.config.keys)
    keypad.nodes = {"/dev/input/event0", "/dev/input/event1", "/dev/input/event2"}
    monitor = FakeMonitor(present=KEYPAD)
    tasks = await running(driver.run(), HotPlug([driver], record, monitor).run())
    run = tasks[0]
    await wait_until(lambda: driver.health().state == "ok")
    assert driver.slot.path == "/dev/input/event0"

    keypad.nodes = set()
    keypad.unplug()
    monitor.unplug(*reversed(KEYPAD))
    await wait_until(lambda: [d.kind for d in recorded] == ["peripheral-attached", "peripheral-detached"])
    await wait_until(lambda: driver.health().state == "missing")
    assert driver.slot.path is None

    again = replugged(KEYPAD, {"event0": "event5", "event1": "event6", "event2": "event7",
                               "usb/001/003": "usb/001/004"})
    keypad.nodes = {"/dev/input/event5", "/dev/input/event6", "/dev/input/event7"}
    monitor.plug(*reversed(again))  # the USB device first, then its nodes
    await wait_until(lambda: driver.health().state == "ok")
    keypad.press("KEY_KP4")
    await wait_until(lambda: any(d.kind == "rating-tap" for d in recorded))
    assert not run.done()  # the driver's one run served throughout: nothing was restarted
    await stop(tasks)

    assert driver.slot.path == "/dev/input/event5"
    assert keypad.opened_at == ["/dev/input/event0", "/dev/input/event5"]
    attached = [d for d in recorded if d.kind == "peripheral-attached"]
    assert [(d.peripheral, d.peripheral_kind, d.identity) for d in attached] == [
        ("pad-5", "rating-pad", "0c45:760f")] * 2
    assert [d.kind for d in recorded] == [
        "peripheral-attached", "peripheral-detached", "peripheral-attached", "rating-tap"]


async def test_an_unknown_device_is_reported_once_across_many_events(record, recorded):
    driver = pad(record)
    monitor = FakeMonitor(present=KEYPAD)
    tasks = await running(HotPlug([driver], record, monitor, backoff=Backoff(0.01, 0.01)).run())
    await wait_until(lambda: driver.slot.path == "/dev/input/event0")
    for _ in range(10):
        monitor.plug(ZSTICK)
        monitor.change(ZSTICK)
        monitor.change(KEYPAD[3])
        monitor.unplug(ZSTICK)
    monitor.plug(replugged([ZSTICK], {"ttyACM0": "ttyACM3"})[0])
    monitor.lose_connection()  # a marker: once hot-plug reopens, every event before it is done
    await wait_until(lambda: monitor.opened == 2)
    await stop(tasks)

    alarms = [d for d in recorded if d.kind == "alarm"]
    assert [(a.code, a.severity) for a in alarms] == [("unknown-device", "info")]
    assert "0658:0200" in alarms[0].message and "/dev/ttyACM0" in alarms[0].message
    assert [d.kind for d in recorded if d.kind.startswith("peripheral")] == ["peripheral-attached"]


async def test_two_pads_matching_one_keypad_are_reported_and_neither_attached(record, recorded):
    first = pad(record, id="pad-a")
    second = pad(record, id="pad-b", match=DeviceMatch(vendor_id="0c45", product_id="760f"))
    tasks = await running(HotPlug([first, second], record, FakeMonitor(present=KEYPAD)).run())
    await wait_until(lambda: recorded)
    await stop(tasks)

    (alarm,) = recorded
    assert (alarm.code, alarm.severity) == ("ambiguous-device", "warning")
    assert "pad-a, pad-b" in alarm.message
    assert first.slot.path is None and second.slot.path is None


async def test_a_lost_udev_connection_is_reopened_and_the_inventory_taken_afresh(record, recorded):
    driver = pad(record)
    monitor = FakeMonitor(present=KEYPAD)
    hotplug = HotPlug([driver], record, monitor, backoff=Backoff(0.01, 0.01))
    tasks = await running(hotplug.run())
    await wait_until(lambda: driver.slot.path == "/dev/input/event0")

    monitor.lose_connection()
    monitor.pull_unheard(*KEYPAD)
    await wait_until(lambda: monitor.opened == 2 and driver.slot.path is None)
    monitor.plug(*KEYPAD)
    await wait_until(lambda: driver.slot.path == "/dev/input/event0")
    await stop(tasks)

    assert [d.kind for d in recorded] == [
        "peripheral-attached", "peripheral-detached", "peripheral-attached"]
    assert not monitor.is_open


async def test_an_event_that_cannot_be_recorded_does_not_stop_hot_plug(recorded):
    failures = [OSError("database or disk is full")]

    async def record(detail, at):
        if failures:
            raise failures.pop()
        recorded.append(detail)

    driver = pad(record)
    monitor = FakeMonitor(present=KEYPAD)
    tasks = await running(HotPlug([driver], record, monitor).run())
    await wait_until(lambda: driver.slot.path == "/dev/input/event0")
    monitor.unplug(*reversed(KEYPAD))
    await wait_until(lambda: recorded)
    await stop(tasks)

    assert [d.kind for d in recorded] == ["peripheral-detached"]


async def test_peripherals_without_a_stable_identity_are_left_alone(record, recorded, caplog):
    fake = pad(record, id="pad-fake", match=None)
    # A kind whose config lets a kernel name through (rating pads refuse one).
    old_printer = SimpleNamespace(
        id="printer-old", kind="printer", attach=None, detach=None,
        config=SimpleNamespace(id="printer-old", kind="printer", device="/dev/input/event0"),
    )
    tasks = await running(HotPlug([fake, old_printer], record, FakeMonitor(present=KEYPAD)).run())
    await wait_until(lambda: recorded)
    await stop(tasks)

    # The keypad is at event0, but a kernel name is no identity: the keypad is unknown.
    assert [(d.kind, d.code) for d in recorded] == [("alarm", "unknown-device")]
    assert fake.slot.path is None
    assert "printer-old: /dev/input/event0 is a kernel name" in caplog.text


async def test_without_pyudev_hot_plug_says_so_and_ends(record, recorded, caplog):
    class NoPyudev(FakeMonitor):
        async def open(self):
            raise ModuleNotFoundError("No module named 'pyudev'")

    await asyncio.wait_for(HotPlug([pad(record)], record, NoPyudev()).run(), 5)

    assert recorded == []
    assert "hot-plug is off: No module named 'pyudev'" in caplog.text


async def test_udev_that_cannot_be_opened_is_tried_again(record, recorded):
    class Unreachable(FakeMonitor):
        tries = 0

        async def open(self):
            self.tries += 1
            if self.tries < 3:
                raise PermissionError("netlink socket refused")
            return await super().open()

    driver = pad(record)
    monitor = Unreachable(present=KEYPAD)
    tasks = await running(HotPlug([driver], record, monitor, backoff=Backoff(0.01, 0.01)).run())
    await wait_until(lambda: driver.slot.path == "/dev/input/event0")
    await stop(tasks)

    assert monitor.tries == 3 and [d.kind for d in recorded] == ["peripheral-attached"]
