"""What a technician puts on a node before the agent runs, put into the guest: the
node's certificate from the test broker's PKI, and ``/etc/rpfleet/agent.toml``."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from provisioning.mosquitto import PrivateBroker
from tests.conftest import eventually
from tests.hil.rig import GuestNode

CONFIG = "/etc/rpfleet/agent.toml"
TLS_DIR = "/etc/rpfleet/tls"
STATE_DIR = "/var/lib/rpfleet"
# The guest's MQTT mux listens here and carries connections to the test broker;
# the broker's certificate names 127.0.0.1, so TLS checks it as on a real node.
GUEST_BROKER = ("127.0.0.1", 1883)
GUEST_POLL_S = 0.3  # each look into the guest is a control call (often a shell): poll gently


def install_agent_config(guest: GuestNode, broker: PrivateBroker, node: str, peripherals: str,
                         *, extra: str = "") -> str:
    """Write ``node``'s TLS files and an agent config with the ``peripherals`` TOML
    (``[[peripherals]]`` tables) into the guest; returns the config's path there.
    ``extra`` goes at the top level (before any table)."""
    tls = broker.tls_for(node)
    files = {"ca.pem": (tls.ca_file, 0o644), "node.pem": (tls.cert_file, 0o644),
             "node.key": (tls.key_file, 0o600)}
    for name, (source, mode) in files.items():
        guest.write_file(f"{TLS_DIR}/{name}", Path(source).read_bytes(), mode=mode)
    guest.write_file(CONFIG, f"""\
node_id = "{node}"
state_dir = "{STATE_DIR}"
health_interval = "5s"
{extra}
[broker]
host = "{GUEST_BROKER[0]}"
port = {GUEST_BROKER[1]}

[broker.tls]
ca_file = "{TLS_DIR}/ca.pem"
cert_file = "{TLS_DIR}/node.pem"
key_file = "{TLS_DIR}/node.key"

{peripherals}""")
    return CONFIG


def agent_holds_open(guest: GuestNode, path: str) -> bool:
    """The agent process has ``path`` (a link such as a by-id name) open."""
    pid = guest.agent_status()["pid"]
    return guest.run(f'ls -l /proc/{pid}/fd 2>/dev/null | grep -q " -> $(readlink -f {path})$"').rc == 0


# Runs in the guest: reads a keyboard's evdev node without grabbing it (as a kiosk's
# window system would) until Return is released, the stop file appears or the time is
# up; prints [code, value] for every key down and up.
KEY_READER = """\
import json, os, select, struct, sys, time
device, ready, seconds, stop = sys.argv[1:]
fd = os.open(device, os.O_RDONLY)
open(ready, "w").close()
events, end = [], time.monotonic() + float(seconds)
while time.monotonic() < end and [28, 0] not in events and not os.path.exists(stop):
    if select.select([fd], [], [], 0.1)[0]:
        data = os.read(fd, 24 * 64)
        for i in range(0, len(data), 24):
            _, _, kind, code, value = struct.unpack("llHHi", data[i:i + 24])
            if kind == 1 and value in (0, 1):
                events.append([code, value])
print(json.dumps(events))
"""

KEY_READER_PATH = "/tmp/key_reader.py"
KEY_READERS_STOP = "/tmp/key_readers.stop"


def wait_for_path(guest: GuestNode, path: str, present: bool = True, timeout: float = 30) -> None:
    eventually(lambda: (guest.run(f"test -e {path}").rc == 0) == present, timeout=timeout,
               interval=GUEST_POLL_S)


class KeyReader:
    """A guest process reading one keyboard without grabbing it, in a thread of the test;
    it ends at Return, at `stop_key_readers`, or after ``seconds``."""

    def __init__(self, guest: GuestNode, path: str, name: str, seconds: float = 60) -> None:
        self.result: dict = {}
        ready = f"/tmp/{name}.ready"
        guest.write_file(KEY_READER_PATH, KEY_READER)
        guest.run(f"rm -f {ready} {KEY_READERS_STOP}")
        cmd = f"python3 {KEY_READER_PATH} {path} {ready} {seconds} {KEY_READERS_STOP}"
        self._thread = threading.Thread(target=lambda: self.result.update(
            run=guest.run(cmd, timeout=seconds + 20)))
        self._thread.start()
        wait_for_path(guest, ready)

    def events(self) -> list[tuple[str, int]]:
        """The keys it saw, as (key name, 1 down / 0 up); waits for the reader to end."""
        from evdev import ecodes

        self._thread.join()
        run = self.result["run"]
        assert run.rc == 0, run.stderr
        return [(ecodes.KEY[code] if isinstance(ecodes.KEY[code], str) else ecodes.KEY[code][0], value)
                for code, value in json.loads(run.stdout)]


def stop_key_readers(guest: GuestNode) -> None:
    guest.write_file(KEY_READERS_STOP, "")
