"""The demo fleet: a private broker, the fleet server on SQLite and simulated nodes,
each a real process, with fake rating pads behind the real driver interface.

The database gets the sample registry of Hanoi (fleet_server/data/hanoi-sites.csv:
12 branches, 632 sites); the nodes sit at three of its sites."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from provisioning.mosquitto import SERVER_USERNAME, PrivateBroker, free_port, new_password
from provisioning.secret_files import write_secret
from rpfleet import process


@dataclass(frozen=True)
class DemoSite:
    """A site of the sample registry where the demo runs nodes, one per counter."""

    id: str
    counters: tuple[str, ...]


SITES = (
    DemoSite("tn-hoan-kiem-1", ("1", "2")),  # Điểm tiếp nhận số 1 – Chi nhánh Hoàn Kiếm
    DemoSite("phuong-ba-dinh", ("1", "2")),  # Phường Ba Đình
    DemoSite("dl-phuong-cau-giay-1", ("1",)),  # Bưu cục Cầu Giấy
)
"""Five nodes in all: the demo machine may have two cores."""


def node_id(site: DemoSite, counter: str) -> str:
    return f"{site.id}-q{counter}"


def agent_toml(node: str, counter: str, port: int, password_file: Path, state_dir: Path,
               press_every_s: float | None) -> str:
    """The agent config of a simulated node whose fake pad presses itself (if asked)."""
    presses = f"fake_press_every = {press_every_s}\n" if press_every_s else ""
    return f"""\
node_id = "{node}"
state_dir = "{state_dir}"
health_interval = "5s"

[broker]
host = "127.0.0.1"
port = {port}
password_file = "{password_file}"

[[peripherals]]
kind = "rating-pad"
id = "pad-{counter}"
counter = "{counter}"
source = "fake"
{presses}"""


class DemoFleet:
    def __init__(self, workdir: Path, press_every_s: float) -> None:
        self.workdir = workdir
        self.press_every_s = press_every_s
        self.db_url = f"sqlite:///{workdir / 'fleet.sqlite'}"
        self.nodes = [(site, c, node_id(site, c)) for site in SITES for c in site.counters]
        self._passwords = {SERVER_USERNAME: new_password()} | {
            node: new_password() for _, _, node in self.nodes
        }
        self.broker = PrivateBroker(workdir / "broker", self._passwords)
        self.http_port = free_port()
        self.api_token_file = workdir / "api-token"
        self.dashboard_token_file = workdir / "dashboard-token"
        self.queue_token_file = workdir / "queue-token"
        self._tickets = 0
        self.server: subprocess.Popen | None = None
        self.agents: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.broker.start()
        self._register()
        self.server = self._spawn(
            "server",
            ["server", "run", "--db", self.db_url, "--broker-host", self.broker.host,
             "--broker-port", str(self.broker.port), "--http-port", str(self.http_port),
             "--password-file", str(write_secret(self.workdir / "server" / "password",
                                            self._passwords[SERVER_USERNAME]))],
            self.workdir / "server" / "server.log",
        )
        # A node's first batch published before the server subscribes would
        # wait for its ack timeout (15 s): start the nodes once it listens.
        self._wait_for_log(self.workdir / "server" / "server.log", "subscribed to", self.server)
        for site, counter, node in self.nodes:
            home = self.workdir / "nodes" / node
            config = home / "agent.toml"
            config.parent.mkdir(parents=True, exist_ok=True)
            config.write_text(
                agent_toml(node, counter, self.broker.port,
                           write_secret(home / "password", self._passwords[node]), home / "state",
                           self.press_every_s),
                encoding="utf-8",
            )
            self.agents[node] = self._spawn(node, ["agent", "run", "--config", str(config)],
                                            home / "agent.log")

    def dead(self) -> list[str]:
        """Names of the fleet's processes that have exited."""
        procs = dict(self.agents, server=self.server) if self.server else dict(self.agents)
        return [name for name, p in procs.items() if p.poll() is not None]

    def stop(self) -> None:
        """Agents first (they say offline), then the server, then the broker."""
        for proc in self.agents.values():
            if proc.poll() is None:
                proc.terminate()
        for proc in self.agents.values():
            process.stop(proc, timeout=10)
        if self.server is not None:
            process.stop(self.server, timeout=15)
        self.broker.stop()

    def _register(self) -> None:
        """Import the sample registry, then put each node at its site and counter."""
        from fleet_server import registry, store
        from fleet_server.api import tokens
        from fleet_server.data import HANOI_SITES
        from fleet_server.sites_csv import read_sites

        sample = read_sites(HANOI_SITES.read_bytes())
        if not sample.ok:
            raise RuntimeError(f"{HANOI_SITES}: {sample.errors[0]}")
        engine = store.connect(self.db_url)
        with engine.begin() as conn:
            registry.import_sites(conn, sample.rows)
            for site, counter, node in self.nodes:
                store.assign_node(conn, node, site.id, counter)
            write_secret(self.api_token_file, tokens.create(conn, "demo"))
            # The hall TV of the first site, and a queue system calling tickets there.
            write_secret(self.dashboard_token_file, tokens.create(
                conn, "demo-hall-tv", role=tokens.DASHBOARD, sites=[SITES[0].id]))
            write_secret(self.queue_token_file, tokens.create(
                conn, "demo-queue", role=tokens.QUEUE, sites=[SITES[0].id]))
        engine.dispose()

    @property
    def dashboard_url(self) -> str:
        """The first site's dashboard page, with its key, for a browser."""
        key = self.dashboard_token_file.read_text(encoding="utf-8").strip()
        return f"http://127.0.0.1:{self.http_port}/sites/{SITES[0].id}/dashboard#key={key}"

    def call_next(self) -> str:
        """Call the next ticket at one of the first site's counters, as its queue
        system would (the real HTTP route); returns what was called, or why not."""
        import json
        import urllib.error
        import urllib.request

        site = SITES[0]
        self._tickets += 1
        ticket = f"{1000 + self._tickets}"
        counter = site.counters[self._tickets % len(site.counters)]
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}/api/v1/sites/{site.id}/calls", method="POST",
            data=json.dumps({"ticket": ticket, "counter": counter}).encode(),
            headers={"Content-Type": "application/json", "Authorization": "Bearer "
                     + self.queue_token_file.read_text(encoding="utf-8").strip()})
        try:
            with urllib.request.urlopen(request, timeout=5):
                return f"ticket {ticket} -> counter {counter}"
        except (urllib.error.URLError, OSError) as exc:
            return f"call not made: {exc}"

    @staticmethod
    def _wait_for_log(log: Path, text: str, proc: subprocess.Popen, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if log.exists() and text in log.read_text(encoding="utf-8", errors="replace"):
                return
            if proc.poll() is not None:
                raise RuntimeError(f"the fleet server exited with {proc.returncode}; see {log}")
            time.sleep(0.1)
        raise RuntimeError(f"the fleet server did not start listening within {timeout:.0f}s; see {log}")

    def _spawn(self, name: str, args: list[str], log_file: Path) -> subprocess.Popen:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            return process.spawn(
                [sys.executable, "-m", "rpfleet", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
