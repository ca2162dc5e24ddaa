"""A small registry shaped like Hanoi, and a way to put taps in it, on both backends.

Regions: hk "Chi nhánh Hoàn Kiếm" (sites cua-nam, hang-bac) and dd "Chi nhánh
Đống Đa" (site van-mieu). Nodes: cn-1 (cua-nam, counter 1), cn-2 (cua-nam,
counter 2), hb-1 (hang-bac, 1), vm-1 (van-mieu, 1). Counter 1 of cua-nam is
registered as "Quầy 1 – Hộ tịch"; the others are not.
"""

from __future__ import annotations

import itertools
from datetime import date, datetime, timedelta, timezone
from typing import Callable, Iterator

import pytest
import sqlalchemy as sa

from fleet_server import store
from fleet_server.reports import Report, ReportQuery, satisfaction_report
from fleet_server.schema import counters, regions, sites

UTC = timezone.utc
HANOI = timezone(timedelta(hours=7))

REGIONS = {"hk": "Chi nhánh Hoàn Kiếm", "dd": "Chi nhánh Đống Đa"}
SITES = {"cua-nam": ("Phường Cửa Nam", "hk"), "hang-bac": ("Phường Hàng Bạc", "hk"),
         "van-mieu": ("Phường Văn Miếu", "dd")}
NODES = {"cn-1": ("cua-nam", "1"), "cn-2": ("cua-nam", "2"), "hb-1": ("hang-bac", "1"),
         "vm-1": ("van-mieu", "1")}

_event_ids = itertools.count(1)


def local(day: date, hour: int = 10, minute: int = 0, second: int = 0) -> datetime:
    """A Hanoi wall-clock moment, as the aware datetime a node would send."""
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=HANOI)


def tap(node: str, at: datetime, rating: int, scale: int = 5, *, suspect: bool | None = None,
        counter: str | None = None, clock_synced: bool | None = True) -> dict:
    """An events row for a rating tap, stored in UTC as ingest stores it."""
    n = next(_event_ids)
    at = at.astimezone(UTC)
    return {
        "node_id": node, "event_id": f"ev{n:08d}", "seq": n, "kind": "rating-tap", "at": at,
        "received_at": at, "clock_synced": clock_synced, "counter": counter,
        "rating": rating, "scale": scale, "suspect": suspect,
        "detail": {"kind": "rating-tap", "rating": rating, "scale": scale},
    }


def taps(node: str, at: datetime, *, satisfied: int, unsatisfied: int, **kwargs) -> list[dict]:
    """``satisfied`` taps of 5/5 and ``unsatisfied`` of 2/5, a second apart."""
    ratings = [5] * satisfied + [2] * unsatisfied
    return [tap(node, at + timedelta(seconds=i), r, **kwargs) for i, r in enumerate(ratings)]


@pytest.fixture
def engine(db_url: str) -> Iterator[sa.Engine]:
    """A store at the newest schema holding the registry above: SQLite, then PostgreSQL."""
    engine = store.connect(db_url)
    with engine.begin() as conn:
        conn.execute(regions.insert(), [{"id": k, "name": v} for k, v in REGIONS.items()])
        for site, (name, region) in SITES.items():
            store.add_site(conn, site, name, "commune")
            conn.execute(sites.update().where(sites.c.id == site).values(region_id=region))
        for node, (site, counter) in NODES.items():
            store.assign_node(conn, node, site, counter)
        conn.execute(counters.insert().values(site_id="cua-nam", id="1", name="Quầy 1 – Hộ tịch"))
    yield engine
    engine.dispose()


@pytest.fixture
def add_taps(engine: sa.Engine) -> Callable[[list[dict]], None]:
    def add(rows: list[dict]) -> None:
        with engine.begin() as conn:
            assert store.insert_events(conn, rows) == len(rows)

    return add


@pytest.fixture
def report(engine: sa.Engine) -> Callable[..., Report]:
    """``report(first, last, **query)``: the report from the store."""

    def run(first_day: date, last_day: date, **query) -> Report:
        with engine.connect() as conn:
            return satisfaction_report(conn, ReportQuery(first_day, last_day, **query))

    return run
