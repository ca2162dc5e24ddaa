"""Gating, pure: where each node of a rollout stands, and whether its wave may
proceed, must wait, or halts the rollout.

A node sent the new version is, in this order of precedence:

- **failed**: it reported ``rolled-back``, ``refused`` or ``failed`` for the
  version (its reason is kept), or no outcome came within ``stuck_after`` of
  the send while it was online (**stuck**);
- **regressed**: it runs the version, but its share of peripherals ``ok`` fell
  below the share it had when its wave opened, by more than
  ``ready_tolerance`` (default 0: one peripheral that worked and no longer
  does is enough);
- **proven**: it runs the version (its ``done`` report, or its health naming
  the version), is online, and has been so for the soak time;
- **soaking**: it runs the version, soak time not over yet;
- **updating** / **waiting**: online, the update under way / not started
  (nodes install only inside their site's maintenance window);
- **absent**: offline. An absent node neither blocks its wave nor counts as a
  failure: it gets the version it should have, retained, when it returns.

Tap flow is judged over the wave's nodes together, since one counter's taps
are too few to compare: each updated node's *taps per open hour* before its
wave opened (the 7 days before, `BASELINE`) times the open hours since it runs
the new version gives the taps *expected*; the gate fails when the taps seen
are below ``(1 - tap_tolerance)`` of that *and* a Poisson test says so with
at most 1 % chance of being wrong, waits while fewer than ``min_expected_taps``
are expected (updates install at night; taps come when the counters open),
and passes unjudged when the nodes had no taps before, or after waiting
``tap_wait`` beyond the soak.

A wave **proceeds** when none of its online nodes is waiting, updating or
soaking, at least one node of the rollout is proven, and the tap gate passes.
The rollout **halts** when failed + regressed nodes go past the failure limit
(counted over every node sent the version so far, less those an operator
excused on resume), or the tap gate fails. Otherwise it **waits**.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, timezone
from typing import Iterable

from fleet_server.rollouts.plan import FailureLimit

HANOI = timezone(timedelta(hours=7))
BASELINE = timedelta(days=7)
FAILED_STATES = ("rolled-back", "refused", "failed")


@dataclass(frozen=True)
class OpeningHours:
    """When counters are open, by the local clock: (weekday, start, end) sessions,
    Monday = 0. The default is a Hanoi reception point's: Monday to Friday
    8:00–12:00 and 13:00–17:00, Saturday morning 8:00–12:00."""

    sessions: tuple[tuple[int, time, time], ...] = tuple(
        (day, start, end)
        for day in range(5)
        for start, end in ((time(8), time(12)), (time(13), time(17)))
    ) + ((5, time(8), time(12)),)
    zone: timezone = HANOI

    def open_hours(self, start: datetime, end: datetime) -> float:
        """Hours the counters are open in [start, end)."""
        if end <= start:
            return 0.0
        local_start, local_end = start.astimezone(self.zone), end.astimezone(self.zone)
        total = 0.0
        day: date = local_start.date()
        while day <= local_end.date():
            for weekday, opens, closes in self.sessions:
                if weekday != day.weekday():
                    continue
                a = max(local_start, datetime.combine(day, opens, self.zone))
                b = min(local_end, datetime.combine(day, closes, self.zone))
                if b > a:
                    total += (b - a).total_seconds() / 3600
            day += timedelta(days=1)
        return total


@dataclass(frozen=True)
class Policy:
    soak_s: float = 1800
    failures: FailureLimit = FailureLimit(share=0.05)
    ready_tolerance: float = 0.0
    tap_tolerance: float = 0.3
    min_expected_taps: float = 20
    tap_wait_s: float = 24 * 3600
    stuck_after_s: float = 48 * 3600
    excused: frozenset[str] = frozenset()

    def to_json(self) -> dict:
        return {"soak_s": self.soak_s, "failures": self.failures.to_json(),
                "ready_tolerance": self.ready_tolerance, "tap_tolerance": self.tap_tolerance,
                "min_expected_taps": self.min_expected_taps, "tap_wait_s": self.tap_wait_s,
                "stuck_after_s": self.stuck_after_s, "excused": sorted(self.excused)}

    @classmethod
    def from_json(cls, data: dict) -> "Policy":
        values = dict(data)
        values["failures"] = FailureLimit.from_json(values.get("failures", {"share": 0.05}))
        values["excused"] = frozenset(values.get("excused", ()))
        return cls(**values)


@dataclass(frozen=True)
class NodeFacts:
    """What the server knows of one node of a rollout that was sent the version."""

    node_id: str
    wave: int
    sent_at: datetime
    online: bool
    reported_version: str | None = None
    reported_state: str | None = None
    reported_reason: str | None = None
    done_at: datetime | None = None  # its first "done" for reported_version
    health_version: str | None = None
    health_at: datetime | None = None
    ready_before: float | None = None
    ready_now: float | None = None
    taps_before: float | None = None  # per open hour
    taps_after: int = 0  # since running the version


@dataclass(frozen=True)
class NodeVerdict:
    node_id: str
    wave: int
    status: str  # failed, stuck, regressed, proven, soaking, updating, waiting, absent
    reason: str | None = None
    running_since: datetime | None = None


BAD = ("failed", "stuck", "regressed")
BUSY = ("waiting", "updating", "soaking")


def running_since(facts: NodeFacts, version: str) -> datetime | None:
    """Since when the node runs ``version``, if it does."""
    done = facts.reported_version == version and facts.reported_state == "done"
    if done or (facts.health_version == version and facts.health_at is not None):
        return facts.done_at if done and facts.done_at else facts.sent_at
    return None


def judge_node(facts: NodeFacts, version: str, policy: Policy, now: datetime) -> NodeVerdict:
    """Where one node stands (see the module's docstring)."""
    def verdict(status: str, reason: str | None = None, since: datetime | None = None):
        return NodeVerdict(facts.node_id, facts.wave, status, reason, since)

    if facts.reported_version == version and facts.reported_state in FAILED_STATES:
        return verdict("failed", f"{facts.reported_state}: {facts.reported_reason or 'no reason given'}")
    since = running_since(facts, version)
    if since is not None:
        if (facts.ready_before is not None and facts.ready_now is not None
                and facts.ready_now < facts.ready_before - policy.ready_tolerance - 1e-9):
            return verdict("regressed", f"peripherals ok fell from {facts.ready_before:.0%} "
                                        f"to {facts.ready_now:.0%}", since)
        if not facts.online:
            return verdict("absent", "offline since the update", since)
        if (now - since).total_seconds() >= policy.soak_s:
            return verdict("proven", None, since)
        return verdict("soaking", None, since)
    if not facts.online:
        return verdict("absent", "offline")
    if (now - facts.sent_at).total_seconds() > policy.stuck_after_s:
        return verdict("stuck", f"no outcome {(now - facts.sent_at).total_seconds() / 3600:.0f} h "
                                "after it was sent")
    if facts.reported_version == version and facts.reported_state:
        return verdict("updating", facts.reported_state)
    return verdict("waiting")


@dataclass(frozen=True)
class TapGate:
    state: str  # pass, fail, wait, unjudged
    expected: float
    seen: int
    detail: str


def poisson_cdf(k: int, mean: float) -> float:
    """P(X <= k) for X ~ Poisson(mean)."""
    if mean <= 0:
        return 1.0
    term = math.exp(-mean)
    total = term
    for i in range(1, k + 1):
        term *= mean / i
        total += term
    return min(total, 1.0)


def judge_taps(updated: Iterable[tuple[NodeFacts, datetime]], policy: Policy, now: datetime,
               hours: OpeningHours, *, waited_s: float) -> TapGate:
    """The tap gate over the wave's updated nodes, each with since when it runs the version;
    ``waited_s``: how long past the soak the wave has been waiting for taps."""
    expected = 0.0
    seen = 0
    for facts, since in updated:
        if facts.taps_before:
            expected += facts.taps_before * hours.open_hours(since, now)
            seen += facts.taps_after
    if expected <= 0:
        return TapGate("unjudged", 0.0, seen, "no taps at these nodes before: nothing to compare")
    floor = (1 - policy.tap_tolerance) * expected
    if seen < floor and poisson_cdf(seen, floor) < 0.01:
        return TapGate("fail", expected, seen,
                       f"tap flow fell: {seen} taps where {expected:.0f} were expected "
                       f"(at least {floor:.0f} allowed)")
    if expected < policy.min_expected_taps:
        if waited_s >= policy.tap_wait_s:
            return TapGate("unjudged", expected, seen,
                           f"only {expected:.1f} taps expected after waiting; not judged")
        return TapGate("wait", expected, seen,
                       f"{expected:.1f} of {policy.min_expected_taps:g} expected taps so far: "
                       "waiting for open hours")
    return TapGate("pass", expected, seen, f"{seen} taps, {expected:.0f} expected")


@dataclass
class WaveDecision:
    action: str  # proceed, wait, halt
    reason: str
    counts: dict[str, int] = field(default_factory=dict)
    taps: TapGate | None = None
    failures: list[NodeVerdict] = field(default_factory=list)

    def gates(self) -> dict:
        return {"action": self.action, "reason": self.reason, "counts": self.counts,
                "taps": None if self.taps is None else {
                    "state": self.taps.state, "expected": round(self.taps.expected, 1),
                    "seen": self.taps.seen, "detail": self.taps.detail},
                "failures": [{"node": v.node_id, "wave": v.wave, "status": v.status,
                              "reason": v.reason} for v in self.failures[:50]]}


def decide(facts: list[NodeFacts], version: str, wave: int, policy: Policy, now: datetime,
           *, hours: OpeningHours = OpeningHours()) -> WaveDecision:
    """Judge the open ``wave`` of a rollout of ``version``; ``facts``: every node sent the
    version so far (waves up to ``wave``)."""
    verdicts = [judge_node(f, version, policy, now) for f in facts]
    counts: dict[str, int] = {}
    for v in verdicts:
        if v.wave == wave:
            counts[v.status] = counts.get(v.status, 0) + 1
    bad = [v for v in verdicts if v.status in BAD and v.node_id not in policy.excused]
    sent = len([f for f in facts if f.node_id not in policy.excused])
    if bad and policy.failures.exceeded(len(bad), sent):
        listed = "; ".join(f"{v.node_id} {v.status}: {v.reason}" for v in bad[:5])
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        return WaveDecision("halt", f"{len(bad)} of {sent} nodes failed, past the limit of "
                                    f"{policy.failures.describe()}: {listed}{more}",
                            counts, None, bad)
    by_id = {f.node_id: f for f in facts}
    in_wave = [v for v in verdicts if v.wave == wave]
    updated = [(by_id[v.node_id], v.running_since) for v in in_wave
               if v.status in ("proven", "soaking") and v.running_since is not None]
    soaked_since = max((s for _, s in updated), default=now) + timedelta(seconds=policy.soak_s)
    taps = judge_taps(updated, policy, now, hours,
                      waited_s=max(0.0, (now - soaked_since).total_seconds()))
    if taps.state == "fail":
        return WaveDecision("halt", taps.detail, counts, taps, bad)
    busy = [v for v in in_wave if v.status in BUSY]
    if busy:
        return WaveDecision("wait", f"{len(busy)} node(s) of wave {wave + 1} not proven yet "
                                    f"({', '.join(sorted({v.status for v in busy}))})",
                            counts, taps, bad)
    if not any(v.status == "proven" for v in verdicts) and in_wave:
        return WaveDecision("wait", "no node proven yet (all absent)", counts, taps, bad)
    if taps.state == "wait":
        return WaveDecision("wait", taps.detail, counts, taps, bad)
    return WaveDecision("proceed", f"wave {wave + 1} proven", counts, taps, bad)
