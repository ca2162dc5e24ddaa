"""`summary`: taps stored and share satisfied, per site or per region."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_server.commands.common import db_option, open_store


def add(sub: argparse._SubParsersAction) -> None:
    summary = sub.add_parser("summary", help="taps stored and share satisfied, per site or region")
    db_option(summary)
    summary.add_argument("--by", choices=["site", "region"], default="site",
                         help="one row per site (default) or per region (branch/district)")
    summary.set_defaults(handler=_summary)


def _summary(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.summary import region_summaries, render, site_summaries

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        per_site = site_summaries(conn)
    engine.dispose()
    if args.by == "region":
        print(render(region_summaries(per_site), per="region"))
    else:
        print(render(per_site))
    return 0
