"""Alerts in the store, on SQLite and PostgreSQL: each kind opens once, closes when its
cause clears and stays as history; satisfaction from stored taps; concurrent rounds."""

from __future__ import annotations

import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa

from fleet_server import alert_store, store
from fleet_server.alert_store import AlertEvaluator
from fleet_server.alerts import Finding, Plan
from fleet_server.ingest import Ingest
from fleet_server.schema import alerts
from fleet_server.settings import AlertSettings
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Event, EventBatch, Health, PeripheralHealth, RatingTap, Status

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)  # 10:00 in Hanoi
RULES = AlertSettings()


@pytest.fixture
def engine(db_url):
    engine = store.connect(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def ingest(engine):
    return Ingest(engine, publish_ack=lambda node, ack: None)


def rows(engine, kind: str | None = None) -> list[sa.Row]:
    query = sa.select(alerts).order_by(alerts.c.id)
    if kind:
        query = query.where(alerts.c.kind == kind)
    with engine.connect() as conn:
        return list(conn.execute(query))


def health(node: str, at: datetime, **values) -> tuple[str, bytes, datetime]:
    fields = dict(uptime_s=7200, system_uptime_s=7200, outbox_pending=0, disk_total_mb=16000,
                  disk_free_mb=9000, clock_synced=True,
                  peripherals=[PeripheralHealth(id="pad-1", kind="rating-pad", state="ok")])
    message = Health(node=node, at=at, **(fields | values))
    return topic(node, Channel.HEALTH), message.to_json(), at


def status(node: str, state: str, at: datetime) -> tuple[str, bytes, datetime]:
    return topic(node, Channel.STATUS), Status(node=node, state=state).to_json(), at


BAD_HEALTH = {
    "peripheral-missing": dict(peripherals=[PeripheralHealth(id="pad-1", kind="rating-pad", state="missing")]),
    "peripheral-failed": dict(peripherals=[PeripheralHealth(id="pad-1", kind="rating-pad", state="failed")]),
    "disk-low": dict(disk_free_mb=50),
    "clock-unsynced": dict(clock_synced=False),
    "node-alarm": dict(alarms=["disk-full"]),
}


@pytest.mark.parametrize("kind", sorted(BAD_HEALTH))
def test_a_health_alert_opens_once_closes_when_cleared_and_stays_as_history(engine, ingest, kind):
    evaluator = AlertEvaluator(engine, RULES)
    ingest.handle([health("a-node", NOW, **BAD_HEALTH[kind])])
    assert evaluator.run(NOW).opened == [(kind, rows(engine)[0].subject)]
    ingest.handle([health("a-node", NOW + timedelta(seconds=30), **BAD_HEALTH[kind])])
    assert evaluator.run(NOW + timedelta(seconds=30)).opened == []  # still the one alert
    assert [r.closed_at for r in rows(engine)] == [None]

    ingest.handle([health("a-node", NOW + timedelta(seconds=60))])
    closed_at = NOW + timedelta(seconds=60)
    assert len(evaluator.run(closed_at).closed) == 1
    (row,) = rows(engine)
    assert (row.kind, row.node_id, alert_store.aware(row.closed_at)) == (kind, "a-node", closed_at)


def test_an_alert_that_comes_back_opens_a_new_row(engine, ingest):
    evaluator = AlertEvaluator(engine, RULES)
    for minute, free in enumerate([50, 9000, 40]):
        at = NOW + timedelta(minutes=minute)
        ingest.handle([health("a-node", at, disk_free_mb=free)])
        evaluator.run(at)
    assert [(r.kind, r.closed_at is None) for r in rows(engine)] == [("disk-low", False), ("disk-low", True)]


def test_node_offline_opens_after_the_grace_and_closes_when_it_is_back(engine, ingest):
    evaluator = AlertEvaluator(engine, RULES)
    ingest.handle([status("a-node", "online", NOW), status("a-node", "offline", NOW + timedelta(seconds=50))])
    assert evaluator.run(NOW + timedelta(seconds=169)).opened == []  # offline for 119 s: a reboot
    assert evaluator.run(NOW + timedelta(seconds=170)).opened == [("node-offline", "a-node")]
    assert evaluator.run(NOW + timedelta(seconds=400)).opened == []
    ingest.handle([status("a-node", "online", NOW + timedelta(seconds=500))])
    assert evaluator.run(NOW + timedelta(seconds=501)).closed == [("node-offline", "a-node")]


def test_outbox_backlog_opens_when_high_and_growing_and_closes_when_drained(engine, ingest):
    evaluator = AlertEvaluator(engine, RULES)
    for seconds, pending, opened, closed in [
        (0, 600, [], []),  # high, but is it growing? not known yet
        (30, 550, [], []),  # draining
        (60, 700, [("outbox-backlog", "a-node")], []),
        (90, 700, [], []),
        (120, 20, [], [("outbox-backlog", "a-node")]),
    ]:
        at = NOW + timedelta(seconds=seconds)
        ingest.handle([health("a-node", at, outbox_pending=pending, outbox_oldest_age_s=30)])
        applied = evaluator.run(at)
        assert (applied.opened, applied.closed) == (opened, closed), seconds


# ---- satisfaction from stored taps ----------------------------------------


def taps(node: str, ratings: list[int], *, suspect: str | None = None, at: datetime = NOW):
    events = [
        Event(id=uuid.uuid4().hex, seq=i + 1, at=at - timedelta(minutes=1),
              detail=RatingTap(pad="pad-1", rating=r, scale=5, suspect=suspect))
        for i, r in enumerate(ratings)
    ]
    return [
        (topic(node, Channel.EVENTS), EventBatch(node=node, events=events[i:i + 500]).to_json(), at)
        for i in range(0, len(events), 500)
    ]


@pytest.fixture
def sites(engine):
    with engine.begin() as conn:
        for site_id, node in (("agency-7", "agency-node"), ("branch-1", "branch-node")):
            store.add_site(conn, site_id, site_id, "agency")
            store.assign_node(conn, node, site_id, "1")


def test_three_unhappy_taps_at_a_quiet_agency_do_not_alert_but_a_fall_at_a_busy_branch_does(
    engine, ingest, sites
):
    ingest.handle(taps("agency-node", [5] * 9 + [1] * 3))  # 75 %, upper bound 0.91
    ingest.handle(taps("branch-node", [5] * 240 + [2] * 60))  # 80 %, upper bound 0.84
    applied = AlertEvaluator(engine, RULES).run(NOW)
    assert applied.opened == [("satisfaction-low", "branch-1")]
    (row,) = rows(engine)
    assert row.site_id == "branch-1" and "240 of 300" in row.detail


def test_misuse_flagged_taps_do_not_count(engine, ingest, sites):
    ingest.handle(taps("branch-node", [5] * 240 + [5, 4, 1]))
    ingest.handle(taps("branch-node", [1] * 60, suspect="burst: 60 presses in 20 s"))
    assert AlertEvaluator(engine, RULES).run(NOW).opened == []


def test_the_satisfaction_alert_closes_when_the_day_recovers_or_ends(engine, ingest, sites):
    evaluator = AlertEvaluator(engine, RULES)
    ingest.handle(taps("branch-node", [5] * 240 + [2] * 60))
    assert evaluator.run(NOW).opened == [("satisfaction-low", "branch-1")]
    ingest.handle(taps("branch-node", [5] * 700))  # 940 of 1000 by the afternoon
    assert evaluator.run(NOW + timedelta(hours=5)).closed == [("satisfaction-low", "branch-1")]

    ingest.handle(taps("branch-node", [1] * 400, at=NOW + timedelta(hours=6)))
    assert evaluator.run(NOW + timedelta(hours=6)).opened == [("satisfaction-low", "branch-1")]
    # Midnight in Hanoi: a new day with no ratings yet.
    assert evaluator.run(NOW + timedelta(hours=21, minutes=1)).closed == [("satisfaction-low", "branch-1")]


def test_taps_of_another_day_do_not_count(engine, ingest, sites):
    ingest.handle(taps("branch-node", [1] * 300, at=NOW - timedelta(days=1)))
    assert AlertEvaluator(engine, RULES).run(NOW).opened == []


# ---- several workers --------------------------------------------------------


def test_rounds_applied_concurrently_open_each_alert_once(engine):
    plan = Plan(open=[Finding("disk-low", f"n{i}-node", "warning", "low", f"n{i}-node") for i in range(20)])
    start = threading.Barrier(4)
    errors = []

    def worker():
        try:
            start.wait()
            for _ in range(5):
                with engine.begin() as conn:
                    alert_store.apply(conn, plan, NOW)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert sorted(r.subject for r in rows(engine)) == sorted(f"n{i}-node" for i in range(20))


# ---- the command ------------------------------------------------------------


def test_the_alerts_command_lists_open_alerts_and_with_all_the_history(engine, ingest, db_url):
    evaluator = AlertEvaluator(engine, RULES)
    ingest.handle([health("a-node", NOW, disk_free_mb=50), health("b-node", NOW, clock_synced=False)])
    evaluator.run(NOW)
    ingest.handle([health("a-node", NOW + timedelta(minutes=1))])
    evaluator.run(NOW + timedelta(minutes=1))

    def run(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "rpfleet", "server", "alerts", "--db", db_url, *args],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        return done.stdout

    open_now = run()
    assert "clock-unsynced" in open_now and "b-node" in open_now and "disk-low" not in open_now
    history = run("--all")
    assert "disk-low" in history and "2026-11-25 03:01" in history
