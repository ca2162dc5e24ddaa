"""The node's peripherals end to end on one emulated node: the real agent in the guest,
its kernel input, tty and udev, devices plugged, pressed and fed from the host,
and what the fleet server on the host stored.

One guest boots for the module (with the two USB serial adapters, which must be
there at boot) and one agent serves every scenario, as on a node; the last
scenario kills it. Each test plugs what it needs and unplugs it again, and each
has a fresh server store: its assertions are about what it stored. After every
test, everything the agent says it recorded meanwhile must be in that store.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

import pytest

from tests.conftest import eventually
from tests.hil.keys import typed_events
from tests.hil.node_setup import (
    GUEST_POLL_S, KeyReader, agent_holds_open, install_agent_config, stop_key_readers, wait_for_path,
)
from tests.hil.rig import GuestNode
from tests.system.helpers import node_row, stored_events

pytestmark = [pytest.mark.hil, pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)]


PAD_SERIAL = "RP5-KP-0042"
SCANNER_SERIAL = "NLS-HIL-0007"
SERIAL_PAD_SERIAL = "RP5-00123"
SERIAL_READER_SERIAL = "FM430-0451"


def kbd_node(serial: str) -> str:
    return f"/dev/input/by-id/usb-QEMU_QEMU_USB_Keyboard_{serial}-event-kbd"


def serial_by_id(serial: str) -> str:
    return f"/dev/serial/by-id/usb-QEMU_QEMU_USB_SERIAL_{serial}-if00-port0"


PAD_NODE = kbd_node(PAD_SERIAL)
SCANNER_NODE = kbd_node(SCANNER_SERIAL)
PERIPHERALS = f"""\
[[peripherals]]
kind = "rating-pad"
id = "pad-1"
counter = "5"
source = "evdev"
match = {{ id_serial = "{PAD_SERIAL}" }}
# Presses come from QEMU as fast as the guest takes them: no contact bounce to merge.
bounce = "0s"

[[peripherals]]
kind = "scanner"
id = "qr-kiosk"
counter = "kiosk-1"
source = "evdev"
match = {{ id_serial = "{SCANNER_SERIAL}" }}
# The test types over QMP on a shared 2-core machine: a gap of 500 ms between two
# keys of one code must not make it partial here.
timeout = "3s"

[[peripherals]]
kind = "rating-pad"
id = "exit-pad"
counter = "exit"
source = "serial"
device = "{serial_by_id(SERIAL_PAD_SERIAL)}"
# The pad debounces its own contacts; each PRESS line is one press.
bounce = "0s"

[[peripherals]]
kind = "scanner"
id = "qr-3"
counter = "3"
source = "serial"
match = {{ by_id = "usb-QEMU_QEMU_USB_SERIAL_{SERIAL_READER_SERIAL}-if00-port0" }}
"""

# A second reader asks for the exclusive grab (EVIOCGRAB) the agent must hold, and
# gives it back at once should it get it.
SECOND_READER = """\
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0x40044590, 1)
except OSError as exc:
    print(errno.errorcode[exc.errno])
else:
    fcntl.ioctl(fd, 0x40044590, 0)
    print("GRABBED")
"""
RECORDED = re.compile(r"recorded (\S+) #(\d+)")


@dataclass
class Bench:
    """The module's node: the guest, the node's id, its agent config, what is plugged."""

    guest: GuestNode
    node: str
    config: str
    plugged: set[str] = field(default_factory=set)

    def recorded(self) -> list[tuple[str, int]]:
        """(kind, seq) of every event the agent says it recorded (its DEBUG log),
        across all its runs in this guest."""
        return [(kind, int(seq)) for kind, seq in RECORDED.findall(self.guest.agent_log())]

    def last_recorded_seq(self) -> int:
        return max((seq for _, seq in self.recorded()), default=0)

    def start_agent(self) -> int:
        return self.guest.start_agent(self.config, args=["--log-level", "DEBUG"])

    def plug_keyboard(self, serial: str, id: str) -> None:
        self.guest.plug_keyboard(serial, id=id)
        self.plugged.add(id)
        wait_for_path(self.guest, kbd_node(serial))

    def unplug(self, id: str) -> None:
        self.guest.unplug(id)
        self.plugged.discard(id)


@pytest.fixture(scope="module")
def shared_guest_setup():
    """The serial pad and the serial reader are on USB serial adapters plugged at boot
    (an adapter shows up only once the host end is attached)."""

    def plug(node: GuestNode) -> None:
        node.plug_serial(SERIAL_PAD_SERIAL, id="exit-pad")
        node.plug_serial(SERIAL_READER_SERIAL, id="qr-serial")

    return plug, {}


@pytest.fixture(scope="module")
def bench(shared_guest: GuestNode, shared_node: str, broker) -> Bench:
    shared_guest.write_file("/tmp/second_reader.py", SECOND_READER)
    return Bench(shared_guest, shared_node, install_agent_config(shared_guest, broker, shared_node,
                                                                 PERIPHERALS))


@pytest.fixture
def agent(bench: Bench, server) -> Bench:
    """The module's agent, started with the first test that needs it (once a server
    listens, so that its start-up events are acked at once). Afterwards, every event
    it recorded during the test is in this test's store."""
    if not bench.guest.agent_status()["running"]:
        bench.start_agent()
    eventually(lambda: (row := node_row(server, bench.node)) and row.state == "online", timeout=60)
    since = bench.last_recorded_seq()
    try:
        yield bench
        eventually(lambda: not unstored(bench, server, since), timeout=30, interval=GUEST_POLL_S)
    finally:
        for device in sorted(bench.plugged - {"pad"}):  # left by a test that failed half way
            bench.unplug(device)


