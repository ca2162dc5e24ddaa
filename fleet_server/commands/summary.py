"""`summary`: taps stored and share satisfied, per site."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_server.commands.common import db_option, open_store


def add(sub: argparse._SubParsersAction) -> None:
    summary = sub.add_parser("summary", help="taps stored and share satisfied, per site")
    db_option(summary)
    summary.set_defaults(handler=_summary)


def _summary(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.summary import render, site_summaries

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        print(render(site_summaries(conn)))
    return 0
