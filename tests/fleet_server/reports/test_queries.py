"""Satisfaction reports from the store, on SQLite and PostgreSQL: the counting
is done by the database, so every case runs on both."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from fleet_server.reports import UNASSIGNED, Grouping, Period, ReportError
from tests.fleet_server.reports.conftest import local, tap, taps

UTC = timezone.utc
MAR_1, MAR_2, MAR_3 = date(2025, 3, 1), date(2025, 3, 2), date(2025, 3, 3)


def by_label(rows) -> dict[str, tuple[int, int, int]]:
    return {r.period.label: (r.tally.ratings, r.tally.satisfied, r.tally.misuse_flagged)
            for r in rows}


def by_group(rows) -> dict[str, tuple[int, int]]:
    return {r.group.id: (r.tally.ratings, r.tally.satisfied) for r in rows}


def test_counts_share_and_wilson_bounds_for_one_day(add_taps, report):
    day = local(MAR_3)
    add_taps([
        *(tap("cn-1", day, r) for r in (5, 5, 5, 5, 4, 4, 4, 3, 2, 1)[:9]),
        tap("cn-1", day, 2, scale=3),  # the top two of a 3-button pad: satisfied
        tap("cn-1", day, 5, suspect=True),  # flagged as misuse: counted apart
        tap("cn-1", day, 1, suspect=True),
        tap("cn-1", day, 3, suspect=False),  # looked at and not flagged: a rating like any
    ])
    result = report(MAR_3, MAR_3, site="cua-nam")
    [row] = result.rows
    # 10 counted: 5,5,5,5,4,4,4 and 2-of-3 satisfied (8); 3,2 unhappy; plus the unflagged 3.
    assert (row.tally.ratings, row.tally.satisfied, row.tally.misuse_flagged) == (11, 8, 2)
    assert row.tally.share == pytest.approx(8 / 11)
    # Wilson 95 % for 8 of 11, from solving (p̂ - p)² = z² p(1 - p) / n for p: 0.4344 to 0.9025.
    assert row.tally.low == pytest.approx(0.4344, abs=1e-4)
    assert row.tally.high == pytest.approx(0.9025, abs=1e-4)
    assert result.total == row.tally
    assert result.subject == "Phường Cửa Nam"


def test_misuse_flagged_taps_are_left_out_of_the_share_but_counted(add_taps, report):
    add_taps(taps("cn-1", local(MAR_1), satisfied=9, unsatisfied=1)
             + taps("cn-1", local(MAR_1, 11), satisfied=0, unsatisfied=20, suspect=True)
             + taps("cn-1", local(MAR_2), satisfied=0, unsatisfied=2, suspect=True))
    result = report(MAR_1, MAR_2, site="cua-nam")
    assert by_label(result.trend) == {"2025-03-01": (10, 9, 20), "2025-03-02": (0, 0, 2)}
    assert result.trend[0].tally.share == 0.9
    assert result.trend[1].tally.share is None  # only misuse that day: no share at all
    assert (result.total.ratings, result.total.misuse_flagged, result.total.share) == (10, 22, 0.9)


@pytest.mark.parametrize(
    "at, local_day",
    [
        (datetime(2025, 3, 1, 23, 30, tzinfo=UTC), "2025-03-02"),  # 06:30 the next morning
        (datetime(2025, 3, 1, 16, 59, 59, tzinfo=UTC), "2025-03-01"),  # 23:59:59 in Hanoi
        (datetime(2025, 3, 1, 17, 0, 0, tzinfo=UTC), "2025-03-02"),  # midnight in Hanoi
        (datetime(2025, 2, 28, 17, 0, 0, tzinfo=UTC), "2025-03-01"),  # the range's first instant
        (datetime(2025, 3, 2, 16, 59, 59, 999999, tzinfo=UTC), "2025-03-02"),  # its last
    ],
    ids=["23:30-utc-is-next-day", "last-second-of-day", "local-midnight", "range-start",
         "range-end"],
)
def test_a_tap_belongs_to_its_local_day(add_taps, report, at, local_day):
    add_taps([tap("cn-1", at, 5)])
    assert by_label(report(MAR_1, MAR_2).rows) == {local_day: (1, 1, 0)}


@pytest.mark.parametrize(
    "at",
    [datetime(2025, 2, 28, 16, 59, 59, tzinfo=UTC), datetime(2025, 3, 2, 17, 0, tzinfo=UTC)],
    ids=["before-local-first-day", "after-local-last-day"],
)
def test_taps_outside_the_local_range_are_not_counted(add_taps, report, at):
    add_taps([tap("cn-1", at, 5)])
    result = report(MAR_1, MAR_2)
    assert result.rows == () and result.total.ratings == 0


def test_week_buckets_are_iso_weeks_in_local_time(add_taps, report):
    add_taps([
        tap("cn-1", local(MAR_2, 9), 5),  # Sunday: the week of Monday 24 February
        tap("cn-1", local(MAR_3, 9), 5),  # Monday
        tap("cn-1", local(date(2025, 3, 9), 23, 30), 1),  # Sunday night in Hanoi, 16:30 UTC
        tap("cn-1", datetime(2025, 3, 9, 17, 30, tzinfo=UTC), 5),  # 00:30 Monday in Hanoi
    ])
    result = report(MAR_1, date(2025, 3, 12), by=Period.WEEK)
    assert by_label(result.trend) == {
        "2025-W09": (1, 1, 0), "2025-W10": (2, 1, 0), "2025-W11": (1, 1, 0)}
    assert [(s.period.first, s.period.last) for s in result.trend] == [
        (MAR_1, MAR_2), (MAR_3, date(2025, 3, 9)), (date(2025, 3, 10), date(2025, 3, 12))]


def test_a_week_spanning_new_year_is_one_bucket(add_taps, report):
    add_taps([tap("cn-1", local(date(2024, 12, 31)), 5), tap("cn-1", local(date(2025, 1, 2)), 1)])
    result = report(date(2024, 12, 28), date(2025, 1, 5), by=Period.WEEK)
    assert by_label(result.rows) == {"2025-W01": (2, 1, 0)}


def test_month_buckets_are_local_months(add_taps, report):
    add_taps([
        tap("cn-1", datetime(2025, 1, 31, 16, 30, tzinfo=UTC), 5),  # 23:30 on 31 January
        tap("cn-1", datetime(2025, 1, 31, 17, 30, tzinfo=UTC), 1),  # 00:30 on 1 February
        tap("cn-1", local(date(2025, 2, 28), 23, 59), 5),
        tap("cn-1", local(date(2025, 3, 10)), 5),
    ])
    result = report(date(2025, 1, 15), date(2025, 3, 10), by=Period.MONTH)
    assert by_label(result.trend) == {"2025-01": (1, 1, 0), "2025-02": (2, 1, 0),
                                      "2025-03": (1, 1, 0)}


def hanoi_morning(add_taps) -> None:
    """One morning across the registry (satisfied, unsatisfied per node and counter)."""
    day = local(MAR_3)
    add_taps(
        taps("cn-1", day, satisfied=9, unsatisfied=1)
        + taps("cn-1", day, satisfied=1, unsatisfied=1, counter="3")  # a pad at counter 3
        + taps("cn-2", day, satisfied=3, unsatisfied=1)
        + taps("hb-1", day, satisfied=5, unsatisfied=0)
        + taps("vm-1", day, satisfied=2, unsatisfied=2)
        + taps("stray-7", day, satisfied=1, unsatisfied=0)  # a node the registry never placed
    )


@pytest.mark.parametrize(
    "group, expected",
    [
        (Grouping.REGION, {"hk": (21, 18), "dd": (4, 2), UNASSIGNED: (1, 1)}),
        (Grouping.SITE, {"cua-nam": (16, 13), "hang-bac": (5, 5), "van-mieu": (4, 2),
                         UNASSIGNED: (1, 1)}),
        (Grouping.COUNTER, {"cua-nam/1": (10, 9), "cua-nam/2": (4, 3), "cua-nam/3": (2, 1),
                            "hang-bac/1": (5, 5), "van-mieu/1": (4, 2),
                            f"{UNASSIGNED}/{UNASSIGNED}": (1, 1)}),
        (Grouping.NODE, {"cn-1": (12, 10), "cn-2": (4, 3), "hb-1": (5, 5), "vm-1": (4, 2),
                         "stray-7": (1, 1)}),
    ],
    ids=["region", "site", "counter", "node"],
)
def test_grouping_splits_the_counts(add_taps, report, group, expected):
    hanoi_morning(add_taps)
    result = report(MAR_3, MAR_3, group=group)
    assert by_group(result.rows) == expected
    assert by_group(result.groups) == expected
    assert (result.total.ratings, result.total.satisfied) == (26, 21)


def test_groups_carry_the_names_a_person_reads(add_taps, report):
    hanoi_morning(add_taps)
    names = {r.group.id: r.group.name for r in report(MAR_3, MAR_3, group=Grouping.COUNTER).rows}
    assert names["cua-nam/1"] == "Phường Cửa Nam / Quầy 1 – Hộ tịch"  # registered counter
    assert names["cua-nam/2"] == "Phường Cửa Nam / 2"
    regions = {r.group.id: r.group.name for r in report(MAR_3, MAR_3, group=Grouping.REGION).rows}
    assert regions["dd"] == "Chi nhánh Đống Đa"


@pytest.mark.parametrize(
    "filters, subject, expected",
    [
        ({"region": "hk"}, "Chi nhánh Hoàn Kiếm", (21, 18)),
        ({"site": "cua-nam"}, "Phường Cửa Nam", (16, 13)),
        ({"site": "cua-nam", "counter": "1"}, "Phường Cửa Nam, counter 1", (10, 9)),
        ({"site": "cua-nam", "counter": "3"}, "Phường Cửa Nam, counter 3", (2, 1)),
        ({"counter": "1"}, "counter 1", (19, 16)),  # counter 1 of every site
        ({"node": "cn-2"}, "node cn-2", (4, 3)),
        ({"node": "stray-7"}, "node stray-7", (1, 1)),  # never registered, but it sent taps
        ({"region": "dd", "site": "cua-nam"}, "Chi nhánh Đống Đa, Phường Cửa Nam", (0, 0)),
        ({}, "all sites", (26, 21)),
    ],
    ids=["region", "site", "site-counter", "counter-from-the-pad", "counter-anywhere", "node",
         "unregistered-node", "contradictory", "everything"],
)
def test_filters_select_the_taps(add_taps, report, filters, subject, expected):
    hanoi_morning(add_taps)
    result = report(MAR_3, MAR_3, **filters)
    assert (result.total.ratings, result.total.satisfied) == expected
    assert result.subject == subject


@pytest.mark.parametrize(
    "filters, message",
    [
        ({"site": "nowhere"}, r"site 'nowhere': no site with this id"),
        ({"region": "hcm"}, r"region 'hcm': no region with this id"),
        ({"node": "ghost-1"}, r"node 'ghost-1': no node with this id has registered or sent"),
    ],
    ids=["site", "region", "node"],
)
def test_unknown_ids_are_refused_naming_the_filter(report, filters, message):
    with pytest.raises(ReportError, match=message) as raised:
        report(MAR_1, MAR_3, **filters)
    assert raised.value.field == next(iter(filters))


@pytest.mark.parametrize("by, periods", [(Period.DAY, 31), (Period.WEEK, 6), (Period.MONTH, 1)],
                         ids=["day", "week", "month"])
def test_an_empty_range_gives_zero_filled_periods(add_taps, report, by, periods):
    add_taps([tap("cn-1", local(date(2025, 4, 1)), 5)])  # outside the range asked for
    result = report(MAR_1, date(2025, 3, 31), site="cua-nam", by=by, group=Grouping.NODE)
    assert result.rows == () and result.groups == ()
    assert len(result.trend) == periods
    assert all(r.tally.ratings == 0 and r.tally.share is None for r in result.trend)
    assert (result.total.ratings, result.total.share, result.total.low) == (0, None, None)


def test_other_events_are_not_ratings(add_taps, report, engine):
    from fleet_server import store

    add_taps([tap("cn-1", local(MAR_1), 5)])
    scan = tap("cn-1", local(MAR_1), 1) | {"kind": "scan", "rating": None, "scale": None}
    with engine.begin() as conn:
        store.insert_events(conn, [scan])
    assert report(MAR_1, MAR_1).total.ratings == 1


def test_taps_stamped_by_an_unsynchronised_clock_are_counted_and_noted(add_taps, report):
    add_taps([tap("cn-1", local(MAR_1), 5, clock_synced=False),
              tap("cn-1", local(MAR_1), 1, clock_synced=False, suspect=True),
              tap("cn-1", local(MAR_1), 5, clock_synced=None),  # an old agent: unknown
              tap("cn-1", local(MAR_1), 5)])
    total = report(MAR_1, MAR_1).total
    assert (total.ratings, total.misuse_flagged, total.clock_unsynced) == (3, 1, 2)


def test_rows_are_ordered_by_period_then_group(add_taps, report):
    add_taps([tap("vm-1", local(MAR_2), 5), tap("cn-1", local(MAR_2), 5),
              tap("hb-1", local(MAR_1), 5)])
    rows = report(MAR_1, MAR_2, group=Grouping.SITE).rows
    assert [(r.period.label, r.group.id) for r in rows] == [
        ("2025-03-01", "hang-bac"), ("2025-03-02", "cua-nam"), ("2025-03-02", "van-mieu")]
