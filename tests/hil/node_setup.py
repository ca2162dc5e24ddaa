"""What a technician puts on a node before the agent runs, put into the guest: the
node's certificate from the test broker's PKI, and ``/etc/rpfleet/agent.toml``."""

from __future__ import annotations

from pathlib import Path

from provisioning.mosquitto import PrivateBroker
from tests.hil.rig import GuestNode

CONFIG = "/etc/rpfleet/agent.toml"
TLS_DIR = "/etc/rpfleet/tls"
STATE_DIR = "/var/lib/rpfleet"
# The guest's MQTT mux listens here and carries connections to the test broker;
# the broker's certificate names 127.0.0.1, so TLS checks it as on a real node.
GUEST_BROKER = ("127.0.0.1", 1883)


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
