"""A rollout's life: `start`, the periodic `advance`, and the operator's `pause`,
`resume` and `abort`. Everything is in the store, so a restarted server (or
another worker) carries on where the last step left off.

States: ``running`` -> ``completed`` (every wave proven), or ``halted`` (by
itself: see fleet_server.rollouts.gates), ``paused`` (by an operator), both of
which `resume` takes back to ``running``; ``aborted`` from any of them.

`advance` is idempotent and safe with several workers running it at once: each
step is conditional (fleet_server.rollouts.store), so a second worker's same
step is a no-op; normally only the worker holding the rollout duty runs it
(fleet_server.rollouts.publish.step).

Abort, decided: every node the rollout sent the version to is sent back the
version it ran before, marked ``rollback=true`` (the node refuses a downgrade
otherwise), when that version is a release the server holds; if it is not, or
the node was never sent the new version, its desired update is cleared (an
empty retained ``down/update``), so a node that has not installed it yet never
will, and one that has stays on it until an operator adds the old release and
rolls it out. Clearing alone would leave every node already updated on a
version the operator just judged bad; rolling back without a stored release
would send a node a version it cannot download.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from fleet_server.rollouts import store
from fleet_server.rollouts.gates import OpeningHours, Policy, WaveDecision, decide
from fleet_server.rollouts.plan import PlanError, plan_waves, wave_of
from fleet_server.store import as_utc
from rpfleet.protocol.messages import SCHEMA_MAJOR, SCHEMA_MINOR

log = logging.getLogger(__name__)

ROLLOUT_LOCK = 0x7270_726F_6C6C  # "rproll": PostgreSQL's transaction lock for rollout steps


class RolloutError(ValueError):
    """A rollout request that cannot be done; ``field`` names the option at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


def _serialize(conn: sa.Connection) -> None:
    # Steps of one rollout read then write; on PostgreSQL they queue on one lock
    # (SQLite serializes writers itself).
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ROLLOUT_LOCK})


def start(engine: sa.Engine, version: str, shares: list[float], policy: Policy, *,
          sites: list[str] | None, by: str, now: datetime) -> int:
    """Plan and store a rollout of ``version``, and send its first wave; its id.

    Raises RolloutError when the release is unknown or needs a newer wire contract
    than this server speaks, a site is unknown, another rollout is active, or no
    node is chosen.
    """
    from fleet_server.schema import sites as sites_table

    with engine.begin() as conn:
        _serialize(conn)
        release = store.get_release(conn, version)
        if release is None:
            raise RolloutError(f"version: no release {version!r}; add it first "
                               "(rpfleet server release add FILE)", "version")
        needs = release.manifest.get("min_config_schema", "1.0")
        if tuple(map(int, needs.split("."))) > (SCHEMA_MAJOR, SCHEMA_MINOR):
            raise RolloutError(f"version: {version} needs wire contract {needs}; this server "
                               f"speaks {SCHEMA_MAJOR}.{SCHEMA_MINOR}: upgrade the server first",
                               "version")
        active = store.active_rollout(conn)
        if active is not None:
            raise RolloutError(f"rollout {active.id} of {active.version} is {active.state}; "
                               "abort it first (or resume it)", "version")
        if sites is not None:
            known = set(conn.execute(sa.select(sites_table.c.id)
                                     .where(sites_table.c.id.in_(sites))).scalars())
            missing = [s for s in sites if s not in known]
            if missing:
                raise RolloutError(f"sites: no site {', '.join(missing)} is registered", "sites")
        versions = store.eligible_nodes(conn, sites)
        if not versions:
            raise RolloutError("no node to update: none is registered"
                               + (" at these sites" if sites else ""), "sites")
        plan = plan_waves(versions, shares)
        rollout_id = store.insert_rollout(
            conn, version=version, state="running", waves=shares, sites=sites,
            policy=policy.to_json(), thresholds=plan.thresholds, wave=0, wave_opened_at=now,
            created_at=now, created_by=by, updated_at=now)
        store.add_targets(conn, rollout_id, plan.waves, versions, now)
        sent = store.send_wave(conn, store.get_rollout(conn, rollout_id), 0, now)
    log.info("rollout %d of %s started by %s: %d node(s) in %d wave(s), %d sent now",
             rollout_id, version, by, len(plan.waves), len(shares), len(sent))
    return rollout_id


