"""The technician's path as real processes: `provision node add` on the server,
`agent enroll` on the node, then `agent run`, until the node's first tap is
stored, over mutual TLS to the session broker (docs/provisioning.md).

The time of each step is printed (run with -s); the closing note of issue 7
quotes it. Nothing here asserts on time.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import sqlalchemy as sa

from provisioning.mosquitto import free_port
from rpfleet import process
from tests.conftest import eventually
from tests.servers import server_settings

SITE = "pv-bach-dang"
KINDS = """\
[test-desk]
description = "a counter desk whose fake pad is pressed every second"
[[test-desk.peripherals]]
kind = "rating-pad"
id = "pad-1"
counter = "{counter}"
source = "fake"
fake_press_every = "1s"
"""


def rpfleet(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rpfleet", *args], capture_output=True, text=True, timeout=120,
        env={**os.environ, **env},
    )


def test_from_provision_node_add_to_a_stored_tap_over_tls(broker, db_url, tmp_path: Path):
    from fleet_server.schema import counters, events, node_certificates
    from fleet_server.service import FleetServer
    from fleet_server.settings import EnrollmentSettings
    from fleet_server.store import add_site, connect

    kinds_file = tmp_path / "kinds.toml"
    kinds_file.write_text(KINDS, encoding="utf-8")
    engine = connect(db_url)
    with engine.begin() as conn:
        add_site(conn, SITE, "Phường Bạch Đằng", "commune")
        conn.execute(counters.insert(), [{"site_id": SITE, "id": "2"}])
    enroll_port = free_port()
    enrollment = EnrollmentSettings(
        pki_dir=broker.fleet.path, host="127.0.0.1", port=enroll_port, kinds_file=kinds_file,
        node_broker_host=broker.host, node_broker_port=broker.port,
    )
    server = FleetServer(server_settings(broker, tmp_path, db_url, "enroll", enrollment=enrollment))
    server.start()
    steps: dict[str, float] = {}
    agent = None
    try:
        env = {
            "RPFLEET_SERVER_DB_URL": db_url,
            "RPFLEET_SERVER_ENROLLMENT__PKI_DIR": str(broker.fleet.path),
            "RPFLEET_SERVER_ENROLLMENT__KINDS_FILE": str(kinds_file),
            "RPFLEET_SERVER_ENROLLMENT__PORT": str(enroll_port),
            "RPFLEET_SERVER_ENROLLMENT__HOST": "127.0.0.1",
        }
        started = time.monotonic()
        made = rpfleet("provision", "node", "add", "--site", SITE, "--counter", "2",
                       "--kind", "test-desk", "--by", "IT office", env=env)
        assert made.returncode == 0, made.stderr
        code = re.search(r"enrollment code:\s+(\S+)", made.stdout).group(1)
        server_url = re.search(r"--server (\S+)", made.stdout).group(1)
        assert server_url == f"https://127.0.0.1:{enroll_port}"
        steps["provision node add"] = time.monotonic() - started

        node_etc, state = tmp_path / "node" / "etc", tmp_path / "node" / "state"
        started = time.monotonic()
        enrolled = rpfleet("agent", "enroll", code, "--server", server_url, "--site", SITE,
                           "--dir", str(node_etc / "identity"), "--config", str(node_etc / "agent.toml"),
                           "--state-dir", str(state), env={})
        assert enrolled.returncode == 0, enrolled.stderr
        assert "Enrolled: node pv-bach-dang-2" in enrolled.stdout
        steps["agent enroll"] = time.monotonic() - started

        started = time.monotonic()
        with open(tmp_path / "agent.log", "ab") as log:
            agent = process.spawn(
                [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(node_etc / "agent.toml")],
                stdout=log, stderr=subprocess.STDOUT,
            )

        def taps() -> int:
            with engine.connect() as conn:
                return conn.execute(sa.select(sa.func.count()).select_from(events).where(
                    events.c.node_id == "pv-bach-dang-2", events.c.kind == "rating-tap")).scalar_one()

        eventually(taps, timeout=60)
        steps["agent run until the first tap is stored"] = time.monotonic() - started

        with engine.connect() as conn:
            cert = conn.execute(sa.select(node_certificates)).one()
        assert cert.node_id == "pv-bach-dang-2" and cert.how == "enrolled"
        assert (node_etc / "identity" / "node.key").stat().st_mode & 0o777 == 0o600
        log_text = (tmp_path / "agent.log").read_text(encoding="utf-8", errors="replace")
        assert "PRIVATE KEY" not in log_text
    finally:
        if agent is not None:
            process.stop(agent)
        server.stop()
        engine.dispose()
    print("\ntechnician path, machine time:")
    for step, seconds in steps.items():
        print(f"  {step:<42} {seconds:6.2f} s")
    print(f"  {'total':<42} {sum(steps.values()):6.2f} s")
