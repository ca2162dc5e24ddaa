"""The gates on what the store holds, with taps and health sent through the real
ingest: a version that keeps every node healthy but stops its taps halts the
rollout once enough open hours have passed; one that loses a rating pad halts it
as a regression."""

from __future__ import annotations

from datetime import timedelta

from fleet_server.rollouts import progress, store
from fleet_server.rollouts.gates import Policy
from fleet_server.rollouts.plan import FailureLimit, plan_waves
from tests.fleet_server.rollouts.conftest import NEW, START, later

NODES = [f"bd-{i:02d}-q1" for i in range(20)]


def test_taps_that_stop_after_the_update_halt_the_rollout(fleet, release):
    for node in NODES:
        fleet.join(node, START - timedelta(days=1))
        # 88 taps in the week before: 2 per open hour (44 open hours a week).
        fleet.taps(node, [START - timedelta(days=1, minutes=-i) for i in range(88)])
    rollout_id = progress.start(fleet.engine, NEW, [0.25, 1.0], Policy(soak_s=1800), sites=None,
                                by="t", now=START)
    first = sorted(n for n, w in plan_waves(NODES, [0.25, 1.0]).waves.items() if w == 0)
    with fleet.engine.connect() as conn:
        baselines = {t.node_id: t.taps_before for t in store.sent_targets(conn, rollout_id)}
    assert baselines == dict.fromkeys(first, 2.0)
    fleet.step(later(1))  # the first wave switches at 09:01 in Hanoi, and its pads go quiet

    progress.advance(fleet.engine, later(40))  # 6.5 expected so far: too few to judge
    with fleet.engine.connect() as conn:
        waiting = progress.status(conn, rollout_id)
    assert waiting["state"] == "running" and waiting["gates"]["taps"]["state"] == "wait"

    progress.advance(fleet.engine, later(121))  # two open hours: 20 expected, 0 seen
    with fleet.engine.connect() as conn:
        halted = store.get_rollout(conn, rollout_id)
    assert halted.state == "halted" and halted.wave == 0
    assert "tap flow fell: 0 taps where 20 were expected" in halted.reason


def test_taps_that_keep_flowing_let_the_wave_pass(fleet, release):
    for node in NODES:
        fleet.join(node, START - timedelta(days=1))
        fleet.taps(node, [START - timedelta(days=1, minutes=-i) for i in range(88)])
    rollout_id = progress.start(fleet.engine, NEW, [0.25, 1.0], Policy(soak_s=1800), sites=None,
                                by="t", now=START)
    fleet.step(later(1))
    for node in NODES:  # two an hour, as before
        fleet.taps(node, [later(5 + 30 * i) for i in range(4)])
    progress.advance(fleet.engine, later(121))
    with fleet.engine.connect() as conn:
        rollout = store.get_rollout(conn, rollout_id)
    assert (rollout.state, rollout.wave) == ("running", 1)
    assert rollout.gates["taps"]["state"] == "pass"


def test_a_lost_rating_pad_is_a_regression_that_halts(fleet, release):
    for node in NODES[:10]:
        fleet.join(node, START)
    first = sorted(n for n, w in plan_waves(NODES[:10], [0.2, 1.0]).waves.items() if w == 0)
    fleet.loses_pad = {first[0]}
    rollout_id = progress.start(fleet.engine, NEW, [0.2, 1.0],
                                Policy(soak_s=600, failures=FailureLimit(count=0)), sites=None,
                                by="t", now=START)
    fleet.step(later(1))
    progress.advance(fleet.engine, later(20))
    with fleet.engine.connect() as conn:
        halted = store.get_rollout(conn, rollout_id)
    assert halted.state == "halted"
    assert f"{first[0]} regressed: peripherals ok fell from 100% to 0%" in halted.reason
