"""The update state machine: ``next_state(journal, observation, now) -> (journal, actions)``.

Pure: no clock, no files. The caller (`agent.update.updater.Updater`) saves the new
journal before it takes any action, then feeds each action's outcome back in as an
observation. Every action is idempotent, and the actions of a state are derived from the
state alone on `Started` and `Tick`, so after a power cut or a kill -9 at any point the
next start takes the interrupted step again, or rolls back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, Union

from agent.update.journal import BEFORE_SWITCH, TERMINAL, Baseline, Journal, Target
from agent.update.proof import Proof, judge
from agent.update.settings import StateTimeouts

Work = Literal["download", "verify", "install", "switch", "switch-back"]


# ---- observations -----------------------------------------------------------

@dataclass(frozen=True)
class Desired:
    """``down/update`` asked for ``target``; ``current`` is the version the link names now."""
    target: Target
    update_id: str
    current: str | None


@dataclass(frozen=True)
class Started:
    """A process started. ``running`` is the agent's own version; None for the guard
    (which runs before the service, from the last proven release). ``current`` is the
    version the ``current`` link names."""
    running: str | None
    current: str | None


@dataclass(frozen=True)
class Tick:
    """Time passed. ``gate`` is None, or the baseline when an install/switch may happen
    now (maintenance window, node idle, broker connected)."""
    gate: Baseline | None = None
    proof: Proof | None = None


@dataclass(frozen=True)
class Done:
    """``step`` succeeded, in a process running version ``running`` (None: the guard)."""
    step: Work
    running: str | None = None


@dataclass(frozen=True)
class Failed:
    """``kind``: ``transient`` (try again until the deadline), ``refused`` (the artifact
    is not acceptable) or ``failed`` (this update cannot go on)."""
    step: Work
    reason: str
    kind: Literal["transient", "refused", "failed"] = "failed"
    evidence: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Reset:
    """The server cleared the update (a stuck or failed one)."""
    reason: str = "reset by the server"


Observation = Union[Desired, Started, Tick, Done, Failed, Reset]


# ---- actions ----------------------------------------------------------------

@dataclass(frozen=True)
class Act:
    """One step for the updater. ``kind``:

    - ``download``/``verify``/``install``: for ``version`` (the target);
    - ``switch``: clear the old proof, pin the guard on ``previous``, point ``current`` at ``version``;
    - ``restart``: end this agent process so systemd runs what ``current`` names (no-op in the
      guard, whose service start runs ``current`` next anyway);
    - ``switch-back``: point ``current`` at ``version`` (the previous release);
    - ``cleanup``: remove the unfinished download and release of ``version``;
    - ``settle``: pin the guard on ``version`` (proven) and prune older releases;
    - ``report``: queue an ``UpdateProgress`` for this journal's state.
    """
    kind: Literal["download", "verify", "install", "switch", "restart", "switch-back",
                  "cleanup", "settle", "report"]
    version: str | None = None


REPORT = Act("report")
RESTART = Act("restart")


def _timeout(timeouts: StateTimeouts, state: str) -> timedelta | None:
    if state in TERMINAL:
        return None
    return timedelta(seconds=getattr(timeouts, state.replace("-", "_")))


def _work(j: Journal, running: str | None, current: str | None) -> list[Act]:
    """The step that state ``j.state`` takes (again), as far as it can be derived."""
    v = j.version
    if j.state == "downloading":
        return [Act("download", v)]
    if j.state == "verifying":
        return [Act("verify", v)]
    if j.state == "installing":
        return [Act("install", v)]
    if j.state == "switching" and j.baseline is not None:
        return [Act("switch", v)]
    if j.state == "proving" and running is not None and running != v:
        return [RESTART]
    if j.state == "rolling-back":
        return [Act("switch-back", j.previous)]
    return []


def _back(j: Journal) -> list[Act]:
    return [Act("switch-back", j.previous)]


def next_state(j: Journal, o: Observation, now: datetime,
               timeouts: StateTimeouts = StateTimeouts(), max_starts: int = 5) -> tuple[Journal, list[Act]]:
    """The journal after observation ``o`` at ``now``, and the actions to take, in order.

    Never raises for an observation that does not fit the state: it is ignored
    (``(j, [])``), which is what makes replays after a crash harmless.
    """
    def go(state, *, reason=None, acts=(), **changes):
        moved = j.entering(state, now, _timeout(timeouts, state), reason=reason, **changes)
        return moved, [REPORT, *acts]  # queued before a restart can end the process

    # A clock that jumped backwards (a Pi without RTC after a power cut) would stretch
    # the deadline to forever: count the state's time again from now.
    if j.entered_at is not None and now < j.entered_at and j.state not in TERMINAL:
        j = j.model_copy(update={"entered_at": now, "deadline": now + _timeout(timeouts, j.state)})

    if isinstance(o, Reset):
        if j.state in TERMINAL:
            return go("idle", reason=o.reason, target=None, update_id=None, baseline=None, evidence={}, starts=0)
        if j.state in BEFORE_SWITCH or (j.state == "switching" and j.baseline is None):
            return go("idle", reason=o.reason, acts=[Act("cleanup", j.version)],
                      target=None, update_id=None, baseline=None, evidence={}, starts=0)
        if j.state in ("switching", "proving"):
            return go("rolling-back", reason=o.reason, acts=_back(j))
        return j, []

    if isinstance(o, Desired):
        if j.state not in TERMINAL:
            return j, []  # one update at a time; the server resets a stuck one
        if j.version == o.target.version and j.state != "idle":
            return j, []  # the retained down/update again: this version was already tried
        if o.target.version == o.current:
            return j, []
        fresh = Journal(history=j.history)
        j = fresh
        return go("downloading", acts=[Act("download", o.target.version)], target=o.target,
                  update_id=o.update_id, previous=o.current)

    if isinstance(o, Started) and j.state == "done" and o.running is not None and o.running == j.version:
        return j, [Act("settle", j.version)]  # again: a power cut may have come between done and settled
    if j.state in TERMINAL:
        return j, []

    if isinstance(o, Started) and j.state == "proving":
        if o.running is None:
            j = j.model_copy(update={"starts": j.starts + 1})
            if j.starts > max_starts:
                return go("rolling-back", reason=f"crash loop: the service started {j.starts} times "
                          f"without {j.version} proving itself", acts=_back(j))
        if o.current != j.version:
            return go("rolling-back", reason=f"current names {o.current}, not {j.version}", acts=_back(j))
    if isinstance(o, Started) and j.state == "rolling-back" and o.running == j.previous == o.current:
        return go("rolled-back", reason=j.reason)

    if isinstance(o, Tick) and j.state == "proving":
        verdict = judge(j.baseline, o.proof, j.update_id or "", j.version or "")
        if verdict.passed:
            return go("done", acts=[Act("settle", j.version)], evidence=verdict.evidence)
        if j.deadline is not None and now >= j.deadline:
            j = j.model_copy(update={"evidence": verdict.evidence})
            return go("rolling-back", reason=f"{j.version} did not prove itself within "
                      f"{timeouts.proving:.0f}s: missing {', '.join(verdict.missing)}", acts=_back(j))
        return j, []

    if isinstance(o, (Started, Tick)) and j.deadline is not None and now >= j.deadline \
            and j.state != "proving":  # proving: judged on the next Tick, with its proof
        stuck = f"stuck in {j.state} for more than {getattr(timeouts, j.state.replace('-', '_')):.0f}s"
        if j.state in BEFORE_SWITCH or (j.state == "switching" and j.baseline is None):
            return go("failed", reason=stuck + (f" ({j.reason})" if j.reason else ""),
                      acts=[Act("cleanup", j.version)])
        if j.state == "rolling-back":  # never give up going back: try again
            j = j.entering("rolling-back", now, _timeout(timeouts, "rolling-back"), reason=j.reason)
            return j, _work(j, None, None)
        return go("rolling-back", reason=stuck, acts=_back(j))

    if isinstance(o, Started):
        return j, _work(j, o.running, o.current)

    if isinstance(o, Tick):
        if j.state in ("ready", "switching") and j.baseline is None and o.gate is not None:
            if j.state == "ready":
                return go("installing", acts=[Act("install", j.version)])
            return j.model_copy(update={"baseline": o.gate}), [Act("switch", j.version)]
        if j.state in ("downloading", "verifying", "installing", "rolling-back") or (
                j.state == "switching" and j.baseline is not None):
            return j, _work(j, None, None)
        return j, []

    if isinstance(o, Done):
        expected = {"downloading": "download", "verifying": "verify", "installing": "install",
                    "switching": "switch", "rolling-back": "switch-back"}.get(j.state)
        if o.step != expected:
            return j, []
        if o.step == "download":
            return go("verifying", acts=[Act("verify", j.version)])
        if o.step == "verify":
            return go("ready")
        if o.step == "install":
            return go("switching")
        if o.step == "switch":
            return go("proving", acts=[RESTART], starts=0)
        if o.running is not None and o.running == j.previous:
            return go("rolled-back", reason=j.reason)
        return j, [RESTART]  # rolled-back once the previous release runs (Started)

    if isinstance(o, Failed):
        if j.state in BEFORE_SWITCH or (j.state == "switching" and j.baseline is None):
            if o.kind == "transient":
                return j.model_copy(update={"reason": o.reason, "evidence": o.evidence}), []
            state = "refused" if o.kind == "refused" else "failed"
            return go(state, reason=o.reason, acts=[Act("cleanup", j.version)], evidence=o.evidence)
        if j.state == "switching":
            return go("rolling-back", reason=f"switch failed: {o.reason}", evidence=o.evidence, acts=_back(j))
        if j.state == "rolling-back":
            return j.model_copy(update={"evidence": {**j.evidence, "switch-back": o.reason}}), []
    return j, []
