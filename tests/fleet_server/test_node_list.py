"""`rpfleet server nodes`: the listing, filtered by site or region, and its table."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fleet_server import registry, store
from fleet_server.node_list import NodeLine, PeripheralLine, ago, list_nodes, render_nodes
from fleet_server.registry import SiteRow

NOW = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    "seconds, expected",
    [(0, "0s ago"), (59, "59s ago"), (60, "1m ago"), (3599, "59m ago"), (7200, "2h ago"),
     (3 * 86400 + 5, "3d ago"), (-5, "0s ago")],
    ids=["now", "seconds", "a-minute", "minutes", "hours", "days", "clock-skew"],
)
def test_ago_says_how_long_in_the_largest_whole_unit(seconds, expected):
    assert ago(NOW - timedelta(seconds=seconds), NOW) == expected


def test_a_node_never_heard_from_was_never_seen():
    assert ago(None, NOW) == "never"


def test_the_table_lines_up_and_shows_each_peripheral_state():
    lines = [
        NodeLine("phuong-ba-dinh-q1", "phuong-ba-dinh", "1", "online", NOW - timedelta(seconds=4),
                 (PeripheralLine("pad-1", "rating-pad", "ok"),
                  PeripheralLine("scan-1", "scanner", "missing"))),
        NodeLine("spare", None, None, "unknown", None, ()),
    ]
    table = render_nodes(lines, NOW).splitlines()
    assert table[0].index("state") == table[1].index("online")
    assert table[1].endswith("4s ago     pad-1 ok, scan-1 missing")
    assert table[2].split() == ["spare", "-", "-", "unknown", "never", "-"]


def test_nodes_are_listed_by_site_unassigned_last_and_can_be_filtered(db_url):
    engine = store.connect(db_url)
    with engine.begin() as conn:
        registry.import_sites(conn, [
            SiteRow(2, "b-site", "B", "commune", "r1", "Region 1"),
            SiteRow(3, "a-site", "A", "agency", "r2", "Region 2"),
        ])
        store.assign_node(conn, "n3", "b-site", "1")
        store.assign_node(conn, "n2", "a-site", "1")
        store.assign_node(conn, "n1", "b-site", "2")
        store.update_node(conn, "n0", state="online")
        store.sync_peripherals(conn, "n1", [{"id": "pad-1", "kind": "rating-pad", "state": "ok"}], NOW)
        every = list_nodes(conn)
        at_b = list_nodes(conn, site="b-site")
        in_r2 = list_nodes(conn, region="r2")
    engine.dispose()
    assert [(n.node, n.site) for n in every] == [("n2", "a-site"), ("n1", "b-site"), ("n3", "b-site"),
                                                 ("n0", None)]
    assert [n.node for n in at_b] == ["n1", "n3"]
    assert at_b[0].peripherals == (PeripheralLine("pad-1", "rating-pad", "ok"),)
    assert [n.node for n in in_r2] == ["n2"]
