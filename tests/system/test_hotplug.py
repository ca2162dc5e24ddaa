"""Hot-plug end to end: a keypad plugged, pulled and plugged again under new kernel names, and
an unknown device, reach the fleet server as events through the agent, the broker and ingest.

The HotPlug service is started on the agent's loop by the test, as NodeAgent.run will start it.
"""

from __future__ import annotations

import asyncio

from agent.hotplug import HotPlug
from devices.hotplug.fake import FakeMonitor
from tests.conftest import eventually
from tests.devices.hotplug.cases import case_devices
from tests.system.helpers import stored_events

PAD = {"kind": "rating-pad", "id": "pad-1", "counter": "5", "source": "fake", "bounce": 0,
       "match": {"by_id": "usb-0c45_USB_Keyboard-event-kbd"}}


def renamed(devices, renames):
    def rename(value):
        for old, new in renames.items():
            value = value.replace(old, new)
        return value

    return [{key: rename(value) for key, value in p.items()} for p in devices]


def test_attach_detach_and_an_unknown_device_are_stored_by_the_server(
    server, running_agent, new_node, monkeypatch
):
    # Where NodeAgent starts its own HotPlug, it must not see this machine's real devices.
    monkeypatch.setattr("agent.node.udev_monitor", FakeMonitor, raising=False)
    node = new_node()
    runner = running_agent(node, peripherals=[PAD])
    (pad,) = runner.agent.drivers
    monitor = FakeMonitor()
    hotplug = runner.call(lambda: asyncio.ensure_future(
        HotPlug(runner.agent.drivers, runner.agent.record, monitor).run()))
    keypad = case_devices("numeric-keypad-three-event-nodes")
    (zstick,) = case_devices("cdc-acm-unknown")

    def stored():
        return [(row.kind, row.detail.get("peripheral") or row.detail.get("code"))
                for row in stored_events(server, node)]

    try:
        runner.call(lambda: monitor.plug(*reversed(keypad)))
        eventually(lambda: runner.call(lambda: pad.slot.path) == "/dev/input/event0")
        runner.call(lambda: monitor.unplug(*keypad))
        for _ in range(5):  # the same stranger, again and again: told once
            runner.call(lambda: monitor.plug(zstick))
            runner.call(lambda: monitor.unplug(zstick))
        runner.call(lambda: monitor.plug(*reversed(renamed(keypad, {"event0": "event9", "event1": "event10",
                                                                   "event2": "event11"}))))
        eventually(lambda: runner.call(lambda: pad.slot.path) == "/dev/input/event9")
        runner.call(lambda: pad.adapter.press("KEY_KP5"))

        eventually(lambda: stored() == [
            ("peripheral-attached", "pad-1"),
            ("peripheral-detached", "pad-1"),
            ("alarm", "unknown-device"),
            ("peripheral-attached", "pad-1"),
            ("rating-tap", None),
        ])
    finally:
        runner.call(hotplug.cancel)
        eventually(lambda: runner.call(hotplug.done))

    rows = stored_events(server, node)
    assert rows[0].detail["identity"] == "0c45:760f"
    assert rows[0].detail["peripheral_kind"] == "rating-pad"
    assert rows[2].detail["severity"] == "info" and "0658:0200" in rows[2].detail["message"]
    assert rows[4].detail["rating"] == 5 and rows[4].detail["counter"] == "5"
