"""Rating pads end to end: a serial pad played over a real pty and a fake keypad, through
the agent, the broker and the fleet server, down to the stored rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import eventually
from tests.devices.rating_pad.pty_pad import PtyPad
from tests.system.helpers import node_row, stored_events


@pytest.fixture
def exit_pad(tmp_path: Path):
    by_id = tmp_path / "serial" / "by-id" / "usb-Acme_RatingPad_RP5-00123-if00"
    by_id.parent.mkdir(parents=True)
    pad = PtyPad(by_id)
    yield pad
    pad.unplug()


def peripherals(exit_pad: PtyPad) -> list[dict]:
    return [
        {
            "kind": "rating-pad", "id": "exit-pad", "counter": "exit", "source": "serial",
            "device": str(exit_pad.by_id), "bounce": 0,
            # Long windows: every tap of the test is inside them, however slow the machine.
            "burst_taps": 3, "burst_window": "10m", "hammer_presses": 3, "hammer_window": "10m",
        },
        {"kind": "rating-pad", "id": "pad-7", "counter": "7", "source": "fake", "bounce": 0},
    ]


def taps(server, node: str) -> list:
    return [row for row in stored_events(server, node) if row.kind == "rating-tap"]


def pad_health(server, node: str, pad: str) -> dict | None:
    row = node_row(server, node)
    found = [p for p in ((row.last_health or {}) if row else {}).get("peripherals", []) if p["id"] == pad]
    return found[0] if found else None


def press(pad: PtyPad, button: int) -> None:
    """The citizen presses; returns once the pad's LED is lit (ACK: the tap is in the outbox)."""
    acked = pad.received().count(f"ACK {button}")
    pad.send(b"PRESS %d\r\n" % button)
    eventually(lambda: pad.received().count(f"ACK {button}") == acked + 1)


def test_taps_are_stored_with_their_pad_counter_and_misuse_flags(server, running_agent, new_node, exit_pad):
    node = new_node()
    runner = running_agent(node, peripherals=peripherals(exit_pad))
    eventually(lambda: exit_pad.received() == ["WHO"])
    exit_pad.send(b"HELLO RP5-00123 5\r\n")
    for button in (5, 4, 1, 1, 1):
        press(exit_pad, button)
    counter_pad = runner.agent.drivers[1]
    runner.call(lambda: counter_pad.adapter.press("KEY_KP3"))

    rows = eventually(lambda: (r := taps(server, node)) and len(r) == 6 and r)
    stored = [(r.detail["pad"], r.detail["counter"], r.rating, r.scale, r.detail.get("suspect")) for r in rows]
    assert stored == [
        ("exit-pad", "exit", 5, 5, None),
        ("exit-pad", "exit", 4, 5, None),
        ("exit-pad", "exit", 1, 5, None),
        ("exit-pad", "exit", 1, 5, "burst: 4 taps in 10m"),
        ("exit-pad", "exit", 1, 5, "burst: 5 taps in 10m; hammered: rating 1 pressed 3 times in 10m"),
        ("pad-7", "7", 3, 5, None),
    ]
    stamps = [r.detail["mono_ns"] for r in rows]
    assert stamps == sorted(stamps)
    assert exit_pad.received() == ["WHO", "ACK 5", "ACK 4", "ACK 1", "ACK 1", "ACK 1"]
    identified = {"id": "exit-pad", "kind": "rating-pad", "state": "ok", "detail": "pad RP5-00123, 5 buttons"}
    eventually(lambda: pad_health(server, node, "exit-pad") == identified)


def test_a_pad_unplugged_mid_line_is_missing_at_the_server_and_serves_on_when_replugged(
    server, running_agent, new_node, exit_pad
):
    node = new_node()
    runner = running_agent(node, peripherals=peripherals(exit_pad))
    eventually(lambda: exit_pad.received() == ["WHO"])
    press(exit_pad, 4)
    exit_pad.send(b"PRESS 2")  # the cable is pulled before the line ends

    exit_pad.unplug()
    eventually(lambda: (pad_health(server, node, "exit-pad") or {}).get("state") == "missing")
    exit_pad.plug_in()
    driver = runner.agent.drivers[0]
    runner.call(lambda: driver.attach(exit_pad.devnode))  # as hot-plug does when udev sees it again
    eventually(lambda: exit_pad.received() == ["WHO"])
    exit_pad.send(b"\n")
    press(exit_pad, 5)

    rows = eventually(lambda: (r := taps(server, node)) and len(r) == 2 and r)
    assert [(r.detail["pad"], r.rating) for r in rows] == [("exit-pad", 4), ("exit-pad", 5)]
    assert eventually(lambda: (pad_health(server, node, "exit-pad") or {}).get("state") == "ok")
