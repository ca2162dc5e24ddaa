"""The rig itself, on one emulated node without an agent: what the scenarios rely on
(keys typed exactly and only on the chosen keyboard, hot-plug, USB serial lines,
the control channel) is checked here against the guest kernel's own view."""

from __future__ import annotations

import socket
import threading

import pytest

from tests.conftest import eventually
from tests.hil.keys import typed_events
from tests.hil.mux import HostMux
from tests.hil.rig import GuestError, GuestNode

from tests.hil.node_setup import KeyReader, stop_key_readers, wait_for_path

pytestmark = pytest.mark.hil

# Opens a tty raw, says so, and prints (repr) the first N bytes it reads.
SERIAL_READER = """\
import os, sys, tty
fd = os.open(sys.argv[1], os.O_RDWR | os.O_NOCTTY)
tty.setraw(fd)
open(sys.argv[2], "w").close()
data = b""
while len(data) < int(sys.argv[3]):
    data += os.read(fd, 100)
print(repr(data))
"""


@pytest.fixture(scope="module")
def node(hil_image, tmp_path_factory):
    guest = GuestNode(hil_image, tmp_path_factory.mktemp("rig"))
    guest.plug_serial("BOOT-0001", id="boot-line")
    try:
        guest.start()
        guest.write_file("/tmp/serial_reader.py", SERIAL_READER)
        yield guest
    finally:
        guest.stop()


def by_id(serial: str) -> str:
    return f"/dev/input/by-id/usb-QEMU_QEMU_USB_Keyboard_{serial}-event-kbd"


def test_typed_text_reaches_only_the_chosen_keyboard_key_for_key(node):
    scanner = node.plug_keyboard("SCAN-0001")
    other = node.plug_keyboard("KBD-0002")
    for serial in ("SCAN-0001", "KBD-0002"):
        wait_for_path(node, by_id(serial))
    on_scanner = KeyReader(node, by_id("SCAN-0001"), "scanner")
    on_other = KeyReader(node, by_id("KBD-0002"), "other")
    text = 'HD-2024/Q:"Ab_9"+{x}|~<?>!@#$%^&*() z'

    node.type_text(scanner, text, enter=True)

    assert on_scanner.events() == typed_events(text + "\n")
    stop_key_readers(node)
    assert on_other.events() == []
    node.unplug(scanner)
    node.unplug(other)


def test_an_unplugged_keyboard_goes_and_comes_back_under_a_new_kernel_name(node):
    pad = node.plug_keypad("PAD-0003")
    wait_for_path(node, by_id("PAD-0003"))
    first = node.run(f"readlink -f {by_id('PAD-0003')}").stdout.strip()
    node.unplug(pad)
    wait_for_path(node, by_id("PAD-0003"), present=False)
    holder = node.plug_keyboard("KBD-0004")  # takes the freed event node
    wait_for_path(node, by_id("KBD-0004"))
    node.plug_keypad("PAD-0003", id="pad-again")
    wait_for_path(node, by_id("PAD-0003"))
    assert node.run(f"readlink -f {by_id('PAD-0003')}").stdout.strip() != first
    props = node.run(f"udevadm info -q property -n {by_id('PAD-0003')}").stdout
    assert "ID_SERIAL_SHORT=PAD-0003" in props.splitlines()
    node.unplug(holder)
    node.unplug("pad-again")


def test_usb_serial_lines_carry_bytes_both_ways(node):
    boot_line = node.serial_line("boot-line")
    hot_line = node.plug_serial("HOT-0005")
    for line in (boot_line, hot_line):
        wait_for_path(node, line.by_id)
        assert node.run(f"stty -F {line.by_id} 9600 raw -echo").rc == 0

    assert node.run(f"printf 'WHO\\r\\n' > {boot_line.by_id}").rc == 0
    assert boot_line.wait_for(b"WHO\r\n") == b"WHO\r\n"
    got: dict = {}
    reading = threading.Thread(target=lambda: got.update(run=node.run(
        f"python3 /tmp/serial_reader.py {hot_line.by_id} /tmp/serial.ready 13", timeout=30)))
    reading.start()
    wait_for_path(node, "/tmp/serial.ready")
    hot_line.send(b"PRESS 5\r\nOK\r\n")
    reading.join()
    assert got["run"].stdout.strip() == repr(b"PRESS 5\r\nOK\r\n")
    node.unplug(hot_line.id)
    wait_for_path(node, hot_line.by_id, present=False)


