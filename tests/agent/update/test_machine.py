"""The pure state machine: a table of (state, observation) -> (state, actions), and
hypothesis for "a crash at any point, then restarts, ends on a good release"."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.update.journal import TERMINAL, Baseline, Journal, Target
from agent.update.machine import Act, Desired, Done, Failed, Reset, Started, Tick, next_state
from agent.update.proof import Proof
from agent.update.settings import StateTimeouts

T0 = datetime(2026, 11, 24, 19, 0, tzinfo=timezone.utc)
TIMEOUTS = StateTimeouts()
TARGET = Target(version="1.1.0", url="https://updates.invalid/a", sha256="a" * 64, size=10)
BASE = Baseline(connected=True, drivers_ok=("pad-1",), at=T0)
UID = "f" * 32


def journal(state: str, **changes) -> Journal:
    j = Journal(update_id=UID, target=TARGET, previous="1.0.0")
    return j.entering(state, T0, timedelta(seconds=getattr(TIMEOUTS, state.replace("-", "_"), 1)), **changes)


def good_proof(**changes) -> Proof:
    fields = dict(update_id=UID, version="1.1.0", started_at=T0, connected_at=T0, health_sent_at=T0,
                  drivers={"pad-1": "ok"}, test_event_written_at=T0, test_event_sent_at=T0)
    return Proof(**{**fields, **changes})


SOON = T0 + timedelta(seconds=1)
LATE = T0 + timedelta(days=30)

# (id, journal, observation, now, expected state, expected action kinds (report omitted))
ROWS = [
    ("idle+desired", Journal(), Desired(TARGET, UID, "1.0.0"), SOON, "downloading", ["download"]),
    ("idle+desired-same-as-current", Journal(), Desired(TARGET, UID, "1.1.0"), SOON, "idle", []),
    ("idle+tick", Journal(), Tick(), LATE, "idle", []),
    ("downloading+done", journal("downloading"), Done("download"), SOON, "verifying", ["verify"]),
    ("downloading+transient", journal("downloading"), Failed("download", "reset by peer", "transient"), SOON,
     "downloading", []),
    ("downloading+tick-retries", journal("downloading"), Tick(), SOON, "downloading", ["download"]),
    ("downloading+started-resumes", journal("downloading"), Started("1.0.0", "1.0.0"), SOON, "downloading",
     ["download"]),
    ("downloading+refused", journal("downloading"), Failed("download", "sha256", "refused"), SOON, "refused",
     ["cleanup"]),
    ("downloading+late", journal("downloading"), Tick(), LATE, "failed", ["cleanup"]),
    ("downloading+desired-other", journal("downloading"),
     Desired(TARGET.model_copy(update={"version": "1.2.0"}), UID, "1.0.0"), SOON, "downloading", []),
    ("verifying+done", journal("verifying"), Done("verify"), SOON, "ready", []),
    ("verifying+refused", journal("verifying"), Failed("verify", "bad-signature: x", "refused"), SOON,
     "refused", ["cleanup"]),
    ("verifying+wrong-done", journal("verifying"), Done("install"), SOON, "verifying", []),
    ("ready+tick-closed", journal("ready"), Tick(gate=None), SOON, "ready", []),
    ("ready+tick-open", journal("ready"), Tick(gate=BASE), SOON, "installing", ["install"]),
    ("ready+late", journal("ready"), Tick(), LATE, "failed", ["cleanup"]),
    ("installing+done", journal("installing"), Done("install"), SOON, "switching", []),
    ("installing+failed", journal("installing"), Failed("install", "pip install failed"), SOON, "failed",
     ["cleanup"]),
    ("installing+started-again", journal("installing"), Started("1.0.0", "1.0.0"), SOON, "installing",
     ["install"]),
    ("switching+gate", journal("switching"), Tick(gate=BASE), SOON, "switching", ["switch"]),
    ("switching+no-gate", journal("switching"), Tick(), SOON, "switching", []),
    ("switching+late-undecided", journal("switching"), Tick(), LATE, "failed", ["cleanup"]),
    ("switching-decided+started", journal("switching", baseline=BASE), Started("1.0.0", "1.1.0"), SOON,
     "switching", ["switch"]),
    ("switching-decided+done", journal("switching", baseline=BASE), Done("switch"), SOON, "proving",
     ["restart"]),
    ("switching-decided+failed", journal("switching", baseline=BASE), Failed("switch", "EROFS"), SOON,
     "rolling-back", ["switch-back"]),
    ("switching-decided+late", journal("switching", baseline=BASE), Tick(), LATE, "rolling-back",
     ["switch-back"]),
    ("proving+started-new", journal("proving", baseline=BASE), Started("1.1.0", "1.1.0"), SOON, "proving", []),
    ("proving+started-old", journal("proving", baseline=BASE), Started("1.0.0", "1.1.0"), SOON, "proving",
     ["restart"]),
    ("proving+guard", journal("proving", baseline=BASE), Started(None, "1.1.0"), SOON, "proving", []),
    ("proving+guard-crash-loop", journal("proving", baseline=BASE, starts=5), Started(None, "1.1.0"), SOON,
     "rolling-back", ["switch-back"]),
    ("proving+link-elsewhere", journal("proving", baseline=BASE), Started("1.0.0", "1.0.0"), SOON,
     "rolling-back", ["switch-back"]),
    ("proving+good-proof", journal("proving", baseline=BASE), Tick(proof=good_proof()), SOON, "done",
     ["settle"]),
    ("proving+partial-proof", journal("proving", baseline=BASE), Tick(proof=good_proof(connected_at=None)),
     SOON, "proving", []),
    ("proving+stale-proof", journal("proving", baseline=BASE), Tick(proof=good_proof(update_id="0" * 32)),
     SOON, "proving", []),
    ("proving+late", journal("proving", baseline=BASE), Tick(proof=good_proof(drivers={})), LATE,
     "rolling-back", ["switch-back"]),
    ("proving+late-but-proven", journal("proving", baseline=BASE), Tick(proof=good_proof()), LATE, "done",
     ["settle"]),
    ("proving+reset", journal("proving", baseline=BASE), Reset(), SOON, "rolling-back", ["switch-back"]),
    ("rolling-back+done-new", journal("rolling-back"), Done("switch-back", "1.1.0"), SOON, "rolling-back",
     ["restart"]),
    ("rolling-back+done-guard", journal("rolling-back"), Done("switch-back", None), SOON, "rolling-back",
     ["restart"]),
    ("rolling-back+done-old", journal("rolling-back"), Done("switch-back", "1.0.0"), SOON, "rolled-back", []),
    ("rolling-back+started-old", journal("rolling-back"), Started("1.0.0", "1.0.0"), SOON, "rolled-back", []),
    ("rolling-back+started-old-link-new", journal("rolling-back"), Started("1.0.0", "1.1.0"), SOON,
     "rolling-back", ["switch-back"]),
    ("rolling-back+late-retries", journal("rolling-back"), Tick(), LATE, "rolling-back", ["switch-back"]),
    ("rolling-back+reset-ignored", journal("rolling-back"), Reset(), SOON, "rolling-back", []),
    ("done+started-new-settles", journal("done"), Started("1.1.0", "1.1.0"), SOON, "done", ["settle"]),
    ("done+desired-again", journal("done"), Desired(TARGET, "1" * 32, "1.1.0"), SOON, "done", []),
    ("rolled-back+desired-again", journal("rolled-back"), Desired(TARGET, "1" * 32, "1.0.0"), SOON,
     "rolled-back", []),
    ("rolled-back+reset", journal("rolled-back"), Reset(), SOON, "idle", []),
    ("failed+desired-newer", journal("failed"),
     Desired(TARGET.model_copy(update={"version": "1.2.0"}), "1" * 32, "1.0.0"), SOON, "downloading",
     ["download"]),
    ("installing+reset", journal("installing"), Reset(), SOON, "idle", ["cleanup"]),
]


@pytest.mark.parametrize("j, o, now, state, kinds", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_transition_table(j, o, now, state, kinds):
    after, acts = next_state(j, o, now, TIMEOUTS)
    assert after.state == state
    assert [a.kind for a in acts if a.kind != "report"] == kinds
    moved = after.state != j.state
    assert (Act("report") in acts) == moved, "a report exactly when the state changes"
    if Act("report") in acts:
        assert acts[0] == Act("report"), "queued before any restart can end the process"
    if moved:
        assert after.history[-1].state == state and after.entered_at == now
        if state not in TERMINAL:
            assert after.deadline > now


@pytest.mark.parametrize("j, o, now, state, kinds", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_transitions_are_idempotent_for_replays(j, o, now, state, kinds):
    """Feeding the same Started/Tick again (a restart replaying it) changes nothing more."""
    after, _ = next_state(j, o, now, TIMEOUTS)
    if isinstance(o, (Started, Tick)) and after.state == j.state:
        again, _ = next_state(after, o, now, TIMEOUTS)
        assert again.state == after.state and again.deadline == after.deadline


def test_a_clock_that_jumped_back_restarts_the_deadline_instead_of_stretching_it():
    j = journal("installing")
    back = T0 - timedelta(days=365)  # a Pi without RTC after a power cut
    after, acts = next_state(j, Tick(), back, TIMEOUTS)
    assert after.entered_at == back and after.deadline == back + timedelta(seconds=TIMEOUTS.installing)
    assert [a.kind for a in acts] == ["install"]


def test_a_rollback_keeps_its_reason_and_evidence_up_to_rolled_back():
    j = journal("proving", baseline=BASE)
    j, _ = next_state(j, Tick(proof=good_proof(drivers={"pad-1": "gone"})), LATE, TIMEOUTS)
    assert j.state == "rolling-back" and j.evidence["drivers"] == "pad-1 was ok before, now: gone"
    j, _ = next_state(j, Started("1.0.0", "1.0.0"), LATE, TIMEOUTS)
    assert j.state == "rolled-back"
    assert "missing drivers" in j.reason and j.evidence["drivers"].startswith("pad-1")


# ---- any crash point resumes to a good version ---------------------------------------

@dataclass
class World:
    """The node's disk as the actions leave it, and which release the process runs."""
    current: str = "1.0.0"
    complete: set = field(default_factory=lambda: {"1.0.0"})
    running: str | None = "1.0.0"
    restart_asked: bool = False

    def do(self, act: Act, j: Journal, proof_ok: bool):
        if act.kind == "download":
            return Done("download", self.running)
        if act.kind == "verify":
            return Done("verify", self.running)
        if act.kind == "install":
            self.complete.add(j.version)
            return Done("install", self.running)
        if act.kind == "switch":
            assert j.version in self.complete
            self.current = j.version
            return Done("switch", self.running)
        if act.kind == "switch-back":
            self.current = j.previous
            return Done("switch-back", self.running)
        if act.kind == "restart":
            self.restart_asked = True
        return None