def unstored(bench: Bench, server, since: int) -> set[tuple[str, int]]:
    """What the agent recorded after seq ``since`` that the server has not stored."""
    stored = {(row.kind, row.seq) for row in stored_events(server, bench.node)}
    return {event for event in bench.recorded() if event[1] > since} - stored


def stored(server, node: str, kind: str, **detail) -> list:
    return [row for row in stored_events(server, node) if row.kind == kind
            and all(row.detail.get(key) == value for key, value in detail.items())]


def pad_plugged(bench: Bench) -> None:
    """The keypad is plugged, attached and grabbed (plugged now unless a test did)."""
    if "pad" not in bench.plugged:
        bench.plug_keyboard(PAD_SERIAL, id="pad")
    eventually(lambda: agent_holds_open(bench.guest, PAD_NODE), timeout=60, interval=GUEST_POLL_S)


def grab_status(guest: GuestNode, path: str) -> str:
    return guest.run(f"python3 /tmp/second_reader.py {path}").stdout.strip()


# --- the USB keypad -----------------------------------------------------------------


def test_a_hot_plugged_keypad_is_grabbed_and_each_tap_is_stored_once(agent: Bench, server):
    guest, node = agent.guest, agent.node
    if "pad" in agent.plugged:  # run again (pytest --count, -k): start from unplugged
        agent.unplug("pad")
    agent.plug_keyboard(PAD_SERIAL, id="pad")
    attached = eventually(lambda: stored(server, node, "peripheral-attached", peripheral="pad-1"),
                          timeout=60)
    assert [r.detail["peripheral_kind"] for r in attached] == ["rating-pad"]
    eventually(lambda: agent_holds_open(guest, PAD_NODE), timeout=30, interval=GUEST_POLL_S)
    assert grab_status(guest, PAD_NODE) == "EBUSY"

    for key in ("KEY_KP1", "KEY_KP2", "KEY_KP3", "KEY_KP4", "KEY_KP5"):
        guest.press("pad", key)

    taps = eventually(lambda: (rows := stored(server, node, "rating-tap")) and len(rows) >= 5 and rows,
                      timeout=60)
    assert [(r.detail["pad"], r.detail["counter"], r.rating, r.scale) for r in taps] == [
        ("pad-1", "5", rating, 5) for rating in (1, 2, 3, 4, 5)
    ]
    assert len({r.event_id for r in taps}) == 5
    assert guest.agent_status()["running"]


def test_an_unplugged_keypad_comes_back_under_a_new_kernel_name_without_an_agent_restart(
    agent: Bench, server
):
    guest, node = agent.guest, agent.node
    pad_plugged(agent)
    pid = guest.agent_status()["pid"]
    first = guest.run(f"readlink -f {PAD_NODE}").stdout.strip()

    agent.unplug("pad")
    detached = eventually(lambda: stored(server, node, "peripheral-detached", peripheral="pad-1"),
                          timeout=60)
    # Another keyboard takes the freed event node while the pad is out.
    agent.plug_keyboard("KBD-HOLD-0001", id="holder")
    assert guest.run(f"readlink -f {kbd_node('KBD-HOLD-0001')}").stdout.strip() == first
    agent.plug_keyboard(PAD_SERIAL, id="pad")
    again = guest.run(f"readlink -f {PAD_NODE}").stdout.strip()
    assert again.startswith("/dev/input/event") and again != first

    reattached = eventually(lambda: [r for r in stored(server, node, "peripheral-attached",
                                                       peripheral="pad-1")
                                     if r.seq > detached[0].seq], timeout=60)
    eventually(lambda: agent_holds_open(guest, PAD_NODE), timeout=30, interval=GUEST_POLL_S)
    assert grab_status(guest, PAD_NODE) == "EBUSY"
    for key in ("KEY_KP3", "KEY_KP4"):
        guest.press("pad", key)

    taps = eventually(lambda: (rows := stored(server, node, "rating-tap")) and len(rows) >= 2 and rows,
                      timeout=30)
    assert [(r.detail["pad"], r.rating) for r in taps] == [("pad-1", 3), ("pad-1", 4)]
    assert all(r.seq > reattached[0].seq for r in taps)
    pad_events = [r.kind for r in stored_events(server, node) if r.seq >= detached[0].seq
                  and r.kind.startswith("peripheral-") and r.detail["peripheral"] == "pad-1"]
    assert pad_events == ["peripheral-detached", "peripheral-attached"]
    status = guest.agent_status()
    assert status["running"] and status["pid"] == pid  # no restart
    agent.unplug("holder")


