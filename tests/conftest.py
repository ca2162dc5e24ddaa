"""Fixtures that start real services: a private Mosquitto per test session on a
free port with generated config (never the machine's broker on 1883), a
throwaway SQLite store and an in-process fleet server per test.

The session broker speaks mutual TLS only, with a fleet PKI of its own made for
the session: every client shows a certificate whose CN is its username
(`broker.tls_for(user)`), and checks the broker's against 127.0.0.1.
The password path (the demo's broker) is tested on brokers of its own."""

from __future__ import annotations

import itertools
import shutil
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Iterator

import pytest

from provisioning.fleet_dir import FleetDir
from provisioning.mosquitto import SERVER_USERNAME, ClientTls, PrivateBroker
from tests.databases import db_url, empty_db_url, postgres  # noqa: F401 - fixtures
from tests.mqtt import Probe, TlsFiles
from tests.servers import server_broker

NODE_POOL = [f"t{n:03d}-node" for n in range(1, 301)]
_next_node = itertools.count()


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("mosquitto") is None:
        raise pytest.UsageError("mosquitto is not installed: run `make test`, which installs it")


@pytest.fixture(autouse=True)
def no_real_udev(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-process agents see a fake udev: a developer's own USB devices stay out of the tests.

    (Agent processes started by tests use the real monitor, as on a node.)
    """
    from devices.hotplug.fake import FakeMonitor

    monkeypatch.setattr("agent.node.udev_monitor", FakeMonitor)


def tls_broker(workdir: Path) -> PrivateBroker:
    """A private broker (not started) with a new fleet PKI under ``workdir``: mutual TLS only."""
    return PrivateBroker(workdir / "broker", fleet=FleetDir.create(workdir / "pki"))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrivateBroker]:
    with tls_broker(tmp_path_factory.mktemp("mqtt")) as running:
        for user in [SERVER_USERNAME, *NODE_POOL]:
            running.tls_for(user)
        yield running


def agent_tls(broker: PrivateBroker, node: str):
    """The agent's `TlsSettings` for ``node`` on ``broker``."""
    from agent.settings import TlsSettings

    return TlsSettings(**asdict(broker.tls_for(node)))


def agent_toml(broker: PrivateBroker, node: str, state_dir: Path, *, port: int | None = None,
               press_every_s: float | None = None) -> str:
    """The TOML config of an agent process with one fake pad, connecting with its certificate
    (to ``port`` if given: a relay in front of the broker)."""
    tls = broker.tls_for(node)
    presses = f"fake_press_every = {press_every_s}\n" if press_every_s else ""
    return f"""\
node_id = "{node}"
state_dir = "{state_dir}"
health_interval = "5s"

[broker]
host = "{broker.host}"
port = {port or broker.port}

[broker.tls]
ca_file = "{tls.ca_file}"
cert_file = "{tls.cert_file}"
key_file = "{tls.key_file}"

[[peripherals]]
kind = "rating-pad"
id = "pad-5"
counter = "5"
source = "fake"
{presses}"""


@pytest.fixture
def new_node(broker: PrivateBroker) -> Callable[[], str]:
    """Hands out a node id with broker credentials that no other test has used."""

    def take() -> str:
        return NODE_POOL[next(_next_node)]

    return take


@pytest.fixture
def server(broker: PrivateBroker, tmp_path: Path, db_url: str):
    """The fleet server, in process, on a throwaway store (SQLite, then PostgreSQL), connected."""
    from fleet_server.service import FleetServer
    from fleet_server.settings import ServerSettings

    settings = ServerSettings(
        db_url=db_url,
        broker=server_broker(broker, client_id=f"server-{tmp_path.name}"),
        http_port=0,  # no HTTP API: tests that want one pick a free port (tests/fleet_server/api)
    )
    fleet = FleetServer(settings)
    fleet.start()
    assert fleet.link.connected.wait(10), "server did not connect to the test broker"
    yield fleet
    fleet.stop()


@pytest.fixture
def probe(broker: PrivateBroker) -> Callable[..., Probe]:
    """Connects independent MQTT clients with the certificate of the given user
    (None: TLS without a client certificate), or with the ``tls`` given; closed
    after the test. Raises ConnectionRefusedError when the broker refuses."""
    opened: list[Probe] = []

    def connect(user: str | None, *, tls: TlsFiles | ClientTls | None = None, **kwargs) -> Probe:
        if tls is None:
            tls = broker.tls_for(user) if user else TlsFiles(broker.fleet.ca_cert)
        client = Probe(broker.host, broker.port, tls=tls, **kwargs)
        client.connect()
        opened.append(client)
        return client

    yield connect
    for client in opened:
        client.close()


def eventually(check: Callable[[], object], timeout: float = 20, interval: float = 0.05):
    """Poll ``check`` until it returns a truthy value; fail with its last value."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout}s (last value: {value!r})")
        time.sleep(interval)


class AgentThread:
    """Runs a NodeAgent on its own event loop in a thread, as the daemon would."""

    def __init__(self, settings) -> None:
        import asyncio

        from agent.node import NodeAgent

        self.agent = NodeAgent(settings)
        self._loop = asyncio.new_event_loop()
        self._stop = asyncio.Event()
        self._thread = threading.Thread(target=self._main, daemon=True)

    def _main(self) -> None:
        self._loop.run_until_complete(self.agent.run(self._stop))

    def start(self) -> "AgentThread":
        self._thread.start()
        return self

    def call(self, fn: Callable, *args):
        """Run ``fn(*args)`` on the agent's loop and return its result."""
        import asyncio
        import concurrent.futures

        future: concurrent.futures.Future = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn(*args))
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                future.set_exception(exc)

        self._loop.call_soon_threadsafe(run)
        return future.result(timeout=10)

    def stop(self) -> None:
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(20)
        if not self._loop.is_closed() and not self._thread.is_alive():
            self._loop.close()