def run(world: World, j: Journal, first, now, budget: int, proof_ok: bool):
    """Feed observations until the budget of steps is spent (the crash) or nothing is left."""
    pending = [first]
    while pending and not world.restart_asked:
        o = pending.pop(0)
        if budget == 0:
            return j, 0
        budget -= 1
        j, acts = next_state(j, o, now, TIMEOUTS)
        for act in acts:
            if budget == 0:
                return j, 0
            budget -= 1
            out = world.do(act, j, proof_ok)
            if out is not None:
                pending.append(out)
            if world.restart_asked:
                break
        if not pending and j.state in ("ready", "switching", "proving") and not world.restart_asked:
            proof = good_proof(update_id=j.update_id) if proof_ok and world.running == j.version else None
            gate = BASE if j.state in ("ready", "switching") else None
            if j.state != "switching" or j.baseline is None:
                after, _ = next_state(j, Tick(gate=gate, proof=proof), now, TIMEOUTS)
                if after != j:
                    pending.append(Tick(gate=gate, proof=proof))
    return j, budget


@settings(max_examples=300, deadline=None)
@given(crashes=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=4),
       proof_ok=st.booleans())
def test_any_crash_point_resumes_to_a_good_version(crashes, proof_ok):
    world, j, now = World(), Journal(), T0
    j, _ = run(world, j, Desired(TARGET, UID, "1.0.0"), now, crashes[0], proof_ok)
    for n in range(40):
        # a crash or a restart: the process starts again, running what current names
        assert world.current in world.complete, "current must always name a complete release"
        world.running, world.restart_asked = world.current, False
        now += timedelta(seconds=61 if n > 4 else 1)
        budget = crashes[n + 1] if n + 1 < len(crashes) else 10_000
        j, _ = run(world, j, Started(None, world.current), now, budget, proof_ok)  # the guard
        j, left = run(world, j, Started(world.running, world.current), now, budget, proof_ok)  # the agent
        if left and not world.restart_asked:  # the retained down/update, at every connect
            j, _ = run(world, j, Desired(TARGET, f"{n:032x}", world.current), now, left, proof_ok)
        if j.state in TERMINAL - {"idle"} and not world.restart_asked:
            break
    assert j.state == ("done" if proof_ok else "rolled-back")
    assert world.current == ("1.1.0" if proof_ok else "1.0.0")
