"""Satisfaction per site and per region (fleet_server.summary)."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

from fleet_server import registry, store
from fleet_server.registry import SiteRow
from fleet_server.summary import UNASSIGNED, SiteSummary, region_summaries, render, site_summaries

AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def test_sites_add_up_per_region_with_sites_in_no_region_last():
    per_site = [
        SiteSummary("a", "A", 10, 9, 1, 2, "r1", "Chi nhánh Ba Đình"),
        SiteSummary("b", "B", 5, 1, 2, 2, "r1", "Chi nhánh Ba Đình"),
        SiteSummary("c", "C", 0, 0, 0, 1, "r0", "Chi nhánh Hoàn Kiếm"),
        SiteSummary(UNASSIGNED, UNASSIGNED, 4, 4, 1, 1),
    ]
    regions = region_summaries(per_site)
    assert [(r.region, r.name, r.sites, r.taps, r.satisfied, r.nodes_online, r.nodes_total)
            for r in regions] == [
        ("r0", "Chi nhánh Hoàn Kiếm", 1, 0, 0, 0, 1),
        ("r1", "Chi nhánh Ba Đình", 2, 15, 10, 3, 4),
        (UNASSIGNED, UNASSIGNED, 1, 4, 4, 1, 1),
    ]
    table = render(regions, per="region").splitlines()
    assert table[0].startswith("region ")
    assert table[2].startswith("Chi nhánh Ba Đình") and table[2].endswith("67%")
    assert table[-1].startswith("all regions") and table[-1].endswith("74%")


def test_long_site_names_are_not_cut_short():
    name = "Điểm tiếp nhận số 1 – Chi nhánh Hoàn Kiếm"
    assert name in render([SiteSummary("tn", name, 1, 1, 1, 1)])


def test_site_summaries_carry_the_region_of_each_site(db_url):
    engine = store.connect(db_url)
    with engine.begin() as conn:
        registry.import_sites(conn, [SiteRow(2, "phuong-ba-dinh", "Phường Ba Đình", "commune",
                                             "cn-ba-dinh", "Chi nhánh Ba Đình")])
        store.assign_node(conn, "bd-q1", "phuong-ba-dinh", "1")
        store.update_node(conn, "stray", state="online")
        store.insert_events(conn, [
            {"node_id": "bd-q1", "event_id": uuid.uuid4().hex, "seq": n, "kind": "rating-tap", "at": AT,
             "received_at": AT, "rating": rating, "scale": 5, "detail": {}}
            for n, rating in enumerate((5, 4, 1), start=1)
        ])
        per_site = site_summaries(conn)
    engine.dispose()
    assert [(s.site, s.region, s.region_name, s.taps, s.satisfied) for s in per_site] == [
        ("phuong-ba-dinh", "cn-ba-dinh", "Chi nhánh Ba Đình", 3, 2),
        (UNASSIGNED, None, None, 0, 0),
    ]
