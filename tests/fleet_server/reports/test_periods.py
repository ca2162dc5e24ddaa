"""Periods and tallies: the pure part of reports."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest

from fleet_server.reports import (
    LOCAL_SHIFT, LOCAL_ZONE, NO_TAPS, Period, ReportError, ReportQuery, Tally, periods,
)


def spans(first: date, last: date, by: Period) -> list[tuple[str, date, date]]:
    return [(s.label, s.first, s.last) for s in periods(ReportQuery(first, last, by=by))]


@pytest.mark.parametrize(
    "first, last, by, expected",
    [
        (date(2025, 3, 1), date(2025, 3, 3), Period.DAY,
         [("2025-03-01", date(2025, 3, 1), date(2025, 3, 1)),
          ("2025-03-02", date(2025, 3, 2), date(2025, 3, 2)),
          ("2025-03-03", date(2025, 3, 3), date(2025, 3, 3))]),
        # 1 March 2025 is a Saturday: its ISO week began on Monday 24 February.
        (date(2025, 3, 1), date(2025, 3, 12), Period.WEEK,
         [("2025-W09", date(2025, 3, 1), date(2025, 3, 2)),
          ("2025-W10", date(2025, 3, 3), date(2025, 3, 9)),
          ("2025-W11", date(2025, 3, 10), date(2025, 3, 12))]),
        # Monday 30 December 2024 starts ISO week 1 of 2025.
        (date(2024, 12, 28), date(2025, 1, 5), Period.WEEK,
         [("2024-W52", date(2024, 12, 28), date(2024, 12, 29)),
          ("2025-W01", date(2024, 12, 30), date(2025, 1, 5))]),
        (date(2024, 1, 15), date(2024, 3, 10), Period.MONTH,
         [("2024-01", date(2024, 1, 15), date(2024, 1, 31)),
          ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
          ("2024-03", date(2024, 3, 1), date(2024, 3, 10))]),
        (date(2024, 12, 1), date(2025, 1, 31), Period.MONTH,
         [("2024-12", date(2024, 12, 1), date(2024, 12, 31)),
          ("2025-01", date(2025, 1, 1), date(2025, 1, 31))]),
    ],
    ids=["days", "weeks-cut-to-the-range", "iso-week-across-new-year", "months-leap-february",
         "months-across-new-year"],
)
def test_periods_cover_the_range_cut_at_its_ends(first, last, by, expected):
    assert spans(first, last, by) == expected


def test_a_range_that_ends_before_it_starts_is_refused():
    with pytest.raises(ReportError, match=r"from '2025-03-05': is after the last day .*2025-03-01"):
        ReportQuery(date(2025, 3, 5), date(2025, 3, 1))


def test_local_days_are_utc_plus_7():
    start, end = ReportQuery(date(2025, 3, 1), date(2025, 3, 2)).utc_bounds()
    assert start == datetime(2025, 2, 28, 17, 0, tzinfo=timezone.utc)
    assert end == datetime(2025, 3, 2, 17, 0, tzinfo=timezone.utc)


@pytest.mark.parametrize("year", [1976, 2000, 2025, 2037], ids=str)
def test_hanoi_keeps_utc_plus_7_all_year(year):
    """SQLite buckets with a fixed shift; that is right only while the zone has no DST."""
    for month in (1, 4, 7, 10):
        assert datetime(year, month, 15, tzinfo=LOCAL_ZONE).utcoffset() == LOCAL_SHIFT


def test_a_tally_gives_the_share_and_the_wilson_interval():
    tally = Tally(ratings=10, satisfied=8, misuse_flagged=2)
    assert tally.share == 0.8
    # 8 of 10: the textbook Wilson 95 % interval is 0.4902 to 0.9433.
    assert tally.low == pytest.approx(0.4902, abs=1e-4)
    assert tally.high == pytest.approx(0.9433, abs=1e-4)
    assert tally.meets_target is False


def test_tallies_add_up_and_recompute_the_interval():
    total = Tally(6, 6, 1, 0) + Tally(4, 2, 0, 3)
    assert total == Tally(10, 8, 1, 3)
    assert (total.share, total.low) == (0.8, pytest.approx(0.4902, abs=1e-4))


def test_no_ratings_means_no_share_and_no_interval():
    assert (NO_TAPS.share, NO_TAPS.low, NO_TAPS.high, NO_TAPS.meets_target) == (None,) * 4
    only_misuse = Tally(0, 0, misuse_flagged=3)
    assert only_misuse.share is None and only_misuse.misuse_flagged == 3


@pytest.mark.parametrize("satisfied, meets", [(90, True), (89, False)], ids=["90-of-100", "89-of-100"])
def test_the_target_is_at_least_90_percent(satisfied, meets):
    assert Tally(100, satisfied).meets_target is meets
