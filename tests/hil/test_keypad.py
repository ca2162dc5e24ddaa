"""A USB keypad on an emulated node: the real agent, the guest's kernel input and udev,
keys pressed through QEMU, taps stored by the fleet server on the host."""

from __future__ import annotations

import pytest

from tests.conftest import eventually
from tests.hil.node_setup import agent_holds_open, install_agent_config
from tests.system.helpers import node_row, stored_events

pytestmark = [pytest.mark.hil, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]

PAD_SERIAL = "RP5-KP-0042"
PAD = f"""\
[[peripherals]]
kind = "rating-pad"
id = "pad-1"
counter = "5"
source = "evdev"
match = {{ id_serial = "{PAD_SERIAL}" }}
# Presses come from QEMU as fast as the guest takes them: no contact bounce to merge.
bounce = "0s"
"""
PAD_NODE = f"/dev/input/by-id/usb-QEMU_QEMU_USB_Keyboard_{PAD_SERIAL}-event-kbd"
# A second reader asks for the exclusive grab (EVIOCGRAB) the agent must hold, and
# gives it back at once should it get it.
SECOND_READER = f"""\
import errno, fcntl, os
fd = os.open("{PAD_NODE}", os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0x40044590, 1)
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    fcntl.ioctl(fd, 0x40044590, 0)
    print("GRABBED")
"""


def stored(server, node: str, kind: str) -> list:
    return [row for row in stored_events(server, node) if row.kind == kind]


def test_a_hot_plugged_keypad_is_grabbed_and_each_tap_is_stored_once(guest, server, broker, new_node):
    node = new_node()
    guest.start_agent(install_agent_config(guest, broker, node, PAD))
    eventually(lambda: (row := node_row(server, node)) and row.state == "online", timeout=60)

    guest.plug_keypad(PAD_SERIAL, id="pad")
    attached = eventually(lambda: stored(server, node, "peripheral-attached"), timeout=60)
    assert [(r.detail["peripheral"], r.detail["peripheral_kind"]) for r in attached] == [
        ("pad-1", "rating-pad")
    ]
    eventually(lambda: agent_holds_open(guest, PAD_NODE), timeout=30)
    guest.write_file("/tmp/second_reader.py", SECOND_READER)
    assert guest.run("python3 /tmp/second_reader.py").stdout.strip() == "EBUSY"

    for key in ("KEY_KP1", "KEY_KP2", "KEY_KP3", "KEY_KP4", "KEY_KP5"):
        guest.press("pad", key)

    taps = eventually(lambda: (rows := stored(server, node, "rating-tap")) and len(rows) >= 5 and rows,
                      timeout=60)
    assert [(r.detail["pad"], r.detail["counter"], r.rating, r.scale) for r in taps] == [
        ("pad-1", "5", rating, 5) for rating in (1, 2, 3, 4, 5)
    ]
    assert len({r.event_id for r in taps}) == 5
    assert guest.agent_status()["running"]
