"""The trend chart: a real PNG of the expected size, with the line, the target
and the bars on it, and every Vietnamese letter drawn from the font."""

from __future__ import annotations

import io
import warnings
from datetime import date

import numpy as np
import pytest
from PIL import Image

from fleet_server.report_chart import COLOURS, DPI, SIZE_INCHES, plot_trend
from fleet_server.reports import Period, Report, ReportQuery, ReportRow, Tally, periods

SIZE = (round(SIZE_INCHES[0] * DPI), round(SIZE_INCHES[1] * DPI))


def trend_report(tallies: list[Tally], by: Period = Period.DAY,
                 first: date = date(2025, 3, 1), last: date | None = None) -> Report:
    last = last or date.fromordinal(first.toordinal() + len(tallies) - 1)
    query = ReportQuery(first, last, by=by, site="cua-nam")
    spans = periods(query)
    assert len(spans) == len(tallies)
    trend = tuple(ReportRow(s, None, t) for s, t in zip(spans, tallies))
    return Report(query, "Phường Cửa Nam", tuple(r for r in trend if r.tally.ratings), trend, (),
                  sum((t for t in tallies), Tally(0, 0)))


def draw(report: Report) -> np.ndarray:
    """Plot into memory and return the RGB pixels; fail on any missing-glyph warning."""
    out = io.BytesIO()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        plot_trend(report, out)
    glyphs = [str(w.message) for w in caught if "Glyph" in str(w.message)]
    assert glyphs == [], glyphs
    image = Image.open(io.BytesIO(out.getvalue()))
    assert image.format == "PNG"
    assert image.size == SIZE
    return np.asarray(image.convert("RGB")).astype(int)


def plot_area(rgb: np.ndarray) -> np.ndarray:
    """Inside the axes: no title, axis labels or legend (which repeat the colours)."""
    return rgb[100:560, 110:1220]


def pixels_near(rgb: np.ndarray, colour: str, tolerance: int = 40, alpha: float = 1.0) -> int:
    """How many pixels are within ``tolerance`` of ``colour`` drawn with ``alpha`` on white."""
    target = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)]) * alpha + 255 * (1 - alpha)
    return int((np.abs(rgb - target).sum(axis=2) <= tolerance).sum())


MIXED = [Tally(120, 113), Tally(80, 70, 3), Tally(0, 0), Tally(150, 141, 1), Tally(40, 31),
         Tally(95, 90), Tally(12, 12)]


def test_the_chart_shows_the_line_band_target_and_bars():
    rgb = draw(trend_report(MIXED))
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 100, "looks blank"
    inside = plot_area(rgb)
    assert pixels_near(inside, COLOURS["share"]) > 1000  # the line across the chart
    assert pixels_near(inside, COLOURS["band"], 20, alpha=0.5) > 5000  # the Wilson band
    assert pixels_near(inside, COLOURS["target"]) > 500  # the dashed 90 % line
    assert pixels_near(inside, COLOURS["ratings"], 10) > 20_000  # the bars
    assert pixels_near(inside, COLOURS["below"]) > 100  # 87.5 % and 77.5 % are below target
    assert pixels_near(inside, COLOURS["misuse"], 20) > 100  # misuse stacked on the bars


def test_red_marks_appear_only_for_periods_below_target():
    rgb = draw(trend_report([Tally(100, 95), Tally(100, 96), Tally(50, 50)]))
    assert pixels_near(plot_area(rgb), COLOURS["below"]) == 0
    assert pixels_near(plot_area(rgb), COLOURS["share"]) > 1000


@pytest.mark.parametrize(
    "tallies, by, first, last",
    [
        ([Tally(0, 0)] * 14, Period.DAY, date(2025, 3, 1), None),
        ([Tally(1469, 1337, 38)], Period.MONTH, date(2025, 3, 1), date(2025, 3, 31)),
        ([Tally(n % 50 + 5, n % 50 + 4) for n in range(92)], Period.DAY, date(2025, 1, 1), None),
        ([Tally(300, 290), Tally(0, 0), Tally(310, 280), Tally(0, 0), Tally(20, 20)],
         Period.WEEK, date(2025, 3, 3), date(2025, 4, 6)),
    ],
    ids=["no-ratings", "one-month", "a-quarter-by-day", "weeks-with-gaps"],
)
def test_any_shape_of_report_draws(tallies, by, first, last):
    inside = plot_area(draw(trend_report(tallies, by, first, last)))
    assert pixels_near(inside, COLOURS["target"]) > 500
    has_ratings = any(t.ratings for t in tallies)
    assert (pixels_near(inside, COLOURS["share"]) > 20) is has_ratings
    assert (pixels_near(inside, COLOURS["band"], 20, alpha=0.5) > 1000) is has_ratings


def test_the_chart_is_written_to_a_file(tmp_path):
    path = tmp_path / "trend.png"
    plot_trend(trend_report(MIXED), path)
    with Image.open(path) as image:
        assert image.size == SIZE
