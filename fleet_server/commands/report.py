"""`report`: the share of satisfied ratings per period (and region, site, counter
or node), as a terminal table, a CSV file for Excel and a PNG trend chart."""

from __future__ import annotations

import argparse
import csv
import sys
import unicodedata
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store

DEFAULT_DAYS = 30
NAME_WIDTH = 36


def add(sub: argparse._SubParsersAction) -> None:
    report = sub.add_parser(
        "report", help="satisfaction report: share satisfied per day/week/month, CSV, chart",
        description="Share of satisfied ratings among all ratings (the city's measure, target "
                    ">= 90 %%), with the 95 %% Wilson interval; misuse-flagged taps are counted "
                    "apart and left out of the share. Dates are Hanoi local days, both included.",
    )
    db_option(report)
    report.add_argument("--from", dest="first_day", type=_local_date, metavar="YYYY-MM-DD",
                        help=f"first local day (default: {DEFAULT_DAYS} days up to --to)")
    report.add_argument("--to", dest="last_day", type=_local_date, metavar="YYYY-MM-DD",
                        help="last local day, included (default: today in Hanoi)")
    report.add_argument("--by", choices=["day", "week", "month"], default="day")
    report.add_argument("--group", choices=["region", "site", "counter", "node"],
                        help="one row per period and region/site/counter/node")
    report.add_argument("--region", help="only this region (id)")
    report.add_argument("--site", help="only this site (id)")
    report.add_argument("--counter", help="only this counter (its id at the site)")
    report.add_argument("--node", help="only this node (id)")
    report.add_argument("--csv", type=Path, metavar="FILE",
                        help="also write the report as CSV (UTF-8 with BOM, for Excel)")
    report.add_argument("--plot", type=Path, metavar="FILE.png", help="also draw the trend chart")
    report.set_defaults(handler=_report)


def _local_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {text!r}") from None


def _report(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.reports import Grouping, Period, ReportError, ReportQuery, satisfaction_report

    if args.plot is not None and args.plot.suffix.lower() != ".png":
        return fail(f"--plot {str(args.plot)!r}: the chart is a PNG, name the file *.png")
    last_day = args.last_day or _today_in_hanoi()
    first_day = args.first_day or last_day - timedelta(days=DEFAULT_DAYS - 1)
    try:
        query = ReportQuery(first_day, last_day, by=Period(args.by),
                            group=Grouping(args.group) if args.group else None,
                            region=args.region, site=args.site, counter=args.counter,
                            node=args.node)
        engine = open_store(settings)
        if engine is None:
            return 1
        with engine.connect() as conn:
            report = satisfaction_report(conn, query)
    except ReportError as exc:
        return fail(f"--{exc.field} {exc.value!r}: {exc.problem}")

    if hasattr(sys.stdout, "reconfigure"):
        sys.stdout.reconfigure(encoding="utf-8")  # Vietnamese names, whatever the locale says
    print(render(report))
    if args.csv is not None:
        write_csv(report, args.csv)
        print(f"CSV written to {args.csv}")
    if args.plot is not None:
        from fleet_server.report_chart import plot_trend

        plot_trend(report, args.plot)
        print(f"chart written to {args.plot}")
    return 0


def _today_in_hanoi() -> date:
    from fleet_server.reports import LOCAL_ZONE

    return datetime.now(LOCAL_ZONE).date()


def write_csv(report: Any, path: Path) -> None:
    """Write ``reports.csv_rows(report)`` to ``path`` as UTF-8 with a byte-order mark.

    Excel opens a double-clicked .csv in the machine's legacy code page unless
    the file starts with a UTF-8 BOM; without it "Phường Cửa Nam" shows as
    "PhÆ°á»ng Cá»­a Nam". Python's csv reader and pandas read it back with
    encoding "utf-8-sig".
    """
    from fleet_server.reports import csv_rows

    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f).writerows(csv_rows(report))


# ---- the terminal table -------------------------------------------------


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal: combining marks take none, wide
    (CJK) characters two, the rest one."""
    return sum(
        0 if unicodedata.combining(ch) else 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        for ch in text
    )


def fit(text: str, width: int, align: str = "<") -> str:
    """``text`` (NFC) cut with "…" or padded to exactly ``width`` columns."""
    text = unicodedata.normalize("NFC", text)
    if display_width(text) > width:
        while display_width(text) > width - 1:
            text = text[:-1]
        text += "…"
    pad = " " * (width - display_width(text))
    return pad + text if align == ">" else text + pad


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share * 100:.1f} %"


def _interval(low: float | None, high: float | None) -> str:
    return "-" if low is None else f"{low * 100:.1f}–{high * 100:.1f} %"


def _verdict(meets: bool | None) -> str:
    return {None: "", True: "met", False: "BELOW"}[meets]


COLUMNS = [("ratings", 8), ("satisfied", 10), ("share", 8), ("95 % interval", 14),
           ("misuse", 7), ("target", 6)]


def render(report: Any) -> str:
    """The report as an aligned table: a heading, one line per period (and group),
    the groups over the whole range, the total, and notes on what was left out."""
    from fleet_server.reports import TARGET_SHARE

    q = report.query
    lines = [
        f"Satisfaction: {report.subject}, {q.first_day:%Y-%m-%d} to {q.last_day:%Y-%m-%d} "
        f"(Hanoi time), by {q.by.value}; target ≥ {TARGET_SHARE:.0%}",
    ]
    name_width = 0
    if q.group is not None:
        names = [r.group.name for r in (*report.rows, *report.groups)]
        name_width = min(NAME_WIDTH, max([display_width(n) for n in names] + [len(q.group.value)]))

    def line(period: str, name: str, cells: list[str]) -> str:
        parts = [fit(period, 10)]
        if name_width:
            parts.append(fit(name, name_width))
        parts += [fit(c, w, ">") for c, (_, w) in zip(cells, COLUMNS)]
        return "  ".join(parts).rstrip()

    def tally_cells(t: Any) -> list[str]:
        return [str(t.ratings), str(t.satisfied), _percent(t.share), _interval(t.low, t.high),
                str(t.misuse_flagged), _verdict(t.meets_target)]

    lines.append(line("period", q.group.value if q.group else "", [h for h, _ in COLUMNS]))
    for r in report.trend if q.group is None else report.rows:
        lines.append(line(r.period.label, r.group.name if r.group else "", tally_cells(r.tally)))
    if report.groups and len(report.trend) > 1:
        for r in report.groups:
            lines.append(line("all", r.group.name, tally_cells(r.tally)))
    lines.append(line("all", "all" if name_width else "", tally_cells(report.total)))

    t = report.total
    if not t.ratings and not t.misuse_flagged:
        lines.append("No ratings in this range.")
    if t.misuse_flagged:
        lines.append(f"{t.misuse_flagged} misuse-flagged taps are counted apart, not in the share.")
    if t.clock_unsynced:
        lines.append(f"{t.clock_unsynced} taps came from a node whose clock was not synchronised: "
                     "their day may be wrong.")
    return "\n".join(lines)