# --- the keyboard-wedge scanner ----------------------------------------------------

# Shift-heavy: capitals among digits, dots and dashes, so that every Shift must be
# released exactly where the reader released it.
BOOKING = "IHN-20251124-004217"
RECEIPT = "H26.UB.QT.H26-241125-0042"
DESK_TEXT = "Phong 3: SO 12? ok! (Xin chao) ~_~\n"


def test_a_wedge_scanner_gives_the_exact_code_and_a_second_keyboard_does_not_leak_into_it(
    agent: Bench, server
):
    guest, node = agent.guest, agent.node
    agent.plug_keyboard(SCANNER_SERIAL, id="scanner")
    agent.plug_keyboard("KBD-DESK-0002", id="desk")  # the clerk's keyboard: configured nowhere
    eventually(lambda: agent_holds_open(guest, SCANNER_NODE), timeout=60, interval=GUEST_POLL_S)
    # Any program reading the keyboards (a kiosk's window system) sees the desk
    # keyboard and nothing of the scanner: the agent holds its grab.
    on_desk = KeyReader(guest, kbd_node("KBD-DESK-0002"), "desk")
    on_scanner = KeyReader(guest, SCANNER_NODE, "scanner")

    # Both type at once: the clerk's shifted keys between the scanner's.
    clerk = threading.Thread(target=guest.type_text, args=("desk", DESK_TEXT))
    clerk.start()
    for code in (BOOKING, RECEIPT):
        guest.type_text("scanner", code, enter=True)
    clerk.join()

    scans = eventually(lambda: (rows := stored(server, node, "scan", scanner="qr-kiosk"))
                       and len(rows) >= 2 and rows, timeout=30)
    assert [(r.detail["code"], r.detail["code_kind"], r.detail["counter"], r.detail["partial"])
            for r in scans] == [
        (BOOKING, "ihanoi-booking", "kiosk-1", False),
        (RECEIPT, "dossier-receipt", "kiosk-1", False),
    ]
    assert scans[0].detail["fields"] == {"date": "20251124", "number": "004217"}
    assert scans[1].detail["fields"] == {"agency": "H26.UB.QT.H26", "province": "H26",
                                         "received": "241125", "number": "0042"}
    assert on_desk.events() == typed_events(DESK_TEXT)
    stop_key_readers(guest)
    assert on_scanner.events() == []
    # The desk keyboard was seen, named and left alone.
    unknown = stored(server, node, "alarm", code="unknown-device")
    assert any("KBD-DESK-0002" in r.detail["message"] for r in unknown), unknown
    agent.unplug("desk")
    agent.unplug("scanner")
    eventually(lambda: stored(server, node, "peripheral-detached", peripheral="qr-kiosk"), timeout=30)
    assert len(stored(server, node, "scan")) == 2


# --- serial devices on USB serial adapters ------------------------------------------


