"""The pure parts of rollouts: wave planning and gating."""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet_server.rollouts.gates import (
    NodeFacts, OpeningHours, Policy, decide, judge_node, poisson_cdf,
)
from fleet_server.rollouts.plan import (
    FailureLimit, PlanError, bucket, parse_failure_limit, parse_waves, plan_waves, wave_of,
)

V = "1.2.0"
# A Wednesday, 11:00 in Hanoi: counters open since 08:00.
NOW = datetime(2026, 11, 25, 4, 0, tzinfo=timezone.utc)
node_ids = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,20}", fullmatch=True), unique=True,
                    max_size=300)
shares_st = st.lists(st.integers(1, 99), unique=True, max_size=4).map(
    lambda xs: [x / 100 for x in sorted(xs)] + [1.0])


@pytest.mark.parametrize("text, shares", [
    ("1%,10%,50%,100%", [0.01, 0.1, 0.5, 1.0]),
    ("100%", [1.0]),
    (" 25% , 100% ", [0.25, 1.0]),
    ("0.5%,100%", [0.005, 1.0]),
], ids=["default", "one", "spaces", "fraction"])
def test_waves_parse(text, shares):
    assert parse_waves(text) == shares


@pytest.mark.parametrize("text, match", [
    ("10%,50%", "last wave must be 100%"),
    ("50%,10%,100%", "does not grow"),
    ("ten,100%", "'ten' is not a share"),
    ("0%,100%", "between 0% and 100%"),
    ("150%", "between 0% and 100%"),
], ids=["no-100", "falling", "word", "zero", "over"])
def test_bad_waves_are_refused_naming_the_option(text, match):
    with pytest.raises(PlanError, match=match) as caught:
        parse_waves(text)
    assert caught.value.field == "waves"


@pytest.mark.parametrize("text, limit, failures, sent, exceeded", [
    ("5%", FailureLimit(share=0.05), 1, 10, True),
    ("5%", FailureLimit(share=0.05), 1, 20, False),
    ("5%", FailureLimit(share=0.05), 2, 20, True),
    ("0%", FailureLimit(share=0.0), 1, 1000, True),
    ("3", FailureLimit(count=3), 3, 5, False),
    ("3", FailureLimit(count=3), 4, 500, True),
], ids=["share-small-wave", "share-at", "share-past", "zero", "count-at", "count-past"])
def test_failure_limits(text, limit, failures, sent, exceeded):
    assert parse_failure_limit(text) == limit
    assert limit.exceeded(failures, sent) is exceeded


def test_a_bad_failure_limit_is_refused():
    with pytest.raises(PlanError, match="max-failures"):
        parse_failure_limit("many")


@settings(max_examples=150, deadline=None)
@given(node_ids, shares_st)
def test_every_node_is_in_exactly_one_wave_and_the_first_is_never_empty(nodes, shares):
    plan = plan_waves(nodes, shares)
    assert set(plan.waves) == set(nodes)
    assert all(0 <= w < len(shares) for w in plan.waves.values())
    if nodes:
        assert plan.size(0) >= 1
    reached = 0
    for index, share in enumerate(shares):  # cumulative shares are reached, never more than one over
        reached += plan.size(index)
        if index < len(shares) - 1 and nodes:
            assert reached == max(1, math.ceil(share * len(nodes) - 1e-9))
    assert reached == len(nodes)


@settings(max_examples=100, deadline=None)
@given(node_ids, shares_st, st.lists(st.from_regex(r"late-[a-z0-9]{1,10}", fullmatch=True),
                                     unique=True, max_size=30))
def test_the_plan_is_stable_and_late_nodes_fit_the_thresholds(nodes, shares, late):
    plan = plan_waves(nodes, shares)
    assert plan_waves(list(reversed(nodes)), shares) == plan  # order does not matter
    for node, wave in plan.waves.items():  # each planned node lies in its wave's range
        assert wave_of(node, plan.thresholds) == wave
    assert plan.thresholds == sorted(plan.thresholds) and plan.thresholds[-1] == 1.0
    for node in late:
        wave = wave_of(node, plan.thresholds)
        assert bucket(node) <= plan.thresholds[wave]
        assert wave == 0 or bucket(node) > plan.thresholds[wave - 1]


def test_one_node_goes_first_even_at_one_percent():
    plan = plan_waves([f"n{i}" for i in range(30)], [0.01, 0.1, 1.0])
    assert [plan.size(w) for w in range(3)] == [1, 2, 27]  # 10% of 30 is 3: no float drift


# ---- gates ---------------------------------------------------------------


def facts(node="a", *, wave=0, sent_ago=3600, online=True, state=None, version=V, reason=None,
          done_ago=None, health=None, ready=(None, None), taps=(None, 0)):
    return NodeFacts(
        node_id=node, wave=wave, sent_at=NOW - timedelta(seconds=sent_ago), online=online,
        reported_version=version if state else None, reported_state=state, reported_reason=reason,
        done_at=NOW - timedelta(seconds=done_ago) if done_ago is not None else None,
        health_version=health, health_at=NOW if health else None,
        ready_before=ready[0], ready_now=ready[1], taps_before=taps[0], taps_after=taps[1])