@pytest.fixture
def agent_settings(broker: PrivateBroker, tmp_path: Path):
    """Settings for an agent with one fake rating pad, as the given node."""
    from agent.settings import AgentSettings, BrokerSettings

    def make(node: str, *, protocol: str = "5", port: int | None = None, **extra):
        return AgentSettings(
            node_id=node,
            state_dir=extra.pop("state_dir", tmp_path / node),
            broker=BrokerSettings(
                host=broker.host,
                port=port or broker.port,
                protocol=protocol,
                tls=agent_tls(broker, node),
            ),
            ack_timeout=extra.pop("ack_timeout", 3),
            peripherals=extra.pop("peripherals", [
                {"kind": "rating-pad", "id": "pad-1", "counter": "5", "source": "fake", "bounce": 0}
            ]),
            **extra,
        )

    return make


@pytest.fixture
def running_agent(agent_settings):
    """Starts in-process agents; stops them after the test."""
    started: list[AgentThread] = []

    def start(node: str, **kwargs) -> AgentThread:
        runner = AgentThread(agent_settings(node, **kwargs)).start()
        started.append(runner)
        return runner

    yield start
    for runner in started:
        runner.stop()


class SmallDisk:
    """A real, tiny file system (tmpfs) that tests can fill up and make read-only."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._filler = path / "filler"

    def fill(self) -> None:
        """Write until the file system says ENOSPC."""
        import errno

        with open(self._filler, "ab", buffering=0) as f:
            try:
                while True:
                    f.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC, exc

    def free(self) -> None:
        self._filler.unlink(missing_ok=True)

    def remount(self, mode: str) -> None:
        import subprocess

        subprocess.run(["mount", "-o", f"remount,{mode}", str(self.path)], check=True)


@pytest.fixture
def small_disk(tmp_path: Path):
    import subprocess

    path = tmp_path / "small-disk"
    path.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=2m,mode=0700", "rpfleet-test", str(path)],
        capture_output=True, text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.strip()}")
    try:
        yield SmallDisk(path)
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


@pytest.fixture
def agent_process(tmp_path: Path, broker: PrivateBroker):
    """Starts the real agent as a process (`rpfleet agent run`); its state dir is tmp_path/node."""
    import os
    import subprocess
    import sys

    from rpfleet import process

    started: list[subprocess.Popen] = []

    def start(node: str, *, port: int | None = None, press_every_s: float | None = None,
              extra_toml: str = "", env: dict[str, str] | None = None):
        config = tmp_path / f"{node}.toml"
        toml = agent_toml(broker, node, tmp_path / node, port=port, press_every_s=press_every_s)
        config.write_text(extra_toml + toml, encoding="utf-8")
        with open(tmp_path / f"{node}.log", "ab") as log:
            proc = process.spawn(
                [sys.executable, "-m", "rpfleet", "agent", "run", "--config", str(config)],
                stdout=log, stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        started.append(proc)
        return proc

    yield start
    for proc in started:
        process.stop(proc)
