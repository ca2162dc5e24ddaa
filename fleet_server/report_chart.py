"""The satisfaction trend as a PNG a manager reads at a glance (matplotlib, Agg).

One chart per report: the share satisfied per period as a line, its 95 %
Wilson band shaded, the city's 90 % target dashed, and the number of ratings
per period as light bars on a second axis (misuse-flagged taps stacked on top
in another colour, since they are not in the share). Periods below the target
are marked in red. The text is Vietnamese, for the managers who read it.

The figure is built with `matplotlib.figure.Figure` and saved through Agg
directly: no pyplot, no GUI backend, no global figure state, so the HTTP API
may draw charts from several threads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import BinaryIO

from fleet_server.reports import TARGET_SHARE, Period, Report

FONT = "DejaVu Sans"
"""Ships with matplotlib and has every Vietnamese letter (Latin Extended Additional)."""

SIZE_INCHES = (11.0, 5.6)
DPI = 120
MAX_TICKS = 16
MAX_MARKERS = 45  # beyond this many periods, dots on the line are only clutter

COLOURS = {"share": "#1f4e99", "band": "#9dbbe8", "below": "#c62828", "target": "#d9822b",
           "ratings": "#d5d8dc", "misuse": "#f2b8a0"}

TEXT = {  # Vietnamese: what a manager at the Service Center reads
    "title": "Tỷ lệ hài lòng — {subject}",
    "range": "{first} – {last}, theo {by}",
    "by": {Period.DAY: "ngày", Period.WEEK: "tuần", Period.MONTH: "tháng"},
    "share": "Tỷ lệ hài lòng",
    "band": "Khoảng tin cậy 95 %",
    "target": "Mục tiêu {target} %",
    "below": "Dưới mục tiêu",
    "ratings": "Số lượt đánh giá",
    "misuse": "Nghi lạm dụng (không tính)",
    "week_axis": "Tuần, tính từ ngày",
    "total": "Cả kỳ: {ratings} lượt đánh giá, {share} hài lòng (95 %: {low} – {high})",
    "total_misuse": "; {misuse} lượt nghi lạm dụng không tính",
    "empty": "Không có lượt đánh giá nào trong khoảng thời gian này",
}


def _vn_date(day) -> str:
    return f"{day:%d/%m/%Y}"


def _vn_number(n: int) -> str:
    return f"{n:,}".replace(",", ".")  # Vietnamese groups thousands with dots


def _vn_percent(share: float) -> str:
    return f"{share * 100:.1f} %".replace(".", ",")  # and writes a decimal comma


def _tick_label(report: Report, index: int) -> str:
    first = report.trend[index].period.first  # a week or month cut by the range starts there
    return f"{first:%m/%Y}" if report.query.by is Period.MONTH else f"{first:%d/%m}"


def _isolated(values: list[float]) -> list[int]:
    """Indexes of values that are not NaN while both neighbours are (or are missing)."""

    def empty(i: int) -> bool:
        return not 0 <= i < len(values) or math.isnan(values[i])

    return [i for i in range(len(values)) if not empty(i) and empty(i - 1) and empty(i + 1)]


def _subtitle(report: Report) -> str:
    q, t = report.query, report.total
    line = TEXT["range"].format(first=_vn_date(q.first_day), last=_vn_date(q.last_day),
                                by=TEXT["by"][q.by])
    if t.share is None:
        return line
    line += "\n" + TEXT["total"].format(ratings=_vn_number(t.ratings), share=_vn_percent(t.share),
                                        low=_vn_percent(t.low), high=_vn_percent(t.high))
    if t.misuse_flagged:
        line += TEXT["total_misuse"].format(misuse=_vn_number(t.misuse_flagged))
    return line


def plot_trend(report: Report, out: Path | str | BinaryIO) -> None:
    """Draw ``report``'s trend and write it to ``out`` as a PNG.

    Uses only ``report.trend``, ``report.total`` and the query; a report with
    no ratings still gives a chart (empty axes and a sentence saying so).
    """
    from matplotlib import rc_context
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator, MultipleLocator, PercentFormatter

    trend = report.trend
    x = list(range(len(trend)))
    shares = [r.tally.share if r.tally.share is not None else math.nan for r in trend]
    lows = [r.tally.low if r.tally.low is not None else math.nan for r in trend]
    highs = [r.tally.high if r.tally.high is not None else math.nan for r in trend]
    ratings = [r.tally.ratings for r in trend]
    misuse = [r.tally.misuse_flagged for r in trend]

    with rc_context({"font.family": FONT, "font.size": 10, "axes.spines.top": False}):
        fig = Figure(figsize=SIZE_INCHES, dpi=DPI, layout="constrained")
        share_ax = fig.add_subplot()
        count_ax = share_ax.twinx()
        # The share is drawn over the bars: its axes goes in front, with a clear background.
        share_ax.set_zorder(count_ax.get_zorder() + 1)
        share_ax.patch.set_visible(False)

        count_ax.bar(x, ratings, width=0.8, color=COLOURS["ratings"], label=TEXT["ratings"])
        if any(misuse):
            count_ax.bar(x, misuse, width=0.8, bottom=ratings, color=COLOURS["misuse"],
                         label=TEXT["misuse"])
        tallest = max((r + m for r, m in zip(ratings, misuse)), default=0)
        # Bars keep to the lower part of the chart, out of the line's way.
        count_ax.set_ylim(0, max(tallest, 1) * 2.6)
        count_ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        if not tallest:
            count_ax.set_yticks([])
        count_ax.set_ylabel(TEXT["ratings"], color="#6b7075")
        count_ax.tick_params(axis="y", colors="#6b7075")
        count_ax.spines["top"].set_visible(False)

        share_ax.fill_between(x, lows, highs, color=COLOURS["band"], alpha=0.5, linewidth=0,
                              label=TEXT["band"])
        # A ribbon needs two neighbours: a period standing alone (between gaps, or
        # the only one) gets a narrow box of the same shade instead.
        alone = _isolated(shares)
        share_ax.bar(alone, [highs[i] - lows[i] for i in alone], bottom=[lows[i] for i in alone],
                     width=0.3, color=COLOURS["band"], alpha=0.5, linewidth=0)
        share_ax.axhline(TARGET_SHARE, color=COLOURS["target"], linestyle="--", linewidth=1.6,
                         label=TEXT["target"].format(target=round(TARGET_SHARE * 100)))
        share_ax.plot(x, shares, color=COLOURS["share"], linewidth=2.2, marker="o" if len(trend) <= MAX_MARKERS else None, markersize=4,
                      label=TEXT["share"])
        below = [(i, s) for i, s in zip(x, shares) if not math.isnan(s) and s < TARGET_SHARE]
        if below:
            share_ax.scatter([i for i, _ in below], [s for _, s in below], s=42, zorder=5,
                             color=COLOURS["below"], label=TEXT["below"])

        seen = [v for v in lows if not math.isnan(v)]
        floor = min([*seen, TARGET_SHARE]) if seen else TARGET_SHARE
        bottom = max(0.0, math.floor((floor - 0.05) * 10) / 10)
        share_ax.set_ylim(bottom, 1.005)
        share_ax.yaxis.set_major_locator(MultipleLocator(0.05 if bottom >= 0.7 else 0.1))
        share_ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        share_ax.set_ylabel(TEXT["share"], color=COLOURS["share"])
        share_ax.grid(axis="y", color="#eceff1", linewidth=0.8)
        share_ax.set_xlim(-0.6, len(trend) - 0.4)

        step = max(1, math.ceil(len(trend) / MAX_TICKS))
        ticks = x[::step]
        share_ax.set_xticks(ticks, [_tick_label(report, i) for i in ticks])
        if report.query.by is Period.WEEK:
            share_ax.set_xlabel(TEXT["week_axis"])

        if report.total.share is None:
            share_ax.text(0.5, 0.55, TEXT["empty"], transform=share_ax.transAxes, ha="center",
                          va="center", fontsize=13, color="#555555")

        # matplotlib fills legend columns first: share and band, target and red marks, bars.
        entries = dict(zip(*reversed(share_ax.get_legend_handles_labels())))
        entries |= dict(zip(*reversed(count_ax.get_legend_handles_labels())))
        order = [TEXT[k] for k in ("share", "band")] + [
            lbl for lbl in entries if lbl not in (TEXT["share"], TEXT["band"])]
        fig.legend([entries[lbl] for lbl in order], order, loc="outside lower center", ncol=3,
                   frameon=False)
        fig.suptitle(TEXT["title"].format(subject=report.subject), fontsize=15, fontweight="bold",
                     x=0.01, ha="left")
        share_ax.set_title(_subtitle(report), loc="left", fontsize=10, color="#444444")
        fig.savefig(out, format="png", facecolor="white")