@dataclass
class Step:
    """What one `advance` did to one rollout."""

    rollout_id: int
    joined: list[str]
    sent: list[str]
    decision: WaveDecision | None
    new_state: str | None = None
    opened_wave: int | None = None


def advance(engine: sa.Engine, now: datetime, *, hours: OpeningHours = OpeningHours()) -> list[Step]:
    """One step of every rollout that is not finished, and of the newest completed one
    (nodes that appear after it completed get its version)."""
    steps = []
    with engine.connect() as conn:
        wanted = [r.id for r in (store.active_rollout(conn), store.newest_completed(conn))
                  if r is not None]
    for rollout_id in wanted:
        with engine.begin() as conn:
            _serialize(conn)
            steps.append(_advance_one(conn, rollout_id, now, hours))
    return steps


def _advance_one(conn: sa.Connection, rollout_id: int, now: datetime, hours: OpeningHours) -> Step:
    rollout = store.get_rollout(conn, rollout_id)
    step = Step(rollout.id, [], [], None)
    if rollout.state not in ("running", "paused", "halted", "completed"):
        return step
    # Nodes that appeared since the start (enrolled, or first heard of) join by their bucket.
    versions = store.eligible_nodes(conn, rollout.sites)
    known = store.target_ids(conn, rollout.id)
    late = {node: wave_of(node, rollout.thresholds) for node in versions if node not in known}
    if late:
        store.add_targets(conn, rollout.id, late, versions, now)
        step.joined = sorted(late)
    if rollout.state in ("running", "completed"):
        # Straight to the version they should have: sent now if their wave is open.
        last = len(rollout.waves) - 1 if rollout.state == "completed" else rollout.wave
        step.sent = store.send_wave(conn, rollout, last, now, hours)
    if rollout.state != "running":
        return step
    policy = Policy.from_json(rollout.policy)
    decision = decide(store.facts(conn, rollout, now), rollout.version, rollout.wave, policy, now,
                      hours=hours)
    step.decision = decision
    store.save_gates(conn, rollout.id, decision.gates(), now)
    if decision.action == "halt":
        if store.move_state(conn, rollout.id, ("running",), "halted", now, reason=decision.reason):
            step.new_state = "halted"
            log.warning("rollout %d of %s halted: %s", rollout.id, rollout.version, decision.reason)
    elif decision.action == "proceed":
        if rollout.wave == len(rollout.waves) - 1:
            if store.move_state(conn, rollout.id, ("running",), "completed", now, finished_at=now,
                                reason=None):
                step.new_state = "completed"
                log.info("rollout %d of %s completed", rollout.id, rollout.version)
        elif store.move_wave(conn, rollout.id, rollout.wave, now):
            step.opened_wave = rollout.wave + 1
            step.sent += store.send_wave(conn, store.get_rollout(conn, rollout.id),
                                         rollout.wave + 1, now, hours)
            log.info("rollout %d of %s: wave %d opened", rollout.id, rollout.version,
                     rollout.wave + 2)
    return step


def _get(conn: sa.Connection, rollout_id: int) -> Any:
    rollout = store.get_rollout(conn, rollout_id)
    if rollout is None:
        raise RolloutError(f"no rollout {rollout_id}", "id")
    return rollout


def pause(engine: sa.Engine, rollout_id: int, *, by: str, now: datetime) -> None:
    """Stop opening waves (nodes already sent the version keep it)."""
    with engine.begin() as conn:
        rollout = _get(conn, rollout_id)
        if not store.move_state(conn, rollout_id, ("running",), "paused", now,
                                reason=f"paused by {by}"):
            raise RolloutError(f"rollout {rollout_id} is {rollout.state}, not running")


def resume(engine: sa.Engine, rollout_id: int, *, by: str, now: datetime) -> list[str]:
    """Run again after a pause or a halt. After a halt the nodes that failed so far are
    excused (the operator looked at them), so they no longer count against the limit;
    returns them."""
    from fleet_server.rollouts.gates import BAD, judge_node

    with engine.begin() as conn:
        _serialize(conn)
        rollout = _get(conn, rollout_id)
        if rollout.state not in ("paused", "halted"):
            raise RolloutError(f"rollout {rollout_id} is {rollout.state}, not paused or halted")
        policy = Policy.from_json(rollout.policy)
        excused: list[str] = []
        if rollout.state == "halted":
            excused = [f.node_id for f in store.facts(conn, rollout, now)
                       if judge_node(f, rollout.version, policy, now).status in BAD]
            policy = Policy.from_json({**rollout.policy,
                                       "excused": sorted(policy.excused | set(excused))})
        store.move_state(conn, rollout_id, (rollout.state,), "running", now,
                         policy=policy.to_json(), reason=None)
    log.info("rollout %d resumed by %s%s", rollout_id, by,
             f", excusing {', '.join(excused)}" if excused else "")
    return excused