def test_the_control_channel_writes_reads_runs_and_signals(node):
    node.write_file("/tmp/blob", bytes(range(256)), mode=0o600)
    assert node.read_bytes("/tmp/blob") == bytes(range(256))
    assert node.run("stat -c %a /tmp/blob").stdout.strip() == "600"
    slow = node.run("echo started; sleep 30", timeout=1)
    assert slow.timed_out and slow.stdout == "started\n"
    with pytest.raises(GuestError, match="FileNotFoundError"):
        node.read_file("/nonexistent")

    node.write_file("/tmp/bad.toml", 'node_id = "x"\nbogus = 1\n')
    node.start_agent("/tmp/bad.toml", log="/tmp/bad.log")
    assert node.wait_agent(60) == 1  # the config is refused, not run
    assert "bogus" in node.read_file("/tmp/bad.log")

    node.write_file("/tmp/good.toml", 'node_id = "hil-rig"\nstate_dir = "/tmp/state"\n')
    node.start_agent("/tmp/good.toml", log="/tmp/good.log")
    assert node.wait_agent(1) is None and node.agent_status()["running"]
    assert node.kill_agent() == -9
    assert not node.agent_status()["running"]


# Dials the guest's MQTT mux, says hello and prints what comes back.
DIAL = """\
import socket
with socket.create_connection(("127.0.0.1", 1883), timeout=20) as sock:
    sock.sendall(b"hello through the port\\n")
    print(sock.makefile("rb").readline().decode().strip())
"""


def mux_pids(node: GuestNode) -> list[str]:
    """The guest's MQTT mux processes (no procps in the guest: /proc; the brackets keep
    the shell and grep themselves out)."""
    found = node.run("grep -l '/opt/hil/[m]ux.py' /proc/[0-9]*/cmdline 2>/dev/null").stdout
    return [path.split("/")[2] for path in found.split()]


def mux_listens(node: GuestNode) -> bool:
    # 127.0.0.1:1883 in LISTEN state (0A), as /proc/net/tcp writes it
    return node.run("awk '$2 == \"0100007F:075B\" && $4 == \"0A\"' /proc/net/tcp | grep -q .").rc == 0


def test_the_guest_mux_waits_for_the_host_end_and_carries_connections_once_it_attaches(node):
    """The guest's mux outlives its port's host end going away (a port without one
    reads as end of file) and carries connections again once a host end attaches."""
    mux_pid = mux_pids(node)
    assert len(mux_pid) == 1 and mux_listens(node)
    node._idle_mqtt.close()  # the rig's placeholder host end (this node has no broker)
    node._idle_mqtt = None
    eventually(lambda: not mux_listens(node), timeout=20, interval=0.2)

    with socket.create_server(("127.0.0.1", 0)) as echo:
        def answer() -> None:
            conn, _ = echo.accept()
            with conn:
                conn.sendall(b"echo: " + conn.makefile("rb").readline())

        threading.Thread(target=answer, daemon=True).start()
        host = HostMux(str(node._sockets / "mqtt.sock"), echo.getsockname()).start()
        try:
            eventually(lambda: mux_listens(node), timeout=20, interval=0.2)
            node.write_file("/tmp/dial.py", DIAL)
            dialled = node.run("python3 /tmp/dial.py", timeout=30)
        finally:
            host.stop()
    assert dialled.stdout.strip() == "echo: hello through the port", dialled.stderr
    assert mux_pids(node) == mux_pid
