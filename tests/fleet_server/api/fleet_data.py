"""A small fleet written straight into the store, for the API to read back."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from fleet_server import store
from fleet_server.schema import (
    alerts,
    counters,
    events,
    ingest_errors,
    peripherals,
    regions,
    sites,
)

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=timezone.utc)


def health(node: str, outbox_pending: int) -> dict:
    return {
        "v": "1.1", "node": node, "at": T0.isoformat(), "uptime_s": 60.0,
        "outbox_pending": outbox_pending, "peripherals": [], "alarms": [],
    }


def seed(conn: sa.Connection) -> None:
    """Two regions, three sites, five nodes, peripherals, alerts and rating taps.

    - hk-01 (reception, region hk): nodes hk-01-c1 online (outbox 2), hk-01-c2 offline (outbox 5)
    - hk-02 (agency, region hk): node hk-02-c1 online, no health yet
    - bd-01 (commune, region bd): no nodes
    - n-free: a node at no site, unknown state; n-gone: retired (outbox 9, stale)
    """
    conn.execute(regions.insert(), [
        {"id": "hk", "name": "Hoàn Kiếm"}, {"id": "bd", "name": "Ba Đình"},
    ])
    conn.execute(sites.insert(), [
        {"id": "hk-01", "name": "Một cửa Hoàn Kiếm", "kind": "reception", "region_id": "hk",
         "address": "1 Lê Lai"},
        {"id": "hk-02", "name": "Bưu điện Hàng Bài", "kind": "agency", "region_id": "hk",
         "address": None},
        {"id": "bd-01", "name": "Phường Ba Đình", "kind": "commune", "region_id": "bd",
         "address": None},
    ])
    conn.execute(counters.insert(), [
        {"site_id": "hk-01", "id": "1", "name": "Quầy 1"},
        {"site_id": "hk-01", "id": "2", "name": None},
    ])
    for node, site, counter, state, outbox in [
        ("hk-01-c1", "hk-01", "1", "online", 2),
        ("hk-01-c2", "hk-01", "2", "offline", 5),
        ("hk-02-c1", "hk-02", None, "online", None),
        ("n-free", None, None, "unknown", None),
        ("n-gone", None, None, "retired", 9),
    ]:
        values = {"site_id": site, "counter": counter, "state": state, "state_at": T0,
                  "last_seen": T0, "agent_version": "0.1.0"}
        if outbox is not None:
            values |= {"last_health": health(node, outbox), "last_health_at": T0}
        store.update_node(conn, node, **values)
    conn.execute(peripherals.insert(), [
        {"node_id": "hk-01-c1", "id": "usb-pad-A1", "kind": "rating-pad", "state": "ok",
         "detail": None, "updated_at": T0},
        {"node_id": "hk-01-c1", "id": "usb-printer-P", "kind": "ticket-printer", "state": "faulty",
         "detail": "paper out", "updated_at": T0},
    ])
    conn.execute(alerts.insert(), [
        {"id": 1, "kind": "node-offline", "subject": "hk-01-c2", "severity": "warning",
         "opened_at": T0, "closed_at": None, "detail": "silent", "node_id": "hk-01-c2",
         "site_id": "hk-01"},
        {"id": 2, "kind": "peripheral-faulty", "subject": "hk-01-c1/usb-printer-P",
         "severity": "warning",
         "opened_at": T0 + timedelta(minutes=5), "closed_at": None, "detail": "paper out",
         "node_id": "hk-01-c1", "site_id": "hk-01"},
        {"id": 3, "kind": "node-offline", "subject": "hk-01-c1", "severity": "warning",
         "opened_at": T0 - timedelta(days=1), "closed_at": T0 - timedelta(hours=20), "detail": None,
         "node_id": "hk-01-c1", "site_id": "hk-01"},
    ])
    # hk-01: 4 taps, 3 satisfied (5/5, 4/5, 3/3 yes; 2/5 no); hk-02: 1 tap, not satisfied.
    taps = [("hk-01-c1", 5, 5), ("hk-01-c1", 4, 5), ("hk-01-c2", 3, 3), ("hk-01-c2", 2, 5),
            ("hk-02-c1", 1, 5)]
    conn.execute(events.insert(), [
        {"node_id": node, "event_id": f"e{i}", "seq": i, "kind": "rating-tap", "at": T0,
         "received_at": T0, "rating": rating, "scale": scale, "suspect": False,
         "detail": {"kind": "rating-tap", "pad": "p", "rating": rating, "scale": scale}}
        for i, (node, rating, scale) in enumerate(taps)
    ])
    conn.execute(ingest_errors.insert(), [
        {"node_id": "hk-01-c1", "reason": "not-json", "count": 3, "last_at": T0},
        {"node_id": "hk-02-c1", "reason": "not-json", "count": 1, "last_at": T0},
        {"node_id": "hk-02-c1", "reason": "schema", "count": 2, "last_at": T0},
    ])
