"""Several server workers stepping the same rollout at once (as during a takeover of the
fleet duties) move it once and publish each node's update once."""

from __future__ import annotations

import threading

from fleet_server.rollouts import progress, store
from fleet_server.rollouts.gates import Policy
from fleet_server.rollouts.publish import step
from fleet_server.store import connect
from tests.fleet_server.rollouts.conftest import NEW, START, later

NODES = [f"hk-{i:02d}-c1" for i in range(12)]


def test_two_workers_publishing_at_once_send_each_update_once(fleet, release):
    """Which worker holds the fleet duties is fleet_server.duty's (tests/fleet_server/test_duty.py);
    a round run twice at once, as during a takeover, still publishes each node once."""
    for node in NODES:
        fleet.join(node, START)
    progress.start(fleet.engine, NEW, [0.5, 1.0], Policy(soak_s=0), sites=None, by="t", now=START)
    engines = [fleet.engine, connect(fleet.db_url)]
    published: list[str] = []
    lock = threading.Lock()

    def publish(node, channel, message, retain):
        with lock:
            published.append(node)

    threads = [threading.Thread(target=step, args=(e, publish, "https://f", later(1)))
               for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engines[1].dispose()
    assert sorted(published) == sorted(set(published)) and len(published) == 6
    assert step(fleet.engine, publish, "https://f", later(1)) == []  # nothing is due again


def test_two_workers_stepping_at_once_open_the_next_wave_once(fleet, release):
    for node in NODES:
        fleet.join(node, START)
    rollout_id = progress.start(fleet.engine, NEW, [0.25, 0.5, 1.0], Policy(soak_s=0), sites=None,
                                by="t", now=START)
    fleet.step(later(1))
    engines = [fleet.engine, connect(fleet.db_url)]
    steps: list = []
    errors: list = []

    def step(engine):
        try:
            steps.extend(progress.advance(engine, later(2)))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=step, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engines[1].dispose()
    assert errors == []
    assert [s.opened_wave for s in steps if s.opened_wave is not None] == [1]
    with fleet.engine.connect() as conn:
        assert store.get_rollout(conn, rollout_id).wave == 1
    assert len(fleet.step(later(3))) == 3  # the second wave's nodes, each once
