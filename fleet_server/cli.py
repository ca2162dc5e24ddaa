"""`rpfleet server`: run the fleet server, register sites and nodes, show the summary.

Settings come from ``RPFLEET_SERVER_*`` variables (for example
``RPFLEET_SERVER_DB_URL``, ``RPFLEET_SERVER_BROKER__PORT``); the options below
override them.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from pydantic import ValidationError


def main(argv: list[str], prog: str = "rpfleet server") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True)

    run = sub.add_parser("run", help="ingest from the broker until SIGTERM or Ctrl-C")
    _db_option(run)
    run.add_argument("--broker-host")
    run.add_argument("--broker-port", type=int)
    run.add_argument("--password-file", type=Path, help="file holding the server's broker password")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])

    migrate = sub.add_parser("migrate", help="upgrade the database schema in place (to the newest)")
    _db_option(migrate)
    migrate.add_argument("--to", default="head", metavar="REVISION", help="default: the newest")

    summary = sub.add_parser("summary", help="taps stored and share satisfied, per site")
    _db_option(summary)

    site = sub.add_parser("add-site", help="register a site, or rename it")
    _db_option(site)
    site.add_argument("site_id")
    site.add_argument("name")
    site.add_argument("--kind", choices=["reception", "commune", "agency"], default="commune")

    node = sub.add_parser("assign-node", help="put a node at a site and counter")
    _db_option(node)
    node.add_argument("node_id")
    node.add_argument("--site", required=True)
    node.add_argument("--counter")

    args = parser.parse_args(argv)
    settings = _settings(args)
    if settings is None:
        return 1
    if args.action == "run":
        return _run(settings, args.log_level)

    from fleet_server import migrate as migrations
    from fleet_server import store, summary as views

    if args.action == "migrate":
        engine = store.engine_for(settings.db_url)
        before = migrations.current(engine)
        migrations.upgrade(engine, args.to)
        print(f"database: revision {before or '(empty)'} -> {migrations.current(engine)}")
        return 0
    try:
        engine = store.connect(settings.db_url)
    except migrations.OutOfDate as exc:
        print(f"rpfleet server: {exc}", file=sys.stderr)
        return 1
    with engine.begin() as conn:
        if args.action == "summary":
            print(views.render(views.site_summaries(conn)))
        elif args.action == "add-site":
            store.add_site(conn, args.site_id, args.name, args.kind)
        elif args.action == "assign-node":
            from rpfleet.protocol import TopicError, check_node_id

            try:
                check_node_id(args.node_id)
            except TopicError as exc:
                print(f"rpfleet server: {exc}", file=sys.stderr)
                return 2
            store.assign_node(conn, args.node_id, args.site, args.counter)
    return 0


def _db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL (default sqlite:///fleet.sqlite)")


def _settings(args: argparse.Namespace) -> Any:
    from fleet_server.settings import ServerSettings

    overrides: dict[str, Any] = {}
    if args.db:
        overrides["db_url"] = args.db
    broker = {
        key: value
        for key, value in (
            ("host", getattr(args, "broker_host", None)),
            ("port", getattr(args, "broker_port", None)),
            ("password_file", getattr(args, "password_file", None)),
        )
        if value is not None
    }
    try:
        settings = ServerSettings()
        if broker:
            overrides["broker"] = settings.broker.model_copy(update=broker)
        return settings.model_copy(update=overrides)
    except ValidationError as exc:
        from rpfleet.validation import error_lines

        for line in error_lines(exc):
            print(f"rpfleet server: {line}", file=sys.stderr)
        return None


def _run(settings: Any, level: str) -> int:
    from fleet_server.migrate import OutOfDate
    from fleet_server.service import FleetServer

    logging.basicConfig(level=level, format="%(asctime)s server %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = FleetServer(settings)
    except OutOfDate as exc:
        print(f"rpfleet server: {exc}", file=sys.stderr)
        return 1
    server.serve(stop)
    return 0
