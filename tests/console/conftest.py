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
