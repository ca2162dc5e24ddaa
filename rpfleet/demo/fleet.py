"""The demo fleet: a private broker, the fleet server on SQLite and simulated nodes,
each a real process, with fake rating pads behind the real driver interface."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from provisioning.mosquitto import SERVER_USERNAME, PrivateBroker, new_password
from provisioning.secret_files import write_secret
from rpfleet import process


@dataclass(frozen=True)
class DemoSite:
    id: str
    name: str
    kind: str
    counters: tuple[str, ...]


SITES = (
    DemoSite("hk-tiep-nhan", "Điểm tiếp nhận Hoàn Kiếm", "reception", ("1", "2")),
    DemoSite("bd-phuong", "Phường Ba Đình", "commune", ("1", "2")),
    DemoSite("cg-buu-dien", "Bưu điện Cầu Giấy", "agency", ("1",)),
)


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
        self.server: subprocess.Popen | None = None
        self.agents: dict[str, subprocess.Popen] = {}

    def start(self) -> None:
        self.broker.start()
        self._register()
        self.server = self._spawn(
            "server",
            ["server", "run", "--db", self.db_url, "--broker-host", self.broker.host,
             "--broker-port", str(self.broker.port),
             "--password-file", str(write_secret(self.workdir / "server" / "password",
                                            self._passwords[SERVER_USERNAME]))],
            self.workdir / "server" / "server.log",
        )
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
        from fleet_server import store

        engine = store.connect(self.db_url)
        with engine.begin() as conn:
            for site in SITES:
                store.add_site(conn, site.id, site.name, site.kind)
            for site, counter, node in self.nodes:
                store.assign_node(conn, node, site.id, counter)
        engine.dispose()

    def _spawn(self, name: str, args: list[str], log_file: Path) -> subprocess.Popen:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        with open(log_file, "ab") as log:
            return process.spawn(
                [sys.executable, "-m", "rpfleet", *args],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                env=dict(os.environ, PYTHONUNBUFFERED="1"),
            )
