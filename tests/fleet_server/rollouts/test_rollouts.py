"""Rollouts over a store (SQLite and PostgreSQL) with simulated nodes speaking
through the real ingest: halting at the first wave, completing wave by wave,
surviving a restart, late nodes going straight to the target, abort."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from fleet_server.rollouts import progress, store
from fleet_server.rollouts.gates import Policy
from fleet_server.rollouts.plan import FailureLimit, plan_waves
from fleet_server.rollouts.publish import NoUpdate
from fleet_server.rollouts.releases import ReleaseError, add_release
from rpfleet.protocol.messages import SCHEMA_VERSION
from tests.fleet_server.rollouts.conftest import NEW, OLD, START, later, make_artifact

NODES = [f"hk-{i:02d}-c1" for i in range(40)]
WAVES = [0.1, 0.5, 1.0]
POLICY = Policy(soak_s=1800, failures=FailureLimit(share=0.05))


def state(fleet, rollout_id):
    with fleet.engine.connect() as conn:
        return store.get_rollout(conn, rollout_id)


def test_a_fraction_of_bad_nodes_halts_the_rollout_at_the_first_wave(fleet, release):
    for node in NODES:
        fleet.join(node, START)
    plan = plan_waves(NODES, WAVES)
    first = sorted(n for n, w in plan.waves.items() if w == 0)
    fleet.bad = {first[0]} | set(NODES[::4])  # a quarter of the fleet, one canary among them
    rollout_id = progress.start(fleet.engine, NEW, WAVES, POLICY, sites=None, by="test", now=START)

    fleet.step(later(1))
    progress.advance(fleet.engine, later(40))

    halted = state(fleet, rollout_id)
    assert (halted.state, halted.wave) == ("halted", 0)
    assert first[0] in halted.reason and "rating pad missing" in halted.reason
    assert set(fleet.received) == set(first)  # no node beyond the first wave was sent it
    progress.advance(fleet.engine, later(80))  # halted stays halted, nothing more is sent
    fleet.step(later(81))
    assert set(fleet.received) == set(first) and state(fleet, rollout_id).state == "halted"


def test_a_clean_rollout_completes_wave_by_wave_and_survives_a_restart(fleet, release):
    for node in NODES:
        fleet.join(node, START)
    rollout_id = progress.start(fleet.engine, NEW, WAVES, POLICY, sites=None, by="test", now=START)
    sizes = [plan_waves(NODES, WAVES).size(w) for w in range(3)]
    seen_waves = []
    minute = 1
    while state(fleet, rollout_id).state == "running" and minute < 600:
        open_wave = state(fleet, rollout_id).wave
        fleet.step(later(minute))
        assert len(fleet.received) == sum(sizes[:open_wave + 1])  # the open waves, no more
        progress.advance(fleet.engine, later(minute + 1))
        progress.advance(fleet.engine, later(minute + 1))  # a second worker's same step: no-op
        seen_waves.append(state(fleet, rollout_id).wave)
        assert seen_waves[-1] - open_wave in (0, 1)
        if minute == 61:
            fleet.restart()  # everything is in the store
        minute += 20
    assert state(fleet, rollout_id).state == "completed"
    assert sorted(set(seen_waves)) == [0, 1, 2]
    assert seen_waves == sorted(seen_waves)  # in order, never back
    fleet.step(later(minute))
    assert all(fleet.received[n] == [NEW] for n in NODES)  # each sent it once
    assert all(fleet.retained[n].url.startswith("https://fleet.example:8443/releases/1.1.0/")
               for n in NODES)
    assert all(fleet.retained[n].sha256 == release.sha256 and fleet.retained[n].size == release.size
               for n in NODES)


def test_a_node_enrolled_mid_rollout_goes_straight_to_the_target(fleet, release):
    for node in NODES[:10]:
        fleet.join(node, START)
    rollout_id = progress.start(fleet.engine, NEW, [0.5, 1.0], POLICY, sites=None, by="test",
                                now=START)
    fleet.step(later(1))
    progress.advance(fleet.engine, later(40))  # wave 2 opens: all of the first 10
    assert state(fleet, rollout_id).wave == 1
    fleet.join("late-node", later(41), version="0.9.0")  # enrolled now, two versions behind
    progress.advance(fleet.engine, later(42))
    fleet.step(later(43))
    assert fleet.received["late-node"] == [NEW]
    assert fleet.retained["late-node"].rollback is False
    with fleet.engine.connect() as conn:
        assert "late-node" in store.target_ids(conn, rollout_id)


def test_pause_resume_and_abort_sends_back_or_clears(fleet, release, release_keys, tmp_path):
    private, public = release_keys
    add_release(fleet.engine, make_artifact(tmp_path, OLD, private), [public], tmp_path / "releases",
                by="test", now=START)
    for node in NODES[:10]:
        fleet.join(node, START)
    rollout_id = progress.start(fleet.engine, NEW, [0.3, 1.0], POLICY, sites=None, by="test",
                                now=START)
    progress.pause(fleet.engine, rollout_id, by="ops", now=later(1))
    with pytest.raises(progress.RolloutError, match="paused, not running"):
        progress.pause(fleet.engine, rollout_id, by="ops", now=later(1))
    fleet.step(later(2))
    progress.advance(fleet.engine, later(60))
    assert state(fleet, rollout_id).wave == 0  # paused: no wave opens
    progress.resume(fleet.engine, rollout_id, by="ops", now=later(61))
    updated = sorted(fleet.received)

    back, cleared = progress.abort(fleet.engine, rollout_id, by="ops", now=later(62))
    fleet.step(later(63))
    assert back == updated and cleared == []
    assert all(fleet.retained[n].version == OLD and fleet.retained[n].rollback for n in updated)
    assert state(fleet, rollout_id).state == "aborted"
    with pytest.raises(progress.RolloutError, match="aborted"):
        progress.resume(fleet.engine, rollout_id, by="ops", now=later(64))


def test_abort_clears_when_the_previous_version_is_not_a_release(fleet, release):
    for node in NODES[:5]:
        fleet.join(node, START)
    rollout_id = progress.start(fleet.engine, NEW, [1.0], POLICY, sites=None, by="t", now=START)
    back, cleared = progress.abort(fleet.engine, rollout_id, by="ops", now=later(1))
    fleet.step(later(2))
    assert back == [] and cleared == sorted(NODES[:5])
    assert all(isinstance(fleet.retained[n], NoUpdate) for n in NODES[:5])


def test_start_is_refused_clearly(fleet, release):
    with pytest.raises(progress.RolloutError, match="no node to update"):
        progress.start(fleet.engine, NEW, [1.0], POLICY, sites=None, by="t", now=START)
    fleet.join("a-node", START)
    with pytest.raises(progress.RolloutError, match="no release '9.9'"):
        progress.start(fleet.engine, "9.9", [1.0], POLICY, sites=None, by="t", now=START)
    with fleet.engine.begin() as conn:  # a release for a newer server than this one
        store.insert_release(conn, store.Release(**{**release.__dict__, "version": "3.0.0",
                                                    "manifest": {"min_config_schema": "1.99"}}))
    with pytest.raises(progress.RolloutError, match=f"needs wire contract 1.99; this server speaks {SCHEMA_VERSION}"):
        progress.start(fleet.engine, "3.0.0", [1.0], POLICY, sites=None, by="t", now=START)
    with pytest.raises(progress.RolloutError, match="sites: no site nowhere"):
        progress.start(fleet.engine, NEW, [1.0], POLICY, sites=["nowhere"], by="t", now=START)
    progress.start(fleet.engine, NEW, [1.0], POLICY, sites=None, by="t", now=START)
    with pytest.raises(progress.RolloutError, match="abort it first"):
        progress.start(fleet.engine, NEW, [1.0], POLICY, sites=None, by="t", now=START)


def test_release_add_refuses_a_tampered_or_wrongly_signed_artifact(fleet, release_keys, tmp_path):
    from rpfleet.release.keys import generate_key_pair, load_public_key

    private, public = release_keys
    artifact = make_artifact(tmp_path, "2.0.0", private)
    _, _, other_pub = generate_key_pair(tmp_path / "other")
    with pytest.raises(ReleaseError, match="unknown-key"):
        add_release(fleet.engine, artifact, [load_public_key(other_pub)], tmp_path / "r", by="t",
                    now=START)
    data = bytearray(artifact.read_bytes())
    data[-2000] ^= 0x01  # a flipped byte in the payload
    tampered = tmp_path / "tampered.rpa"
    tampered.write_bytes(bytes(data))
    with pytest.raises(ReleaseError, match="refused"):
        add_release(fleet.engine, tampered, [public], tmp_path / "r", by="t", now=START)
    added = add_release(fleet.engine, artifact, [public], tmp_path / "r", by="t", now=START)
    with pytest.raises(ReleaseError, match="already a release"):
        add_release(fleet.engine, artifact, [public], tmp_path / "r", by="t", now=START)
    with fleet.engine.connect() as conn:
        assert [r.version for r in store.list_releases(conn)] == ["2.0.0"]
        assert conn.execute(sa.text("SELECT count(*) FROM releases")).scalar() == 1
    assert added.size == artifact.stat().st_size