POLICY = Policy(soak_s=1800)
NODE_CASES = {
    "rolled-back": (facts(state="rolled-back", reason="rating pad missing"), "failed"),
    "refused": (facts(state="refused", reason="bad-signature"), "failed"),
    "done-soaked": (facts(state="done", done_ago=2000, health=V), "proven"),
    "done-soaking": (facts(state="done", done_ago=600, health=V), "soaking"),
    "health-only": (facts(health=V, sent_ago=4000), "proven"),
    "lost-a-peripheral": (facts(state="done", done_ago=2000, health=V, ready=(1.0, 0.5)), "regressed"),
    "gained-a-peripheral": (facts(state="done", done_ago=2000, health=V, ready=(0.5, 1.0)), "proven"),
    "installing": (facts(state="installing"), "updating"),
    "not-started": (facts(), "waiting"),
    "offline": (facts(online=False), "absent"),
    "offline-after-update": (facts(state="done", done_ago=2000, online=False), "absent"),
    "stuck": (facts(sent_ago=49 * 3600, state="installing"), "stuck"),
    "old-version-failure": (NodeFacts("a", 0, NOW, True, "1.1.0", "failed"), "waiting"),
}


@pytest.mark.parametrize("case", list(NODE_CASES), ids=list(NODE_CASES))
def test_where_a_node_stands(case):
    node, status = NODE_CASES[case]
    assert judge_node(node, V, POLICY, NOW).status == status


def proven(node, wave=0, taps=(None, 0)):
    return facts(node, wave=wave, state="done", done_ago=3 * 3600, health=V, taps=taps)


def test_a_wave_of_proven_nodes_proceeds():
    decision = decide([proven("a"), proven("b")], V, 0, POLICY, NOW)
    assert decision.action == "proceed"
    assert decision.counts == {"proven": 2}


def test_a_node_still_soaking_makes_the_wave_wait():
    decision = decide([proven("a"), facts("b", state="done", done_ago=60, health=V)], V, 0, POLICY, NOW)
    assert (decision.action, decision.counts) == ("wait", {"proven": 1, "soaking": 1})


def test_failures_past_the_limit_halt_and_say_why():
    nodes = [proven(f"n{i}") for i in range(8)] + [
        facts("bad1", state="rolled-back", reason="rating pad missing"),
        facts("bad2", state="failed", reason="crash loop")]
    decision = decide(nodes, V, 0, Policy(failures=FailureLimit(share=0.1)), NOW)
    assert decision.action == "halt"
    assert "2 of 10 nodes failed" in decision.reason and "rating pad missing" in decision.reason
    assert {f.node_id for f in decision.failures} == {"bad1", "bad2"}


def test_failures_within_the_limit_do_not_halt_and_excused_ones_do_not_count():
    nodes = [proven(f"n{i}") for i in range(9)] + [facts("bad", state="failed", reason="x")]
    assert decide(nodes, V, 0, Policy(failures=FailureLimit(share=0.1)), NOW).action == "proceed"
    assert decide(nodes, V, 0, Policy(failures=FailureLimit(count=0)), NOW).action == "halt"
    assert decide(nodes, V, 0, Policy(failures=FailureLimit(count=0), excused=frozenset({"bad"})),
                  NOW).action == "proceed"


def test_absent_nodes_neither_block_nor_fail_but_one_must_be_proven():
    assert decide([proven("a"), facts("b", online=False)], V, 0, POLICY, NOW).action == "proceed"
    assert decide([facts("b", online=False)], V, 0, POLICY, NOW).action == "wait"


# Taps: the node has run the new version since 08:00, 3 open hours: 10 taps/h before expects 30.
@pytest.mark.parametrize("before, after, action", [
    (10.0, 25, "proceed"),   # within the 30% tolerance
    (10.0, 0, "halt"),       # silent pads: the tap gate fails
    (0.0, 0, "proceed"),     # nothing to compare: not judged
    (1.0, 0, "wait"),        # 3 expected: too few to judge yet
], ids=["flowing", "stopped", "no-history", "too-few"])
def test_the_tap_gate(before, after, action):
    node = facts("a", state="done", done_ago=3 * 3600, health=V, taps=(before, after))
    decision = decide([node], V, 0, POLICY, NOW)
    assert decision.action == action, decision.reason


def test_opening_hours():
    hours = OpeningHours()
    wednesday_7_local = datetime(2026, 11, 25, 0, 0, tzinfo=timezone.utc)
    assert hours.open_hours(wednesday_7_local, wednesday_7_local + timedelta(hours=24)) == 8
    sunday = datetime(2026, 11, 29, 0, 0, tzinfo=timezone.utc)
    assert hours.open_hours(sunday, sunday + timedelta(hours=24)) == 0
    monday = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc) - timedelta(hours=7)
    assert hours.open_hours(monday, monday + timedelta(days=7)) == 44


@settings(max_examples=50, deadline=None)
@given(st.floats(0.1, 80), st.integers(0, 200))
def test_poisson_cdf_is_a_distribution(mean, k):
    low, high = poisson_cdf(k, mean), poisson_cdf(k + 1, mean)
    assert 0 <= low <= high <= 1
