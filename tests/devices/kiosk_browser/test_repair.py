"""The repair ladder: escalation, hourly limits, giving up without a reboot loop."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from devices.kiosk_browser.config import RepairLimits
from devices.kiosk_browser.repair import GiveUp, Repair, RepairHistory, RepairLadder

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
ONE_EACH = RepairLimits(reload=1, restart_browser=1, restart_display=1, reboot=1)


def run(ladder: RepairLadder, trouble: str, at: datetime) -> Repair | GiveUp:
    decision = ladder.decide(trouble, "test", at)
    if isinstance(decision, Repair):
        ladder.done(decision.step, at)
    return decision


def steps(decisions) -> list[str]:
    return [d.step if isinstance(d, Repair) else "give-up" for d in decisions]


def test_a_trouble_that_persists_climbs_the_ladder_then_gives_up_once():
    ladder = RepairLadder(ONE_EACH, settle_s=60)
    decisions = [run(ladder, "hung", T0 + timedelta(seconds=10 * i)) for i in range(6)]
    assert steps(decisions) == ["reload", "restart-browser", "restart-display", "reboot",
                                "give-up", "give-up"]
    assert decisions[4].first and not decisions[5].first
    assert "reboot x1" in decisions[4].reason


def test_a_mended_page_starts_again_from_the_bottom():
    ladder = RepairLadder(RepairLimits(), settle_s=60)
    assert run(ladder, "hung", T0).step == "reload"
    assert not ladder.well(T0 + timedelta(seconds=10))
    assert ladder.well(T0 + timedelta(seconds=80))  # well for 70 s: mended
    assert run(ladder, "crashed", T0 + timedelta(seconds=90)).step == "reload"


def test_a_page_well_only_briefly_is_not_mended():
    ladder = RepairLadder(RepairLimits(), settle_s=60)
    run(ladder, "hung", T0)
    ladder.well(T0 + timedelta(seconds=20))
    ladder.well(T0 + timedelta(seconds=40))
    assert run(ladder, "hung", T0 + timedelta(seconds=50)).step == "restart-browser"


def test_a_spent_step_is_skipped_upwards_and_budgets_free_up_after_an_hour():
    ladder = RepairLadder(RepairLimits(reload=2), settle_s=1)
    for minute in (0, 10):
        assert run(ladder, "crashed", T0 + timedelta(minutes=minute)).step == "reload"
        ladder.well(T0 + timedelta(minutes=minute, seconds=1))
        ladder.well(T0 + timedelta(minutes=minute, seconds=5))
    third = run(ladder, "crashed", T0 + timedelta(minutes=20))
    assert (third.step, third.done_this_hour) == ("restart-browser", 0)
    ladder.well(T0 + timedelta(minutes=20, seconds=1))
    ladder.well(T0 + timedelta(minutes=20, seconds=5))
    assert run(ladder, "crashed", T0 + timedelta(minutes=61)).step == "reload"


def test_a_dead_browser_is_restarted_not_reloaded():
    ladder = RepairLadder(RepairLimits(), settle_s=60)
    assert run(ladder, "browser-gone", T0).step == "restart-browser"


def test_after_giving_up_only_mild_steps_never_another_reboot():
    ladder = RepairLadder(ONE_EACH, settle_s=60)
    for i in range(5):
        run(ladder, "hung", T0 + timedelta(seconds=i))
    assert ladder.history.gave_up
    # Hours later every budget is free again, but the page never got well: no reboot loop.
    later = [run(ladder, "hung", T0 + timedelta(hours=h, seconds=i))
             for h in (2, 3, 4) for i in range(4)]
    assert "reboot" not in steps(later) and "restart-display" not in steps(later)
    assert {"reload", "restart-browser"} <= set(steps(later))
    assert not any(isinstance(d, GiveUp) and d.first for d in later)


def test_the_history_survives_a_reboot_on_disk():
    ladder = RepairLadder(ONE_EACH, settle_s=60)
    for i in range(4):
        run(ladder, "hung", T0 + timedelta(seconds=i))
    again = RepairLadder(ONE_EACH, settle_s=60,
                         history=RepairHistory.from_json(ladder.history.to_json()))
    # After the reboot the page still fails: the alarm, not a second reboot.
    decision = again.decide("hung", "after reboot", T0 + timedelta(minutes=3))
    assert isinstance(decision, GiveUp) and decision.first


@pytest.mark.parametrize("limits, expected", [
    (RepairLimits(reload=0, restart_browser=0, restart_display=0, reboot=0), ["give-up"]),
    (RepairLimits(reload=0, restart_browser=1, restart_display=0, reboot=0),
     ["restart-browser", "give-up"]),
], ids=["all-off", "browser-only"])
def test_steps_turned_off(limits, expected):
    ladder = RepairLadder(limits, settle_s=60)
    assert steps(run(ladder, "hung", T0 + timedelta(seconds=i)) for i in range(len(expected))) == expected