def test_a_serial_pad_and_a_serial_reader_on_usb_serial_by_id_paths(agent: Bench, server):
    guest, node = agent.guest, agent.node
    pad, reader = guest.serial_line("exit-pad"), guest.serial_line("qr-serial")
    pad.wait_for(b"WHO\n", timeout=60)  # the agent opened the pad and asks who it is
    pad.send(b"HELLO RP5-00123 5\r\n")
    eventually(lambda: agent_holds_open(guest, reader.by_id), timeout=60, interval=GUEST_POLL_S)

    for button in (4, 2, 5):
        acked = pad.received().count(b"ACK %d\n" % button)
        pad.send(b"PRESS %d\r\n" % button)
        # The pad's LED: the tap is in the agent's outbox.
        eventually(lambda: pad.received().count(b"ACK %d\n" % button) == acked + 1, timeout=30)
    reader.send(BOOKING.encode() + b"\r\n" + b"000.00.12.H26-241125-0042\r\n")

    taps = eventually(lambda: (rows := stored(server, node, "rating-tap", pad="exit-pad"))
                      and len(rows) >= 3 and rows, timeout=30)
    assert [(r.detail["counter"], r.rating, r.scale) for r in taps] == [
        ("exit", 4, 5), ("exit", 2, 5), ("exit", 5, 5)
    ]
    scans = eventually(lambda: (rows := stored(server, node, "scan", scanner="qr-3"))
                       and len(rows) >= 2 and rows, timeout=30)
    assert [(r.detail["code"], r.detail["code_kind"], r.detail["counter"]) for r in scans] == [
        (BOOKING, "ihanoi-booking", "3"),
        ("000.00.12.H26-241125-0042", "dossier-receipt", "3"),
    ]

    def pad_health() -> dict | None:
        row = node_row(server, node)
        found = [p for p in ((row.last_health or {}) if row else {}).get("peripherals", [])
                 if p["id"] == "exit-pad"]
        return found[0] if found else None

    health = eventually(lambda: (h := pad_health()) and h["state"] == "ok" and "RP5-00123" in
                        (h.get("detail") or "") and h, timeout=30)
    assert health["detail"] == "pad RP5-00123, 5 buttons"


# --- an agent killed mid-burst ------------------------------------------------------


def test_an_agent_killed_mid_burst_loses_and_doubles_nothing(agent: Bench, server):
    """kill -9 of the agent in the guest while keys are being pressed, a restart,
    more presses: every event the agent recorded (its DEBUG log says "recorded
    <kind> #<seq>" once the event is in its outbox) is stored exactly once, and
    the stored sequence has no gap and no repeat.

    Presses made while no agent runs are nobody's: the kernel hands key events
    only to a reader that has the device open, and the agent reads only from
    when it opens (and grabs) the keypad again. They are not counted here; what
    the agent recorded before dying and after restarting is.
    """
    guest, node = agent.guest, agent.node
    pad_plugged(agent)
    since = agent.last_recorded_seq()
    first_pid = guest.agent_status()["pid"]

    def taps_recorded() -> list[int]:
        return [seq for kind, seq in agent.recorded() if kind == "rating-tap" and seq > since]

    burst = [f"KEY_KP{n % 5 + 1}" for n in range(60)]
    pressed: list[str] = []

    def press_burst() -> None:
        for key in burst:
            guest.press("pad", key)
            pressed.append(key)

    presser = threading.Thread(target=press_burst)
    presser.start()
    try:
        eventually(lambda: len(taps_recorded()) >= 8, timeout=30, interval=0.1)
        assert guest.kill_agent() == -9
        pressed_at_kill = len(pressed)
    finally:
        presser.join()
    assert pressed_at_kill < len(burst), "the burst was over before the agent was killed"
    before = taps_recorded()
    logged_by_the_killed = {seq for _, seq in agent.recorded() if seq > since}

    log_size = len(guest.agent_log())
    agent.start_agent()
    # Waiting by reading the log keeps the guest's one CPU for the agent's start (a
    # shell per poll under TCG doubles it).
    eventually(lambda: "pad pad-1: ok" in guest.agent_log()[log_size:], timeout=90, interval=0.5)
    eventually(lambda: agent_holds_open(guest, PAD_NODE), timeout=30, interval=GUEST_POLL_S)
    assert guest.agent_status()["pid"] != first_pid
    for key in ("KEY_KP1", "KEY_KP5", "KEY_KP2"):
        guest.press("pad", key)
    eventually(lambda: len(taps_recorded()) >= len(before) + 3, timeout=30, interval=GUEST_POLL_S)

    recorded = [(kind, seq) for kind, seq in agent.recorded() if seq > since]
    rows = eventually(lambda: (rows := [r for r in stored_events(server, node) if r.seq > since])
                      and {(r.kind, r.seq) for r in rows} >= set(recorded) and rows,
                      timeout=60, interval=GUEST_POLL_S)
    seqs = [r.seq for r in rows]
    assert len(seqs) == len(set(seqs)) and len({r.event_id for r in rows}) == len(rows)
    assert seqs == list(range(since + 1, max(seqs) + 1)), "a gap in the stored sequence"
    # Stored but never logged: at most the one event the kill caught between its
    # write to the outbox and its log line.
    logged_by_the_restarted = {seq for _, seq in recorded} - logged_by_the_killed
    unlogged = set(seqs) - {seq for _, seq in recorded}
    assert len(unlogged) <= 1 and all(
        max(logged_by_the_killed) < seq < min(logged_by_the_restarted) for seq in unlogged
    ), unlogged
    taps = [r for r in rows if r.kind == "rating-tap"]
    assert len(taps) >= len(before) + 3
    assert [r.rating for r in taps[-3:]] == [1, 5, 2]
    assert all(r.detail["pad"] == "pad-1" for r in taps)
