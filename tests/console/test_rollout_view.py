"""What the rollouts screens show, from API bodies (rpfleet.console.view)."""

from __future__ import annotations

import pytest

from rpfleet.console import view


def rollout(state: str = "running", **values) -> dict:
    return {"id": 7, "version": "1.1.0", "state": state, "wave": 2,
            "waves": [{"wave": 1, "share": 0.1, "nodes": 2, "state": "done",
                       "counts": {"proven": 2}},
                      {"wave": 2, "share": 1.0, "nodes": 8, "state": "open",
                       "counts": {"failed": 1, "soaking": 3, "proven": 1, "stuck": 1}}]} | values


def test_counts_are_listed_in_the_order_of_where_nodes_stand():
    counts = {"regressed": 1, "proven": 3, "zombie": 2, "waiting": 0, "absent": 1}
    assert view.standing_counts(counts) == [("proven", 3), ("absent", 1), ("regressed", 1),
                                            ("zombie", 2)]
    assert view.counts_text(counts) == "3 proven, 1 absent, 1 regressed, 2 zombie"
    assert view.counts_text({}) == "none sent yet"


def test_progress_adds_up_the_waves():
    made = view.rollout_progress(rollout())
    assert (made.nodes, made.proven, made.bad, made.sent) == (10, 3, 2, 8)
    assert view.rollout_progress({"waves": []}) == view.RolloutProgress(0, 0, 0, 0)
    assert view.total_counts(rollout()) == {"proven": 3, "failed": 1, "soaking": 3, "stuck": 1}


def test_the_wave_line_and_sites():
    assert view.rollout_wave(rollout()) == "wave 2 of 2"
    assert view.rollout_wave(rollout("completed")) == "all 2 waves"
    assert view.rollout_sites(rollout(sites=None)) == "every site"
    assert view.rollout_sites(rollout(sites=["hk-01", "hk-02"])) == "hk-01, hk-02"


@pytest.mark.parametrize("state, hint", [
    ("running", "rpfleet server rollout pause 7 · rpfleet server rollout abort 7"),
    ("paused", "rpfleet server rollout resume 7 · rpfleet server rollout abort 7"),
    ("halted", "rpfleet server rollout resume 7 · rpfleet server rollout abort 7"),
    ("completed", None),
    ("aborted", None),
])
def test_the_hint_names_the_commands_that_steer_it_now(state, hint):
    assert view.steering_hint(rollout(state)) == hint


def test_the_policy_in_words():
    assert view.policy_text({"soak_s": 1800, "failures": {"share": 0.05}, "excused": []}) == \
        "soak 30 min · max failures 5%"
    assert view.policy_text({"soak_s": 7200, "failures": {"count": 3}, "excused": ["a", "b"]}) \
        == "soak 2 h · max failures 3 · 2 excused"
    assert view.policy_text(None) == view.NO_VALUE


def test_the_gate_with_its_taps_and_failures():
    gates = {"action": "wait", "reason": "3 node(s) of wave 2 not proven yet (soaking)",
             "counts": {"soaking": 3, "proven": 1},
             "taps": {"state": "wait", "expected": 12.5, "seen": 4,
                      "detail": "12 taps expected, fewer than 20: waiting"},
             "failures": [{"node": "b", "wave": 1, "status": "stuck", "reason": "no outcome"},
                          {"node": "a", "wave": 1, "status": "failed", "reason": "refused"}]}
    assert view.gate_facts(gates) == [
        ("action", "wait"), ("why", "3 node(s) of wave 2 not proven yet (soaking)"),
        ("open wave", "1 proven, 3 soaking"),
        ("tap gate", "wait: 4 taps seen, 12.5 expected"),
        ("", "12 taps expected, fewer than 20: waiting"),
    ]
    assert view.gate_failures(gates) == [("a", "failed", "refused"), ("b", "stuck", "no outcome")]
    assert view.gate_facts(None) == [] and view.gate_failures(None) == []


def test_a_wave_bar_draws_who_got_somewhere_in_order_and_keeps_a_lone_failure():
    assert view.wave_bar({"soaking": 2, "absent": 1, "failed": 1}, 4, 12) == [
        ("██████", "soaking"), ("███", "failed"), ("···", "")]
    assert view.wave_bar({"proven": 99, "failed": 1}, 100, 10) == [
        ("█████████", "proven"), ("█", "failed")]
    assert view.wave_bar({"proven": 3}, 3, 8) == [("████████", "proven")]
    assert view.wave_bar({}, 3, 5) == [("·····", "")]
    assert view.wave_bar({"proven": 1}, 0, 4) == [("····", "")]
