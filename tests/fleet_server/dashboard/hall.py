"""A morning at a reception hall, written straight into the store, for the dashboard
tests and the committed screenshot (docs/dashboard.png).

Site ``hk-01`` ("Bộ phận Một cửa quận Hoàn Kiếm") has counters 1 to 6 and
``thu-ngan`` (named "Thu ngân"), at ``NOW`` (10:05 in Hanoi):

- desks 1, 2, 3, 5 are online and called tickets today: open;
- desk 4 called tickets, then went offline: closed;
- desk 6 is online but has neither called nor been rated today: closed;
- the cashier's desk is online, never called, but its pad was tapped: open;
- ``hall-tv`` (enrolled as a dashboard, placed at counter 1) is the hall's screen:
  it does not make counter 1 open or closed.

Calls: `CALLS` today (newest last), and one yesterday that must not show.
Taps today: `TAPS` (rating, scale) at desks, plus one misuse-flagged tap and
one from yesterday, neither counted. Site ``bd-01`` has one counter and node,
for the tests of what a token of one site may not read of another.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from itertools import count

import sqlalchemy as sa

from fleet_server.schema import announcements, counters, enrollment_codes, events, nodes, sites

SITE = "hk-01"
OTHER_SITE = "bd-01"
SITE_NAME = "Bộ phận Một cửa quận Hoàn Kiếm"
NOW = datetime(2026, 11, 25, 3, 5, tzinfo=timezone.utc)  # 10:05 in Hanoi

DESKS = {  # counter -> (node, state)
    "1": ("hk-desk-1", "online"),
    "2": ("hk-desk-2", "online"),
    "3": ("hk-desk-3", "online"),
    "4": ("hk-desk-4", "offline"),
    "5": ("hk-desk-5", "online"),
    "6": ("hk-desk-6", "online"),
    "thu-ngan": ("hk-cashier", "online"),
}
HALL_TV = "hk-hall-tv"

CALLS = [  # (ticket, counter), oldest first, 2 minutes apart up to NOW
    ("1001", "1"), ("1002", "2"), ("2001", "4"), ("1003", "3"), ("1004", "1"),
    ("2002", "4"), ("1005", "5"), ("1006", "2"), ("1007", "3"), ("1008", "1"),
    ("1009", "5"), ("1010", "2"), ("1011", "3"), ("1012", "5"), ("1013", "1"),
]
PRIORITY = {"1012"}
TAPS = [(5, 5)] * 58 + [(4, 5)] * 21 + [(3, 5)] * 6 + [(2, 5)] * 3 + [(1, 5)] * 2
"""90 counted taps, 79 satisfied (the top two of five buttons): 88 %."""
OPEN = {"1", "2", "3", "5", "thu-ngan"}


def seed(conn: sa.Connection, now: datetime = NOW) -> None:
    """Write the hall with its day ending at ``now`` (calls and taps move with it)."""
    start = now - timedelta(minutes=40)  # taps from 09:25 in Hanoi, 20 s apart
    conn.execute(sites.insert(), [
        {"id": SITE, "name": SITE_NAME, "kind": "reception"},
        {"id": OTHER_SITE, "name": "Phường Ba Đình", "kind": "commune"},
    ])
    conn.execute(counters.insert(), [
        *({"site_id": SITE, "id": c, "name": "Thu ngân" if c == "thu-ngan" else None}
          for c in DESKS),
        {"site_id": OTHER_SITE, "id": "1", "name": None},
    ])
    placed = [(node, SITE, c, state, "counter") for c, (node, state) in DESKS.items()]
    placed += [(HALL_TV, SITE, "1", "online", "dashboard"),
               ("bd-desk-1", OTHER_SITE, "1", "online", "counter")]
    conn.execute(nodes.insert(), [
        {"id": node, "site_id": site, "counter": c, "state": state}
        for node, site, c, state, _ in placed
    ])
    conn.execute(enrollment_codes.insert(), [
        {"secret_hash": f"{i:064x}", "node_id": node, "site_id": site, "counter": c,
         "kind": kind, "created_by": "tech", "created_at": start - timedelta(days=9),
         "expires_at": start - timedelta(days=8), "used_at": start - timedelta(days=9)}
        for i, (node, site, c, _, kind) in enumerate(placed)
    ])
    step = timedelta(minutes=2)
    calls = [(ticket, c, now - step * (len(CALLS) - 1 - i)) for i, (ticket, c) in enumerate(CALLS)]
    calls.append(("0999", "6", now - timedelta(days=1)))  # yesterday: not today's
    calls.sort(key=lambda call: call[2])
    conn.execute(announcements.insert(), [
        {"id": f"call-{i}", "site_id": SITE, "kind": "queue-call", "counter": c, "ticket": ticket,
         "request": {"kind": "queue-call", "ticket": ticket, "counter": c, "service": None,
                     "priority": ticket in PRIORITY, "officer": None},
         "token_name": "queue-hk", "created_at": at, "expires_at": at + timedelta(minutes=2),
         "nodes": [{"node": DESKS[c][0], "state": "online", "reason": "counter"}]}
        for i, (ticket, c, at) in enumerate(calls)
    ])
    seq = count(1)
    desks = ["hk-desk-1", "hk-desk-2", "hk-desk-3", "hk-desk-5", "hk-cashier"]
    taps = [(desks[i % len(desks)], rating, scale, start + timedelta(seconds=20 * i), None)
            for i, (rating, scale) in enumerate(TAPS)]
    taps.append(("hk-desk-1", 1, 5, now - timedelta(minutes=1), True))  # misuse-flagged
    taps.append(("hk-desk-6", 1, 5, now - timedelta(days=1), None))  # yesterday
    conn.execute(events.insert(), [
        {"node_id": node, "event_id": f"e{n:05d}", "seq": n, "kind": "rating-tap", "at": at,
         "received_at": at, "clock_synced": True, "counter": None, "rating": rating,
         "scale": scale, "suspect": suspect, "detail": {}}
        for (node, rating, scale, at, suspect), n in zip(taps, seq)
    ])