def abort(engine: sa.Engine, rollout_id: int, *, by: str, now: datetime) -> tuple[list[str], list[str]]:
    """Stop for good and undo (see the module's docstring). Returns (nodes sent back their
    previous version, nodes whose desired update was cleared)."""
    from fleet_server.schema import node_updates, rollout_targets

    with engine.begin() as conn:
        _serialize(conn)
        rollout = _get(conn, rollout_id)
        if not store.move_state(conn, rollout_id, store.ACTIVE, "aborted", now, finished_at=now,
                                reason=f"aborted by {by}"):
            raise RolloutError(f"rollout {rollout_id} is {rollout.state}; only a running, paused "
                               "or halted rollout can be aborted")
        # Only nodes whose desired update is still this rollout's.
        ours = set(conn.execute(sa.select(node_updates.c.node_id)
                                .where(node_updates.c.rollout_id == rollout_id)).scalars())
        back: dict[str, list[str]] = {}
        cleared: list[str] = []
        rows = conn.execute(sa.select(rollout_targets.c.node_id, rollout_targets.c.from_version)
                            .where(rollout_targets.c.rollout_id == rollout_id,
                                   rollout_targets.c.sent_at.is_not(None))).all()
        held: dict[str, bool] = {}
        for node, previous in rows:
            if node not in ours:
                continue
            if previous and previous != rollout.version and held.setdefault(
                    previous, store.get_release(conn, previous) is not None):
                back.setdefault(previous, []).append(node)
            else:
                cleared.append(node)
        for previous, node_ids in back.items():
            store.set_desired(conn, node_ids, previous, rollback=True, rollout_id=rollout_id, now=now)
        store.set_desired(conn, cleared, None, rollback=False, rollout_id=rollout_id, now=now)
    rolled_back = sorted(n for ids in back.values() for n in ids)
    log.warning("rollout %d of %s aborted by %s: %d node(s) sent back, %d cleared", rollout_id,
                rollout.version, by, len(rolled_back), len(cleared))
    return rolled_back, sorted(cleared)


def status(conn: sa.Connection, rollout_id: int) -> dict[str, Any]:
    """The rollout as the CLI and the API show it: its waves with their sizes and where
    their nodes stand, the last gate evaluation, and why it halted."""
    from fleet_server.rollouts.gates import judge_node

    rollout = _get(conn, rollout_id)
    sizes = store.wave_sizes(conn, rollout_id)
    policy = Policy.from_json(rollout.policy)
    now = as_utc(rollout.updated_at)
    counts: dict[int, dict[str, int]] = {}
    for f in store.facts(conn, rollout, now):
        state = judge_node(f, rollout.version, policy, now).status
        counts.setdefault(f.wave, {}).setdefault(state, 0)
        counts[f.wave][state] += 1
    waves = []
    for index, share in enumerate(rollout.waves):
        state = ("done" if index < rollout.wave or rollout.state == "completed"
                 else "open" if index == rollout.wave else "waiting")
        waves.append({"wave": index + 1, "share": share, "nodes": sizes.get(index, 0),
                      "state": state, "counts": counts.get(index, {})})
    return {
        "id": rollout.id, "version": rollout.version, "state": rollout.state,
        "wave": rollout.wave + 1, "waves": waves, "sites": rollout.sites,
        "policy": rollout.policy, "created_at": as_utc(rollout.created_at),
        "created_by": rollout.created_by, "wave_opened_at": as_utc(rollout.wave_opened_at),
        "updated_at": as_utc(rollout.updated_at), "finished_at": as_utc(rollout.finished_at),
        "reason": rollout.reason, "gates": rollout.gates,
    }


__all__ = ["PlanError", "RolloutError", "start", "advance", "pause", "resume", "abort", "status"]
