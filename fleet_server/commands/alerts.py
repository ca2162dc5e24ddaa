"""`alerts`: the open alerts (or, with --all, their history too)."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_server.commands.common import db_option, open_store


def add(sub: argparse._SubParsersAction) -> None:
    alerts = sub.add_parser("alerts", help="list open alerts, most severe and oldest first")
    db_option(alerts)
    alerts.add_argument("--all", action="store_true", help="closed alerts too (the history)")
    alerts.set_defaults(handler=_alerts)


def _alerts(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.alert_store import aware, list_alerts

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        rows = list_alerts(conn, include_closed=args.all)
    if not rows:
        print("no alerts" if args.all else "no open alerts")
        return 0
    print(f"{'opened (UTC)':<17} {'closed (UTC)':<17} {'severity':<8} {'kind':<18} {'subject':<28} detail")
    for r in rows:
        closed = f"{aware(r.closed_at):%Y-%m-%d %H:%M}" if r.closed_at else "open"
        print(f"{aware(r.opened_at):%Y-%m-%d %H:%M} {closed:<17} {r.severity:<8} {r.kind:<18} "
              f"{r.subject:<28} {r.detail or ''}")
    return 0
