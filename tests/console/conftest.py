"""A real fleet server (broker link, store, HTTP API on a free port) with a seeded
fleet, and the console pointed at it with a fixed clock."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

from fleet_server import store
from fleet_server.api import tokens
from fleet_server.duty import DutyLock
from provisioning.mosquitto import SERVER_USERNAME, PrivateBroker, free_port
from tests.conftest import tls_broker
from tests.fleet_server.api import fleet_data
from tests.servers import server_broker

NOW = fleet_data.T0 + timedelta(minutes=10)
"""What the console takes for now: the seeded fleet's times are fixed, so what it shows is too."""


@dataclass
class SeededFleet:
    """The fleet server at ``url`` over the seeded store; `stop` and `start` it again
    (same port, same store) to cut the console off and give it back."""

    db_url: str
    port: int
    token: str
    start_server: Callable[[], Any]
    server: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.server = self.start_server()

    def stop(self) -> None:
        self.server.stop()

    def add_node(self, node_id: str, **values: Any) -> None:
        """Registers another node straight in the store."""
        engine = store.connect(self.db_url)
        with engine.begin() as conn:
            store.update_node(conn, node_id, **values)
        engine.dispose()


def seed_cau_giay(conn) -> None:
    """A third region beside `fleet_data.seed`'s, so the screens have more to show.

    - cg-01 (commune): cg-01-c1, cg-01-c2 online, version 0.2.0; 20 taps today, 19 satisfied
    - cg-02 (commune): cg-02-c1 online, cg-02-c2 offline (alert 10); 10 taps, 8 satisfied
    - cg-03 (agency): cg-03-c1 never heard from; no taps
    """
    from fleet_server.schema import alerts, events, regions, sites

    t0 = fleet_data.T0
    conn.execute(regions.insert(), [{"id": "cg", "name": "Cầu Giấy"}])
    conn.execute(sites.insert(), [
        {"id": "cg-01", "name": "Phường Dịch Vọng", "kind": "commune", "region_id": "cg",
         "address": None},
        {"id": "cg-02", "name": "Phường Nghĩa Đô", "kind": "commune", "region_id": "cg",
         "address": None},
        {"id": "cg-03", "name": "Bưu điện Cầu Giấy", "kind": "agency", "region_id": "cg",
         "address": None},
    ])
    for node, site, counter, state, version in [
        ("cg-01-c1", "cg-01", "1", "online", "0.2.0"),
        ("cg-01-c2", "cg-01", "2", "online", "0.2.0"),
        ("cg-02-c1", "cg-02", "1", "online", "0.1.0"),
        ("cg-02-c2", "cg-02", "2", "offline", "0.1.0"),
        ("cg-03-c1", "cg-03", None, "unknown", None),
    ]:
        store.update_node(conn, node, site_id=site, counter=counter, state=state, state_at=t0,
                          last_seen=t0 - timedelta(minutes=3) if state != "unknown" else None,
                          agent_version=version)
    conn.execute(alerts.insert(), [
        {"id": 10, "kind": "node-offline", "subject": "cg-02-c2", "severity": "critical",
         "opened_at": t0 - timedelta(minutes=1), "closed_at": None, "detail": "silent 3 min",
         "node_id": "cg-02-c2", "site_id": "cg-02"},
    ])
    taps = [("cg-01-c1", 5)] * 12 + [("cg-01-c2", 4)] * 7 + [("cg-01-c2", 1)] + \
        [("cg-02-c1", 5)] * 8 + [("cg-02-c1", 2)] * 2
    conn.execute(events.insert(), [
        {"node_id": node, "event_id": f"cg{i}", "seq": i, "kind": "rating-tap", "at": t0,
         "received_at": t0, "rating": rating, "scale": 5, "suspect": False,
         "detail": {"kind": "rating-tap", "pad": "p", "rating": rating, "scale": 5}}
        for i, (node, rating) in enumerate(taps)
    ])


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[PrivateBroker]:
    """A broker of the test's own (mutual TLS, a PKI made for it; about 0.2 s), in place
    of the session's: there, nodes of earlier tests left retained statuses that the
    server would store as nodes of the seeded fleet."""
    with tls_broker(tmp_path) as running:
        running.tls_for(SERVER_USERNAME)
        yield running


@pytest.fixture
def seeded_fleet(broker, tmp_path: Path):
    """The server over the seeded fleet (SQLite: `fleet_data.seed` and `seed_cau_giay`),
    with an operator token named "console", and the test broker's PKI as its own.

    The test holds the fleet duties' lock, so the presence sweep and the alert
    rules never run: the seeded times are years old, and a sweep would take
    the online nodes offline under the test's feet.
    """
    db_url = f"sqlite:///{tmp_path / 'fleet.sqlite'}"
    engine = store.connect(db_url)
    with engine.begin() as conn:
        fleet_data.seed(conn)
        seed_cau_giay(conn)
        token = tokens.create(conn, "console")
    duty = DutyLock.for_engine(engine)
    assert duty.acquire()
    engine.dispose()
    port = free_port()
    started = []

    def start_server():
        from fleet_server.service import FleetServer
        from fleet_server.settings import EnrollmentSettings, ServerSettings

        server = FleetServer(ServerSettings(
            db_url=db_url, http_port=port,
            broker=server_broker(broker, f"console-{tmp_path.name}-{len(started)}"),
            # The broker's PKI, for revoking; no enrollment endpoint (port 0).
            enrollment=EnrollmentSettings(pki_dir=broker.fleet.path, port=0),
        ))
        started.append(server)
        server.start()
        assert server.link.connected.wait(10), "server did not connect to the test broker"
        return server

    fleet = SeededFleet(db_url, port, token, start_server)
    fleet.start()
    yield fleet
    for server in started:
        server.stop()
    duty.release()


