"""A reception hall for the announcement tests, written straight into the store.

Site ``hk-01`` has counters 1, 2, 3, 5 and ``thu-ngan`` (the cashier):

- ``counter5`` and ``counter2`` are counter-desk nodes at counters 5 and 2;
- ``soundbox`` (enrolled as a soundbox, placed at counter 1) and ``dashboard``
  (enrolled as a dashboard, counter 1) serve the hall;
- ``cashier`` is the counter node at ``thu-ngan``;
- ``old5`` was at counter 5 and is retired;
- counter 3 has no node.

Site ``bd-01`` has counter 1 with its own soundbox ``bd_soundbox``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

import sqlalchemy as sa

from fleet_server.schema import counters, enrollment_codes, nodes, sites

T0 = datetime(2026, 11, 25, 2, 0, tzinfo=timezone.utc)  # 09:00 in Hanoi


@dataclass(frozen=True)
class Hall:
    counter5: str
    counter2: str
    soundbox: str
    dashboard: str
    cashier: str
    old5: str
    bd_soundbox: str


def seed_hall(conn: sa.Connection, name: Callable[[str], str]) -> Hall:
    """Write the hall; ``name(role)`` gives each node's id (a node id with broker
    credentials for those a test listens as)."""
    hall = Hall(*(name(role) for role in Hall.__dataclass_fields__))
    conn.execute(sites.insert(), [
        {"id": "hk-01", "name": "Một cửa Hoàn Kiếm", "kind": "reception"},
        {"id": "bd-01", "name": "Phường Ba Đình", "kind": "commune"},
    ])
    conn.execute(counters.insert(), [
        *({"site_id": "hk-01", "id": c, "name": None} for c in ("1", "2", "3", "5", "thu-ngan")),
        {"site_id": "bd-01", "id": "1", "name": None},
    ])
    placed = [
        (hall.counter5, "hk-01", "5", "online", "counter"),
        (hall.counter2, "hk-01", "2", "online", "counter"),
        (hall.soundbox, "hk-01", "1", "online", "soundbox"),
        (hall.dashboard, "hk-01", "1", "offline", "dashboard"),
        (hall.cashier, "hk-01", "thu-ngan", "online", "counter"),
        (hall.old5, "hk-01", "5", "retired", "counter"),
        (hall.bd_soundbox, "bd-01", "1", "online", "soundbox"),
    ]
    conn.execute(nodes.insert(), [
        {"id": node, "site_id": site, "counter": counter, "state": state}
        for node, site, counter, state, _ in placed
    ])
    conn.execute(enrollment_codes.insert(), [
        {"secret_hash": f"{i:064x}", "node_id": node, "site_id": site, "counter": counter,
         "kind": kind, "created_by": "tech", "created_at": T0 - timedelta(days=2),
         "expires_at": T0 - timedelta(days=1), "used_at": T0 - timedelta(days=2)}
        for i, (node, site, counter, _, kind) in enumerate(placed)
    ])
    # The soundbox was once enrolled as a counter node; its latest enrollment counts.
    conn.execute(enrollment_codes.insert().values(
        secret_hash="f" * 64, node_id=hall.soundbox, site_id="hk-01", counter="1",
        kind="counter", created_by="tech", created_at=T0 - timedelta(days=9),
        expires_at=T0 - timedelta(days=8), used_at=T0 - timedelta(days=9),
    ))
    return hall


@dataclass
class RecordingLink:
    """A broker link that records what it is asked to publish (the interface of
    fleet_server.link.ServerLink that announcing uses), for store-level tests."""

    published: list[tuple[str, Any, Any]] = field(default_factory=list)
    connected: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.connected.set()

    def publish(self, node: str, channel: Any, message: Any, *, retain: bool = False) -> None:
        assert not retain
        self.published.append((node, channel, message))
