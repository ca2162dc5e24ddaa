"""`import-sites`: load or update regions, sites and counters from a CSV file."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from fleet_server.commands.common import db_option, fail, open_store

if TYPE_CHECKING:
    from fleet_server.registry import ImportPlan
    from fleet_server.sites_csv import RowError

HELP = """\
Load or update regions, sites and counters from a CSV file, in one transaction.
Running it again with the same file changes nothing; a changed name, kind,
region or address is updated. Sites not in the file are left alone. If any
row is bad, every problem is listed by line and column and nothing is written.

The file: UTF-8 (Excel's "CSV UTF-8", with its BOM, is fine), separated by
commas (or semicolons or tabs, as the header line is), the first line naming
the columns in any order:

  region_id    optional  branch/district id; empty: the site has no region
  region_name  optional  needed with region_id; one name per region_id
  site_id      required  lowercase a-z, 0-9 and '-', at most 64 characters
  site_name    required  e.g. Phường Ba Đình
  kind         required  reception | commune | agency
  address      optional
  counters     optional  a count ("3": counters 1, 2, 3) or a list of counter
                         ids ("1;2;vip"; "3;" is the single counter 3); the
                         list is complete: counters not in it are removed.
                         Without this column, counters are left as they are.

Example:
  region_id,region_name,site_id,site_name,kind,address,counters
  cn-ba-dinh,Chi nhánh Ba Đình,phuong-ba-dinh,Phường Ba Đình,commune,"Trụ sở UBND phường Ba Đình, Hà Nội",5

A sample shaped like Hanoi (12 branches, 632 sites) ships as
fleet_server/data/hanoi-sites.csv; docs/registry.md has more.
"""

BIG_FILE_LINES = 1000
"""Files with at least this many lines get a progress line on stderr."""
SHOWN_PROBLEMS = 50
SHOWN_CHANGES = 30


def add(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "import-sites", help="load or update regions, sites and counters from a CSV file",
        description=HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    db_option(parser)
    parser.add_argument("file", metavar="FILE.csv", help="the sites file ('-': standard input)")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the file and show what would change, writing nothing")
    parser.set_defaults(handler=_import_sites)


class ProgressLine:
    """``label: 1000 of 5000`` on ``stream``: rewritten in place on a terminal,
    otherwise a new line at most every tenth of the way."""

    def __init__(self, stream: TextIO, label: str) -> None:
        self._stream = stream
        self._label = label
        self._live = stream.isatty()
        self._shown = -1

    def __call__(self, done: int, total: int) -> None:
        tenth = done * 10 // max(total, 1)
        if self._live:
            end = "\n" if done >= total else ""
            print(f"\r{self._label}: {done} of {total}", end=end, file=self._stream, flush=True)
        elif tenth > self._shown:
            self._shown = tenth
            print(f"{self._label}: {done} of {total}", file=self._stream, flush=True)


def _import_sites(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import registry
    from fleet_server.sites_csv import read_sites

    name = "standard input" if args.file == "-" else args.file
    try:
        data = sys.stdin.buffer.read() if args.file == "-" else Path(args.file).read_bytes()
    except OSError as exc:
        return fail(f"cannot read {name}: {exc.strerror or exc}")
    big = data.count(b"\n") >= BIG_FILE_LINES
    checked = read_sites(data, ProgressLine(sys.stderr, f"{name}: checked line") if big else None)
    if not checked.ok:
        _report_problems(name, checked.errors)
        return 1
    if not checked.rows:
        print(f"rpfleet server import-sites: {name} lists no sites; nothing was written",
              file=sys.stderr)
        return 1

    engine = open_store(settings)
    if engine is None:
        return 1
    progress = ProgressLine(sys.stderr, "written") if big else None
    with (engine.connect() if args.dry_run else engine.begin()) as conn:
        plan = registry.import_sites(conn, checked.rows, dry_run=args.dry_run, progress=progress)
        stranded = registry.nodes_at_removed_counters(conn, plan)
    engine.dispose()
    regions = len({row.region_id for row in checked.rows if row.region_id})
    print(f"{name}: {len(checked.rows)} sites in {regions} regions")
    print(render_tallies(plan, counters=checked.manages_counters))
    if args.dry_run:
        print(f"dry run: nothing was written; the import would make {plan.writes} change(s)")
        for change in plan.changes[:SHOWN_CHANGES]:
            print(f"  {change}")
        if plan.writes > SHOWN_CHANGES:
            print(f"  ... and {plan.writes - SHOWN_CHANGES} more")
    for node, site, counter in stranded:
        print(f"warning: node {node} is at counter {counter} of {site}, which the file no longer "
              "lists; place it again with `rpfleet server assign-node`", file=sys.stderr)
    return 0


def render_tallies(plan: ImportPlan, *, counters: bool) -> str:
    """Created/updated/unchanged(/removed) per table, as a small aligned table."""
    lines = [f"{'':<9}{'created':>9}{'updated':>9}{'unchanged':>11}{'removed':>9}"]
    for table, tally in plan.tallies.items():
        if table == "counters" and not counters:
            lines.append(f"{'counters':<9}  (no counters column: left as they are)")
            continue
        removed = str(tally.removed) if table == "counters" else "-"
        lines.append(f"{table:<9}{tally.created:>9}{tally.updated:>9}{tally.unchanged:>11}"
                     f"{removed:>9}")
    return "\n".join(lines)


def _report_problems(name: str, errors: list[RowError]) -> None:
    lines = len({e.line for e in errors})
    print(f"rpfleet server import-sites: {name}: {len(errors)} problem(s) on {lines} line(s); "
          "nothing was written:", file=sys.stderr)
    for error in errors[:SHOWN_PROBLEMS]:
        print(f"  {error}", file=sys.stderr)
    if len(errors) > SHOWN_PROBLEMS:
        print(f"  ... and {len(errors) - SHOWN_PROBLEMS} more", file=sys.stderr)
