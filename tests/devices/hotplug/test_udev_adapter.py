"""devices.hotplug.udev_adapter against what this machine has.

This build machine runs no udev daemon (no /run/udev) and has no USB devices:
enumeration reads sysfs (here: terminals only), and live events are broadcast by
the tests themselves in udevd's own format (tests/devices/hotplug/udevd.py),
which pyudev receives through the same netlink socket as on a node.
"""

from __future__ import annotations

import asyncio
import os
import uuid

import pytest

from devices.hotplug.adapter import DeviceMonitor
from devices.hotplug.fake import FakeMonitor
from devices.hotplug.nodes import SUBSYSTEMS
from devices.hotplug.udev_adapter import PyudevMonitor
from tests.devices.hotplug import udevd
from tests.devices.hotplug.cases import case_devices


@pytest.fixture
async def monitor():
    pyudev = pytest.importorskip("pyudev")
    try:
        pyudev.Context()
    except Exception as exc:  # noqa: BLE001 - any failure means: no libudev on this machine
        pytest.skip(f"pyudev cannot open a udev context here: {exc}")
    opened = PyudevMonitor()
    yield opened
    await opened.close()


async def test_open_lists_the_devices_this_machine_has(monitor):
    present = await monitor.open()

    assert {p["SUBSYSTEM"] for p in present} <= set(SUBSYSTEMS)
    listed_ttys = {os.path.basename(p["DEVPATH"]) for p in present if p["SUBSYSTEM"] == "tty"}
    assert listed_ttys == set(os.listdir("/sys/class/tty"))
    assert all(p["DEVNAME"].startswith("/dev/") for p in present if p["SUBSYSTEM"] == "tty")


@pytest.fixture
def broadcasting():
    if udevd.live_udev_here():
        pytest.skip("a udev daemon runs here: its listeners must not be told of devices that do not exist")
    if os.geteuid() != 0:
        pytest.skip("broadcasting to udev listeners needs root")
    return udevd.broadcast


async def test_udev_events_of_watched_subsystems_come_out_as_they_are(monitor, broadcasting):
    await monitor.open()
    # Another test run on this machine hears these broadcasts too: each run marks its own.
    mark = {"RPFLEET_TEST_RUN": uuid.uuid4().hex}
    (ftdi,) = case_devices("ftdi-ft232r-by-id")
    disk = {"SUBSYSTEM": "block", "DEVPATH": "/devices/virtual/block/loop9", "DEVNAME": "/dev/loop9"}

    broadcasting("add", disk | mark, seqnum=1)  # not a watched subsystem: udev's socket filter drops it
    broadcasting("add", ftdi | mark, seqnum=2)
    broadcasting("remove", ftdi | mark, seqnum=3)
    (action, properties), (then, gone) = [
        event async for event in take(monitor.events(), 2, marked_with=mark)]

    assert (action, as_set(properties)) == (
        "add", as_set({"ACTION": "add", **ftdi, **mark, "SEQNUM": "2"}))
    assert (then, gone["DEVNAME"], gone["SEQNUM"]) == ("remove", "/dev/ttyUSB0", "3")


async def take(events, count, marked_with):
    async with asyncio.timeout(10):
        async for event in events:
            if marked_with.items() <= event[1].items():
                yield event
                count -= 1
                if count == 0:
                    return


def as_set(properties):
    """libudev keeps a device's links in a hash set: DEVLINKS comes back in any order."""
    return {**properties, "DEVLINKS": set(properties.get("DEVLINKS", "").split())}


async def test_close_is_safe_twice(monitor):
    await monitor.open()
    await monitor.close()
    await monitor.close()


def test_the_fake_implements_the_monitor_interface():
    wanted = {n for n in dir(DeviceMonitor) if not n.startswith("_")}

    assert wanted == {"open", "events", "close"}
    for monitor_class in (FakeMonitor, PyudevMonitor):
        assert wanted <= set(dir(monitor_class)), monitor_class


async def test_the_fake_lists_what_is_plugged_and_replays_events_in_order():
    (ftdi,) = case_devices("ftdi-ft232r-by-id")
    (zstick,) = case_devices("cdc-acm-unknown")
    fake = FakeMonitor(present=[zstick])

    assert await fake.open() == [zstick]
    fake.plug(ftdi)
    fake.unplug(zstick)
    fake.lose_connection()
    seen = []
    with pytest.raises(OSError, match="closed"):
        async for event in fake.events():
            seen.append(event)

    assert seen == [("add", ftdi), ("remove", zstick)]
    assert await fake.open() == [ftdi]
