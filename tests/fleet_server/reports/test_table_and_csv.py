"""The report as a terminal table and as CSV for Excel (pure: built from dataclasses)."""

from __future__ import annotations

import csv
import unicodedata
from datetime import date

import pytest

from fleet_server.commands.report import display_width, fit, render, write_csv
from fleet_server.reports import (
    CSV_HEADER, Group, Grouping, Period, PeriodSpan, Report, ReportQuery, ReportRow, Tally,
    csv_rows, periods,
)

CUA_NAM = Group(Grouping.SITE, "cua-nam", "Phường Cửa Nam")
# Stored decomposed (as a CSV saved on a Mac may have it): more code points than columns.
HANG_BAC = Group(Grouping.SITE, "hang-bac", unicodedata.normalize("NFD", "Phường Hàng Bạc"))


def two_day_report(group: Grouping | None = Grouping.SITE) -> Report:
    query = ReportQuery(date(2025, 3, 1), date(2025, 3, 2), by=Period.DAY, group=group)
    day1, day2 = periods(query)
    rows = (ReportRow(day1, CUA_NAM, Tally(10, 8, 2)), ReportRow(day1, HANG_BAC, Tally(100, 95)),
            ReportRow(day2, CUA_NAM, Tally(5, 5, 0, 1)))
    groups = (ReportRow(None, CUA_NAM, Tally(15, 13, 2, 1)), ReportRow(None, HANG_BAC, Tally(100, 95)))
    trend = (ReportRow(day1, None, Tally(110, 103, 2)), ReportRow(day2, None, Tally(5, 5, 0, 1)))
    return Report(query, "Chi nhánh Hoàn Kiếm", rows, trend, groups, Tally(115, 108, 2, 1))


@pytest.mark.parametrize(
    "text, width",
    [("Cua Nam", 7), ("Phường Cửa Nam", 14), (unicodedata.normalize("NFD", "Phường Cửa Nam"), 14),
     ("北京", 4)],
    ids=["ascii", "vietnamese-nfc", "vietnamese-nfd", "wide"],
)
def test_display_width_counts_terminal_columns(text, width):
    assert display_width(text) == width


def test_fit_pads_and_cuts_by_columns():
    assert fit(HANG_BAC.name, 18) == "Phường Hàng Bạc   "
    assert fit("Trung tâm Phục vụ hành chính công", 12) == "Trung tâm P…"
    assert fit("42", 5, ">") == "   42"


def test_the_table_aligns_vietnamese_names():
    lines = render(two_day_report()).splitlines()
    body = [line for line in lines if line.startswith(("2025-", "all"))]
    assert len(body) == 6  # 3 cells, 2 groups over the range, the total
    assert len({display_width(line) for line in body}) == 1, "\n".join(body)
    assert "Phường Hàng Bạc" in lines[3]  # normalised to NFC for the terminal
    header = lines[1]
    # Each number ends under its column's heading.
    ratings_end = display_width(header[: header.index("ratings") + len("ratings")])
    assert all(display_width(line[: line.index(" 10 ") + 3]) == ratings_end
               for line in body if " 10 " in line)


def test_the_table_says_share_interval_target_and_what_was_left_out():
    text = render(two_day_report())
    assert "Satisfaction: Chi nhánh Hoàn Kiếm, 2025-03-01 to 2025-03-02 (Hanoi time), by day" in text
    cua_nam_day1 = next(line for line in text.splitlines() if "Cửa Nam" in line)
    assert "80.0 %" in cua_nam_day1 and "49.0–94.3 %" in cua_nam_day1
    assert cua_nam_day1.endswith("BELOW")
    assert "2 misuse-flagged taps are counted apart, not in the share." in text
    assert "1 taps came from a node whose clock was not synchronised" in text


def test_without_a_grouping_the_table_lists_every_period():
    report = two_day_report(group=None)
    lines = render(report).splitlines()
    assert [line.split()[0] for line in lines[2:5]] == ["2025-03-01", "2025-03-02", "all"]


def test_an_empty_report_says_so():
    query = ReportQuery(date(2025, 3, 1), date(2025, 3, 1))
    empty = Report(query, "Phường Cửa Nam", (), (ReportRow(periods(query)[0], None, Tally(0, 0)),),
                   (), Tally(0, 0))
    text = render(empty)
    assert "No ratings in this range." in text
    assert text.splitlines()[2].split() == ["2025-03-01", "0", "0", "-", "-", "0"]


def test_csv_is_utf8_with_bom_and_reads_back(tmp_path):
    path = tmp_path / "report.csv"
    write_csv(two_day_report(), path)
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # the BOM that tells Excel "UTF-8"
    assert "Phường Cửa Nam".encode() in raw
    with open(path, encoding="utf-8-sig", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == CSV_HEADER
    assert [(r["period"], r["group_id"]) for r in rows] == [
        ("2025-03-01", "cua-nam"), ("2025-03-01", "hang-bac"), ("2025-03-02", "cua-nam"),
        ("all", "cua-nam"), ("all", "hang-bac"), ("all", "")]
    first = rows[0]
    assert (first["ratings"], first["satisfied"], first["misuse_flagged"]) == ("10", "8", "2")
    assert float(first["share_satisfied"]) == 0.8
    assert float(first["wilson95_low"]) == pytest.approx(0.4902, abs=1e-4)
    assert float(first["wilson95_high"]) == pytest.approx(0.9433, abs=1e-4)
    total = rows[-1]
    assert (total["first_day"], total["last_day"], total["group_name"]) == (
        "2025-03-01", "2025-03-02", "Chi nhánh Hoàn Kiếm")
    assert total["ratings"] == "115" and total["clock_unsynced"] == "1"


def test_csv_leaves_the_share_empty_without_ratings():
    query = ReportQuery(date(2025, 3, 1), date(2025, 3, 1))
    span = PeriodSpan("2025-03-01", date(2025, 3, 1), date(2025, 3, 1))
    report = Report(query, "x", (), (ReportRow(span, None, Tally(0, 0, 3)),), (), Tally(0, 0, 3))
    header, day, total = csv_rows(report)
    cells = dict(zip(header, day))
    assert [cells[k] for k in ("ratings", "share_satisfied", "wilson95_low", "wilson95_high",
                               "misuse_flagged")] == ["0", "", "", "", "3"]
    assert total[0] == "all"
