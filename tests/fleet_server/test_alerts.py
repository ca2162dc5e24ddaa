"""The alert rules, pure: each cause, its thresholds, and what reconcile opens and closes."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from fleet_server.alerts import (
    Finding,
    Kind,
    NodeFacts,
    OutboxTrend,
    SiteDay,
    day_bounds,
    node_findings,
    reconcile,
    satisfaction_finding,
)
from fleet_server.presence import OFFLINE, ONLINE, RETIRED, Presence
from fleet_server.settings import AlertSettings
from rpfleet.protocol.messages import Health, PeripheralHealth

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)
RULES = AlertSettings()


def healthy(**changes) -> Health:
    values = dict(
        node="a-node", at=NOW, uptime_s=7200, system_uptime_s=7200, outbox_pending=0,
        outbox_oldest_age_s=None, disk_total_mb=16000, disk_free_mb=9000, clock_synced=True,
        peripherals=[PeripheralHealth(id="pad-1", kind="rating-pad", state="ok")],
    )
    return Health(**(values | changes))


def node(health: Health | None = None, presence: Presence | None = None) -> NodeFacts:
    return NodeFacts("a-node", "site-1", presence or Presence(ONLINE, NOW, NOW), health)


def kinds(findings: list[Finding]) -> list[str]:
    return sorted(f"{f.kind} {f.subject}" for f in findings)


def test_a_healthy_online_node_raises_nothing():
    assert node_findings(node(healthy()), NOW, RULES) == []


@pytest.mark.parametrize(
    "since, alerts",
    [(timedelta(seconds=119), False), (timedelta(seconds=120), True)],
    ids=["a-reboot", "gone"],
)
def test_offline_alerts_only_after_the_grace(since, alerts):
    gone = Presence(OFFLINE, NOW - since, NOW - since)
    found = node_findings(node(healthy(), gone), NOW, RULES)
    assert kinds(found) == (["node-offline a-node"] if alerts else [])


def test_a_retired_node_raises_nothing_whatever_its_last_health():
    retired = Presence(RETIRED, NOW - timedelta(days=3), NOW - timedelta(days=3))
    assert node_findings(node(healthy(disk_free_mb=1), retired), NOW, RULES) == []


def test_missing_and_failed_peripherals_are_alerted_each_on_their_own():
    h = healthy(peripherals=[
        PeripheralHealth(id="pad-1", kind="rating-pad", state="missing"),
        PeripheralHealth(id="printer", kind="printer", state="failed", detail="paper jam"),
        PeripheralHealth(id="pad-2", kind="rating-pad", state="degraded"),
        PeripheralHealth(id="scanner", kind="scanner", state="ok"),
    ])
    found = {f.subject: f for f in node_findings(node(h), NOW, RULES)}
    assert set(found) == {"a-node/pad-1", "a-node/printer"}
    assert (found["a-node/pad-1"].kind, found["a-node/pad-1"].severity) == ("peripheral-missing", "warning")
    assert (found["a-node/printer"].kind, found["a-node/printer"].severity) == ("peripheral-failed", "critical")
    assert "paper jam" in found["a-node/printer"].detail


@pytest.mark.parametrize(
    "free_mb, total_mb, alerts",
    [(199, 2000, True), (200, 2000, False), (600, 16000, True), (900, 16000, False), (150, None, True)],
    ids=["below-mb", "at-mb", "below-percent", "above-both", "no-total"],
)
def test_disk_low_by_megabytes_or_percent(free_mb, total_mb, alerts):
    found = node_findings(node(healthy(disk_free_mb=free_mb, disk_total_mb=total_mb)), NOW, RULES)
    assert kinds(found) == (["disk-low a-node"] if alerts else [])


@pytest.mark.parametrize(
    "synced, uptime, alerts",
    [(False, 599, False), (False, 600, True), (True, 99_999, False), (None, 99_999, False)],
    ids=["booting", "never-synced", "synced", "not-reported"],
)
def test_an_unsynchronised_clock_alerts_after_the_grace_from_boot(synced, uptime, alerts):
    h = healthy(clock_synced=synced, system_uptime_s=uptime)
    assert kinds(node_findings(node(h), NOW, RULES)) == (["clock-unsynced a-node"] if alerts else [])


def test_agent_alarms_are_alerted_per_code():
    found = node_findings(node(healthy(alarms=["disk-full", "driver-crashed:pad-1"])), NOW, RULES)
    assert kinds(found) == ["node-alarm a-node/disk-full", "node-alarm a-node/driver-crashed:pad-1"]


@pytest.mark.parametrize(
    "pending, previous, oldest_s, already_open, alerts",
    [
        (800, 600, 60, False, True),  # high and growing
        (800, None, 60, False, False),  # high, trend not known yet
        (800, 5000, 60, False, False),  # high but draining after an outage
        (800, 800, 60, True, True),  # stays open while high
        (400, 800, 60, True, False),  # closes once below the threshold
        (3, 3, 601, False, True),  # small but stuck
    ],
    ids=["growing", "no-trend", "draining", "stays-open", "recovered", "stuck"],
)
def test_outbox_backlog(pending, previous, oldest_s, already_open, alerts):
    h = healthy(outbox_pending=pending, outbox_oldest_age_s=oldest_s)
    open_keys = frozenset({("outbox-backlog", "a-node")}) if already_open else frozenset()
    found = node_findings(node(h), NOW, RULES, previous_pending=previous, open_keys=open_keys)
    assert kinds(found) == (["outbox-backlog a-node"] if alerts else [])


def test_the_outbox_trend_compares_each_new_health_with_the_one_before():
    trend = OutboxTrend()
    first, second = healthy(outbox_pending=10), healthy(outbox_pending=30, at=NOW + timedelta(seconds=30))
    assert trend.previous("a-node", first) is None
    assert trend.previous("a-node", second) == 10
    assert trend.previous("a-node", second) == 10  # the same health again: the same trend


# ---- satisfaction: evidence, not noise ------------------------------------


def site(satisfied: int, total: int) -> SiteDay:
    return SiteDay("site-1", date(2026, 11, 25), satisfied, total)


@pytest.mark.parametrize(
    "satisfied, total, alerts",
    [
        (9, 12, False),  # a quiet agency: three unhappy taps, 75 %, upper bound 0.91
        (0, 3, False),  # three unhappy taps and nothing else: too few to judge
        (0, 1, False),  # one unhappy first tap of the day
        (240, 300, True),  # a busy branch at 80 %: upper bound 0.84
        (297, 300, False),  # the same three unhappy taps at the busy branch
        (264, 300, False),  # 88 % by mid-morning: could still be a 90 % day (upper bound 0.91)
        (2640, 3000, True),  # ... but 88 % over a whole busy day is a fall (upper bound 0.89)
    ],
    ids=["quiet-agency", "three-of-three", "first-tap", "busy-branch-falling", "busy-branch-fine",
         "busy-branch-88", "very-busy-88"],
)
def test_satisfaction_alerts_on_evidence_not_noise(satisfied, total, alerts):
    finding = satisfaction_finding(site(satisfied, total), RULES)
    assert (finding is not None) is alerts
    if finding:
        assert (finding.kind, finding.subject, finding.site_id) == ("satisfaction-low", "site-1", "site-1")
        assert f"{satisfied} of {total}" in finding.detail


def test_a_day_is_the_citys_calendar_day():
    day, start, end = day_bounds(datetime(2026, 11, 24, 17, 30, tzinfo=timezone.utc), "Asia/Ho_Chi_Minh")
    assert day == date(2026, 11, 25)  # 00:30 in Hanoi
    assert start == datetime(2026, 11, 24, 17, 0, tzinfo=timezone.utc)
    assert end - start == timedelta(days=1)


# ---- reconcile ------------------------------------------------------------


def finding(kind: str, subject: str) -> Finding:
    return Finding(kind, subject, "warning", "")


def test_reconcile_opens_what_is_new_and_closes_what_cleared_but_only_of_its_own_kinds():
    plan = reconcile(
        [finding("disk-low", "a-node"), finding("disk-low", "b-node"), finding("disk-low", "b-node")],
        {("disk-low", "a-node"), ("node-offline", "c-node"), ("rollout-halted", "wave-2")},
    )
    assert [f.key for f in plan.open] == [("disk-low", "b-node")]
    assert plan.close == [("node-offline", "c-node")]


def test_every_kind_is_owned():
    assert {k.value for k in Kind} >= {"node-offline", "peripheral-missing", "peripheral-failed",
                                       "outbox-backlog", "disk-low", "clock-unsynced",
                                       "satisfaction-low"}
