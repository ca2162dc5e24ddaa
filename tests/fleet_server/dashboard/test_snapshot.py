"""What the dashboard shows, read from a real store: today's latest calls, today's
ratings counted as the reports count them, and the open-counter rule. SQLite,
and the whole morning once on each backend."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from fleet_server import announcements, reports
from fleet_server.dashboard.snapshot import (
    CALLS_SHOWN, counter_label, is_open, site_dashboard,
)
from fleet_server.satisfaction import is_satisfied
from fleet_server.schema import announcements as announcement_rows
from fleet_server.store import connect
from tests.fleet_server.dashboard import hall


@pytest.fixture
def morning(tmp_path):
    """The hall's morning on SQLite."""
    engine = connect(f"sqlite:///{tmp_path / 'fleet.sqlite'}")
    with engine.begin() as conn:
        hall.seed(conn)
    yield engine
    engine.dispose()


def read(engine, now=hall.NOW, site=hall.SITE):
    with engine.connect() as conn:
        return site_dashboard(conn, site, now)


@pytest.mark.parametrize(
    ("served_today", "desks", "open_"),
    [
        (True, ["online"], True),
        (True, ["offline", "online"], True),
        (True, ["offline"], False),
        (True, ["unknown"], False),
        (True, [], True),  # no desk node: called through the hall's soundbox
        (False, ["online"], False),  # a device left on at an unstaffed desk
        (False, [], False),
    ],
    ids=["online", "one-of-two", "offline", "never-reported", "no-desk", "idle", "nothing"],
)
def test_the_open_counter_rule(served_today, desks, open_) -> None:
    assert is_open(served_today, desks) is open_


def test_a_counter_reads_as_its_name_or_its_number() -> None:
    assert counter_label("5", None) == "Quầy 5"
    assert counter_label("thu-ngan", "Thu ngân") == "Thu ngân"


def test_the_morning_shows_todays_latest_calls_newest_first(morning) -> None:
    shown = read(morning)

    expected = [ticket for ticket, _ in reversed(hall.CALLS)][:CALLS_SHOWN]
    assert [c.ticket for c in shown.calls] == expected
    newest = shown.calls[0]
    assert (newest.ticket, newest.counter, newest.counter_label) == (*hall.CALLS[-1], "Quầy 1")
    assert newest.called_at == hall.NOW
    assert [c.priority for c in shown.calls] == [c.ticket in hall.PRIORITY for c in shown.calls]
    assert (shown.site_name, shown.day.isoformat()) == (hall.SITE_NAME, "2026-11-25")


def test_todays_ratings_leave_out_flagged_taps_and_yesterday(morning) -> None:
    shown = read(morning)

    satisfied = sum(is_satisfied(rating, scale) for rating, scale in hall.TAPS)
    assert (shown.ratings, shown.satisfied) == (len(hall.TAPS), satisfied)
    assert shown.share == pytest.approx(satisfied / len(hall.TAPS))
    day = reports.ReportQuery(shown.day, shown.day, site=hall.SITE)
    with morning.connect() as conn:  # the same numbers as the city's report of the day
        assert reports.satisfaction_report(conn, day).total.ratings == shown.ratings


def test_open_counters_served_today_at_a_desk_that_is_up(morning) -> None:
    shown = read(morning)

    assert {c.id for c in shown.counters if c.open} == hall.OPEN
    assert [c.id for c in shown.counters] == ["1", "2", "3", "4", "5", "6", "thu-ngan"]
    by_id = {c.id: c for c in shown.counters}
    assert by_id["4"].ticket == "2002"  # it called, then its desk went offline
    assert by_id["6"].ticket is None  # yesterday's call does not count
    assert by_id["thu-ngan"].label == "Thu ngân"


def test_a_new_local_day_starts_empty(morning) -> None:
    midnight = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)  # 00:00 on the 26th in Hanoi
    before, after = read(morning, midnight - timedelta(seconds=1)), read(morning, midnight)

    assert before.calls and before.ratings
    assert (after.calls, after.ratings, after.share) == ((), 0, None)
    assert not any(c.open for c in after.counters)
    assert after.day.isoformat() == "2026-11-26"


def test_only_the_sites_own_queue_calls_show(morning) -> None:
    with morning.begin() as conn:
        conn.execute(announcement_rows.insert(), [
            {"id": "pay-1", "site_id": hall.SITE, "kind": announcements.PAYMENT,
             "counter": "thu-ngan", "ticket": None, "amount_vnd": 50000,
             "request": {"kind": "payment"}, "token_name": "pay", "created_at": hall.NOW,
             "expires_at": hall.NOW, "nodes": []},
            {"id": "bd-call", "site_id": hall.OTHER_SITE, "kind": announcements.QUEUE_CALL,
             "counter": "1", "ticket": "7777", "amount_vnd": None,
             "request": {"kind": "queue-call"}, "token_name": "q", "created_at": hall.NOW, "expires_at": hall.NOW, "nodes": []},
        ])

    shown = read(morning)

    assert shown.calls[0].ticket == hall.CALLS[-1][0]
    assert read(morning, site=hall.OTHER_SITE).calls[0].ticket == "7777"


def test_an_unknown_site_has_no_dashboard(morning) -> None:
    assert read(morning, site="nowhere") is None


def test_equal_snapshots_compare_equal(morning) -> None:
    assert read(morning) == read(morning)
    assert read(morning) != read(morning, hall.NOW + timedelta(days=1))


def test_the_whole_morning_reads_the_same_on_each_backend(seeded) -> None:
    shown = read(seeded)

    assert [c.ticket for c in shown.calls] == [t for t, _ in reversed(hall.CALLS)][:CALLS_SHOWN]
    assert shown.calls[0].called_at == hall.NOW
    assert (shown.ratings, shown.satisfied) == (
        len(hall.TAPS), sum(is_satisfied(r, s) for r, s in hall.TAPS))
    assert {c.id for c in shown.counters if c.open} == hall.OPEN
    midnight = datetime(2026, 11, 25, 17, 0, tzinfo=timezone.utc)  # Hanoi's, at UTC+7
    assert read(seeded, midnight - timedelta(seconds=1)).ratings == len(hall.TAPS)
    assert (read(seeded, midnight).calls, read(seeded, midnight).ratings) == ((), 0)
