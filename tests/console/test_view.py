"""What the screens show, worked out from API bodies (rpfleet.console.view): no terminal."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from rpfleet.console import view

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("when, shown", [
    (None, "—"), ("2026-11-25T07:59:15Z", "45 s"), ("2026-11-25T07:48:00+00:00", "12 min"),
    ("2026-11-25T05:00:00", "3 h"), ("2026-11-20T08:00:00Z", "5 d"),
    ("2026-11-25T08:00:30Z", "0 s"),  # a node clock ahead of ours is not "in the future"
], ids=["none", "seconds", "minutes", "naive-is-utc", "days", "ahead"])
def test_age(when, shown):
    assert view.age(when, NOW) == shown


@pytest.mark.parametrize("fraction, drawn", [
    (None, "    "), (0.0, "····"), (0.5, "██··"), (1.0, "████"), (1.7, "████"),
    (0.125, "▌···"),  # half a cell: 4 of its 8 eighths
], ids=["none", "zero", "half", "full", "clamped", "eighths"])
def test_bar(fraction, drawn):
    assert view.bar(fraction, 4) == drawn


SITES = [
    {"id": "hk-02", "name": "Bưu điện Hàng Bài", "region_id": "hk", "nodes_online": 1,
     "nodes_total": 1},
    {"id": "hk-01", "name": "Một cửa Hoàn Kiếm", "region_id": "hk", "nodes_online": 1,
     "nodes_total": 3},
    {"id": "x-1", "name": "Nowhere", "region_id": None, "nodes_online": 0, "nodes_total": 0},
    {"id": "bd-01", "name": "Phường Ba Đình", "region_id": "bd", "nodes_online": 0,
     "nodes_total": 2},
]
REPORT = {"groups": [
    {"group": {"kind": "site", "id": "hk-01", "name": "…"}, "tally": {"ratings": 3, "share": 1.0}},
    {"group": {"kind": "site", "id": "hk-02", "name": "…"}, "tally": {"ratings": 1, "share": 0.0}},
]}
ALERTS = [{"site_id": "hk-01", "node_id": "a", "kind": "node-offline"},
          {"site_id": "hk-01", "node_id": "b", "kind": "peripheral-faulty"},
          {"site_id": None, "node_id": "n-free", "kind": "clock"}]


def test_overview_rows_put_sites_under_regions_by_name_and_add_them_up():
    rows = view.overview_rows(SITES, ALERTS, REPORT, {"hk": "Hoàn Kiếm", "bd": "Ba Đình"})
    assert [(r.key, r.label, r.online, r.total, r.offline, r.alerts, r.ratings, r.share)
            for r in rows] == [
        ("region:bd", "Ba Đình", 0, 2, 2, 0, 0, None),
        ("site:bd-01", "Phường Ba Đình", 0, 2, 2, 0, 0, None),
        ("region:hk", "Hoàn Kiếm", 2, 4, 2, 2, 4, 0.75),
        ("site:hk-02", "Bưu điện Hàng Bài", 1, 1, 0, 0, 1, 0.0),
        ("site:hk-01", "Một cửa Hoàn Kiếm", 1, 3, 2, 2, 3, 1.0),
        ("region:", "(no region)", 0, 0, 0, 0, 0, None),
        ("site:x-1", "Nowhere", 0, 0, 0, 0, 0, None),
    ]
    assert rows[0].is_region and not rows[1].is_region and rows[1].ident == "bd-01"


def test_a_region_not_yet_named_shows_its_id():
    rows = view.overview_rows(SITES[3:], [], None, {})
    assert rows[0].label == "bd"


NODES = {
    "a": {"id": "hk-01-c1", "site_id": "hk-01", "counter": "1", "state": "online",
          "agent_version": "0.2.0", "region_id": "hk"},
    "b": {"id": "hk-01-c2", "site_id": "hk-01", "counter": "2", "state": "offline",
          "agent_version": "0.1.0", "region_id": "hk"},
    "c": {"id": "bd-01-loa", "site_id": "bd-01", "counter": None, "state": "online",
          "agent_version": None, "kind": "soundbox", "region_id": "bd"},
}
ALERT_KINDS = {"hk-01-c2": ["node-offline"]}


@pytest.mark.parametrize("text, shown", [
    ("", "abc"),
    ("site:hk-01", "ab"),
    ("SITE:HK-01 state:online", "a"),
    ("state:off", "b"),
    ("version:0.1", "b"),
    ("kind:soundbox", "c"),
    ("alert:yes", "b"),
    ("alert:no", "ac"),
    ("alert:node-off", "b"),
    ("c2", "b"),
    ("hk 0.2", "a"),
    ("site:", "abc"),
    ("region:hk", "ab"),
], ids=["empty", "site", "two-terms", "state-prefix", "version-prefix", "kind", "alert-yes",
        "alert-no", "alert-kind", "word", "words", "empty-term", "region"])
def test_the_node_filter(text, shown):
    node_filter = view.NodeFilter.parse(text)
    assert "".join(k for k, n in NODES.items()
                   if node_filter.matches(n, ALERT_KINDS.get(n["id"], []))) == shown


def test_an_unknown_filter_field_is_named():
    with pytest.raises(ValueError, match="filter: unknown field 'colour'"):
        view.NodeFilter.parse("colour:red")


def test_alerts_by_node_leaves_out_site_alerts():
    assert view.alerts_by_node(ALERTS) == {"a": ["node-offline"], "b": ["peripheral-faulty"],
                                           "n-free": ["clock"]}
    assert view.alerts_by_node([{"node_id": None, "kind": "site-quiet"}]) == {}


def test_job_progress_from_the_server_counts_or_from_the_nodes():
    counted = view.job_progress({"progress": {"total": 5, "done": 2, "failed": 1, "expired": 0,
                                              "pending": 2}})
    assert (counted.total, counted.finished, counted.text()) == (
        5, 0.6, "2 done, 1 failed, 2 pending")
    from_nodes = view.job_progress({"nodes": [{"state": "done"}, {"state": "expired"},
                                              {"state": "weird"}]})
    assert (from_nodes.done, from_nodes.expired, from_nodes.pending) == (1, 1, 1)
    assert view.Progress().finished is None


@pytest.mark.parametrize("selector, target", [
    ({"all": True}, "whole fleet"), ({"site": "hk-01"}, "site hk-01"),
    ({"region": "hk"}, "region hk"), ({"nodes": ["n1"]}, "n1"), ({"nodes": ["a", "b"]}, "2 nodes"),
    ({}, "—"),
], ids=["all", "site", "region", "one", "many", "none"])
def test_job_target(selector, target):
    assert view.job_target({"selector": selector}) == target


def test_log_lines_come_from_the_output_only():
    assert view.log_lines({"output": {"lines": ["a", "b"], "truncated": False}}) == ["a", "b"]
    assert view.log_lines({"output": None, "detail": "12 line(s)"}) == []


def test_health_facts_show_what_was_reported_only():
    facts = dict(view.health_facts({
        "uptime_s": 3700, "outbox_pending": 2, "disk_free_mb": 150.0, "disk_total_mb": 7000.0,
        "clock_synced": False, "alarms": ["disk-full"], "cpu_percent": None,
    }))
    assert facts == {"agent up": "1 h", "outbox": "2 events waiting",
                     "disk": "150 of 7000 MB free", "clock": "NOT synchronised",
                     "alarms": "disk-full"}
    assert view.health_facts(None) == []


def test_config_facts_say_desired_against_reported():
    facts = dict(view.config_facts({
        "version": "sha256:0123456789abcdef0123", "reported_version": "fedcba9876543210",
        "reported_state": "rejected", "reported_reason": "peripherals[pad-1].scale: too big",
        "in_sync": False, "layers": ["fleet", "site:hk-01"],
    }))
    assert facts == {"desired": "0123456789ab", "layers": "fleet, site:hk-01",
                     "reported": "fedcba987654 (rejected)",
                     "in sync": "NO", "reason": "peripherals[pad-1].scale: too big"}


def test_the_drift_term_matches_nodes_behind_their_desired_config():
    behind, current = NODES["a"], NODES["b"]
    assert view.NodeFilter.parse("drift:yes").matches(behind, drifting=True)
    assert not view.NodeFilter.parse("drift:yes").matches(current, drifting=False)
    assert view.NodeFilter.parse("drift:no").matches(current, drifting=False)