@pytest.fixture
def console(seeded_fleet: SeededFleet):
    """Makes the console for the seeded fleet (clock fixed at NOW)."""
    from rpfleet.console.app import FleetConsole
    from rpfleet.console.client import FleetApi

    def make(refresh_s: float = 30.0, token: str | None = None) -> FleetConsole:
        api = FleetApi(seeded_fleet.url, token or seeded_fleet.token, timeout=2.0)
        return FleetConsole(api, refresh_s=refresh_s, clock=lambda: NOW)

    return make


async def loaded(pilot, screen_type: type | None = None, times: int = 1):
    """Waits (pausing the pilot) until the screen on top has shown ``times`` loads;
    returns that screen."""
    for _ in range(400):
        screen = pilot.app.screen
        if (screen_type is None or isinstance(screen, screen_type)) and \
                getattr(screen, "loaded", 0) >= times:
            return screen
        await pilot.pause(0.05)
    raise AssertionError(f"{screen_type} never showed a load; on top: {pilot.app.screen!r}")


async def until(pilot, check, what: str, tries: int = 400):
    """Pauses the pilot until ``check()`` is truthy (about 20 s at most); returns its value."""
    for _ in range(tries):
        value = check()
        if value:
            return value
        await pilot.pause(0.05)
    raise AssertionError(f"never: {what}")


ROLLOUT_SITES = ["cg-01", "cg-02", "hk-01", "hk-02"]
BAD_NODE = "hk-02-c1"
"""Rolls back in the seeded rollout's first wave."""


def seed_rollout(db_url: str, tmp_path: Path) -> int:
    """A rollout of 1.1.0 (a real signed release) in two waves (50 %, 100 %) over the
    seven nodes of four sites, through the real rollout code and ingest: its first
    wave is cg-02-c2 (offline: absent), cg-02-c1 and cg-01-c2 (done: soaking) and
    hk-02-c1 (rolled back: failed), so it halted, one failure past the 5 % limit.
    Returns its id."""
    from fleet_server.rollouts import progress
    from fleet_server.rollouts.gates import Policy
    from fleet_server.rollouts.publish import publish_due
    from fleet_server.rollouts.releases import add_release
    from rpfleet.protocol import Channel
    from rpfleet.protocol.messages import UpdateProgress
    from rpfleet.release.keys import generate_key_pair, load_private_key, load_public_key
    from tests.fleet_server.rollouts.conftest import NEW, Fleet, make_artifact

    t0 = fleet_data.T0
    _, private, public = generate_key_pair(tmp_path / "release-keys")
    fleet = Fleet(db_url, tmp_path)
    try:
        add_release(fleet.engine, make_artifact(tmp_path, NEW, load_private_key(private)),
                    [load_public_key(public)], tmp_path / "releases", by="ops", now=t0)
        for node in ("cg-01-c1", "cg-01-c2", "cg-02-c1", "hk-01-c1", "hk-01-c2", "hk-02-c1"):
            fleet.join(node, t0)
        rollout_id = progress.start(fleet.engine, NEW, [0.5, 1.0], Policy(),
                                    sites=ROLLOUT_SITES, by="ops", now=t0 + timedelta(minutes=1))
        at = t0 + timedelta(minutes=2)
        # The server publishes the first wave; each online node sent it answers as an
        # agent does (cg-02-c2 is offline and says nothing).
        for node in publish_due(fleet.engine, fleet.publish, "https://fleet.example:8443", at):
            if node not in fleet.versions:
                continue
            if node == BAD_NODE:
                fleet.say(node, Channel.UPDATE_PROGRESS, UpdateProgress(
                    node=node, version=NEW, state="rolled-back",
                    reason="rating pad missing after the switch", at=at), at)
            else:
                fleet.versions[node] = NEW
                fleet.say(node, Channel.UPDATE_PROGRESS,
                          UpdateProgress(node=node, version=NEW, state="done", at=at), at)
                fleet.health(node, at)
        progress.advance(fleet.engine, t0 + timedelta(minutes=3))
    finally:
        fleet.engine.dispose()
    return rollout_id


@pytest.fixture
def rollout_id(seeded_fleet: SeededFleet, tmp_path: Path) -> int:
    """The seeded fleet with `seed_rollout`'s halted rollout."""
    return seed_rollout(seeded_fleet.db_url, tmp_path)
