"""Fleet-wide duties with several workers on one database (SQLite and PostgreSQL):
one worker holds the duty, another takes over when it stops or dies, and
alerts and presence transitions happen once."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleet_server import presence_store, store
from fleet_server.duty import Duties, DutyLock, PeriodicDuty
from fleet_server.presence_store import StatusSeen
from fleet_server.schema import alerts, nodes
from fleet_server.settings import AlertSettings, PresenceSettings
from tests.conftest import eventually
from tests.servers import start_server  # noqa: F401 - fixture

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


@pytest.fixture
def engines(db_url):
    """Two engines on one database, as two worker processes would have."""
    made = [store.connect(db_url), store.connect(db_url)]
    yield made
    for engine in made:
        engine.dispose()


def test_one_worker_holds_the_duty_until_it_lets_go(engines):
    first, second = (DutyLock.for_engine(e) for e in engines)
    try:
        assert first.acquire() and first.acquire()  # holding it again is fine
        assert not second.acquire()
        first.release()
        assert second.acquire()
        assert not first.acquire()
    finally:
        first.release()
        second.release()


def test_a_worker_killed_while_holding_the_duty_lets_go(engines, db_url):
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from fleet_server.duty import DutyLock
            from fleet_server.store import engine_for
            assert DutyLock.for_engine(engine_for({db_url!r})).acquire()
            print("holding", flush=True)
            time.sleep(120)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        survivor = DutyLock.for_engine(engines[0])
        assert not survivor.acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
        eventually(survivor.acquire, timeout=30)
        survivor.release()
    finally:
        holder.kill()
        holder.wait(10)


class Clocks:
    def __init__(self) -> None:
        self.wall = NOW
        self.mono = 1000.0

    def advance(self, seconds: float) -> None:
        self.wall += timedelta(seconds=seconds)
        self.mono += seconds


def duties(engine, clocks: Clocks, link: dict, periodic=()) -> Duties:
    return Duties(
        engine, PresenceSettings(timeout=45), AlertSettings(every=15, offline_after=0),
        link_up=lambda: link["up"], clock=lambda: clocks.wall, monotonic=lambda: clocks.mono,
        periodic=periodic,
    )


def state_of(engine, node: str) -> str:
    with engine.connect() as conn:
        return conn.execute(sa.select(nodes.c.state).where(nodes.c.id == node)).scalar_one()


def test_the_sweep_waits_until_the_server_has_heard_the_fleet_for_a_timeout(engines):
    clocks, link = Clocks(), {"up": True}
    worker = duties(engines[0], clocks, link)
    with engines[0].begin() as conn:
        presence_store.record_status(conn, StatusSeen("a-node", "online", NOW - timedelta(minutes=5)))
    try:
        worker.round()  # link just came up: silence means nothing yet
        clocks.advance(44)
        worker.round()
        assert state_of(engines[0], "a-node") == "online"
        clocks.advance(1)
        worker.round()
        assert state_of(engines[0], "a-node") == "offline"
        assert worker.stats.swept_offline == 1
    finally:
        worker.stop()


def test_a_worker_that_loses_the_broker_hands_the_duty_over(engines):
    clocks = Clocks()
    links = [{"up": True}, {"up": True}]
    first, second = (duties(e, clocks, link) for e, link in zip(engines, links))
    try:
        first.round()
        second.round()
        assert (first.holding, second.holding) == (True, False)
        links[0]["up"] = False
        first.round()
        second.round()
        assert (first.holding, second.holding) == (False, True)
        assert (first.stats.rounds, second.stats.rounds) == (1, 1)
    finally:
        first.stop()
        second.stop()


def test_periodic_duties_run_on_their_interval_at_the_holder_only(engines):
    clocks = Clocks()
    links = [{"up": True}, {"up": True}]
    runs: list[tuple[str, datetime]] = []

    def failing(now):
        raise RuntimeError("store away")

    def periodic(worker: str):
        return (PeriodicDuty("broken", 10, failing),
                PeriodicDuty("config", 60, lambda now: runs.append((worker, now))))

    first, second = (duties(e, clocks, link, periodic(name))
                     for e, link, name in zip(engines, links, ("first", "second")))
    try:
        for _ in range(4):  # 0, 20, 40 and 60 s: due at the first round and after 60 s
            first.round()
            second.round()
            clocks.advance(20)
        assert runs == [("first", NOW), ("first", NOW + timedelta(seconds=60))]
        assert first.stats.failures == 4  # the broken duty failed each time it was due, alone

        links[0]["up"] = False  # the second worker takes over and catches up at once
        first.round()
        second.round()
        assert runs[-1] == ("second", NOW + timedelta(seconds=80))
    finally:
        first.stop()
        second.stop()


# ---- two whole servers ----------------------------------------------------------


def open_alerts(engine) -> list[tuple[str, str]]:
    """(kind, subject) of every open alert, repeats included.

    Other tests' nodes may turn up too: the broker keeps their retained statuses.
    """
    with engine.connect() as conn:
        return sorted(
            (r.kind, r.subject)
            for r in conn.execute(sa.select(alerts).where(alerts.c.closed_at.is_(None)))
        )


def opened_once(engine) -> bool:
    found = open_alerts(engine)
    return ("node-offline", "gone-node") in found and len(found) == len(set(found))


def test_two_servers_on_one_database_sweep_and_alert_once(start_server, db_url):
    fast = dict(
        presence=PresenceSettings(timeout=1, sweep_every=0.1),
        alerts=AlertSettings(every=0.2, offline_after=0),
        broker_options={"shared_group": "workers"},
    )
    a = start_server(db_url, "worker-a", **fast)
    b = start_server(db_url, "worker-b", **fast)
    with a.engine.begin() as conn:  # a node last heard long ago
        presence_store.record_status(conn, StatusSeen("gone-node", "online", store.utc_now() - timedelta(hours=1)))

    eventually(lambda: ("node-offline", "gone-node") in open_alerts(a.engine))
    eventually(lambda: a.duties.stats.alert_rounds + b.duties.stats.alert_rounds >= 10)
    holder, other = (a, b) if a.duties.holding else (b, a)
    assert holder.duties.holding and not other.duties.holding
    assert other.duties.stats.rounds == 0
    assert holder.duties.stats.swept_offline >= 1
    assert opened_once(a.engine)

    holder.stop()  # the other takes over, and opens nothing twice
    rounds_before = other.duties.stats.alert_rounds
    eventually(lambda: other.duties.stats.alert_rounds >= rounds_before + 5)
    assert other.duties.holding
    assert opened_once(other.engine)
