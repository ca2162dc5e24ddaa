"""The peripherals table follows each node's latest health (store.sync_peripherals), on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleet_server import store
from fleet_server.store import as_utc
from fleet_server.schema import peripherals

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
PAD = {"id": "pad-1", "kind": "rating-pad", "state": "ok"}
SCANNER = {"id": "scanner-1", "kind": "scanner", "state": "missing", "detail": "not plugged in"}


@pytest.fixture
def engine(db_url):
    engine = store.connect(db_url)
    with engine.begin() as conn:
        store.update_node(conn, "bd-q1", state="online")
        store.update_node(conn, "bd-q2", state="online")
    yield engine
    engine.dispose()


def report(engine: sa.Engine, node: str, reported: list[dict], at: datetime) -> None:
    with engine.begin() as conn:
        store.sync_peripherals(conn, node, reported, at)


def stored(engine: sa.Engine, node: str = "bd-q1") -> dict[str, tuple]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(peripherals).where(peripherals.c.node_id == node))
        return {r.id: (r.kind, r.state, r.detail, as_utc(r.updated_at)) for r in rows}


def test_reported_peripherals_are_stored(engine):
    report(engine, "bd-q1", [PAD, SCANNER], T0)
    assert stored(engine) == {
        "pad-1": ("rating-pad", "ok", None, T0),
        "scanner-1": ("scanner", "missing", "not plugged in", T0),
    }


def test_updated_at_moves_only_when_the_state_changes(engine):
    report(engine, "bd-q1", [PAD, SCANNER], T0)
    later, latest = T0 + timedelta(minutes=1), T0 + timedelta(minutes=2)
    report(engine, "bd-q1", [PAD, dict(SCANNER, state="ok", detail=None)], later)
    report(engine, "bd-q1", [PAD, dict(SCANNER, state="ok", detail=None)], latest)
    assert stored(engine) == {
        "pad-1": ("rating-pad", "ok", None, T0),
        "scanner-1": ("scanner", "ok", None, later),
    }


def test_a_changed_detail_alone_is_a_change(engine):
    report(engine, "bd-q1", [SCANNER], T0)
    report(engine, "bd-q1", [dict(SCANNER, detail="unplugged at 08:01")], T0 + timedelta(seconds=5))
    assert stored(engine)["scanner-1"][2:] == ("unplugged at 08:01", T0 + timedelta(seconds=5))


def test_a_peripheral_no_longer_reported_is_removed_and_other_nodes_are_untouched(engine):
    report(engine, "bd-q1", [PAD, SCANNER], T0)
    report(engine, "bd-q2", [PAD], T0)
    report(engine, "bd-q1", [PAD], T0 + timedelta(minutes=1))
    assert set(stored(engine)) == {"pad-1"}
    report(engine, "bd-q1", [], T0 + timedelta(minutes=2))
    assert stored(engine) == {}
    assert set(stored(engine, "bd-q2")) == {"pad-1"}
