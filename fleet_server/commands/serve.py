"""`run` (the server process) and `migrate` (the schema)."""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from pathlib import Path
from typing import Any

from fleet_server.commands.common import db_option, fail


def add(sub: argparse._SubParsersAction) -> None:
    run = sub.add_parser("run", help="ingest from the broker until SIGTERM or Ctrl-C")
    db_option(run)
    run.add_argument("--broker-host")
    run.add_argument("--broker-port", type=int)
    run.add_argument("--password-file", type=Path, help="file holding the server's broker password")
    run.add_argument("--http-host", help="address of the HTTP API (default 127.0.0.1)")
    run.add_argument("--http-port", type=_port, help="port of the HTTP API (default 8080; 0: none)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    run.set_defaults(handler=_run)

    migrate = sub.add_parser("migrate", help="upgrade the database schema in place (to the newest)")
    db_option(migrate)
    migrate.add_argument("--to", default="head", metavar="REVISION", help="default: the newest")
    migrate.set_defaults(handler=_migrate)


def _run(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api.serving import CannotListen
    from fleet_server.migrate import OutOfDate
    from fleet_server.service import FleetServer

    logging.basicConfig(level=args.log_level,
                        format="%(asctime)s server %(name)s %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        server = FleetServer(settings)
    except OutOfDate as exc:
        fail(str(exc))
        return 1
    try:
        server.serve(stop)
    except CannotListen as exc:
        fail(str(exc))
        return 1
    return 0


def _port(text: str) -> int:
    port = int(text)
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (0 to 65535)")
    return port


def _migrate(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import migrate, store

    engine = store.engine_for(settings.db_url)
    before = migrate.current(engine)
    migrate.upgrade(engine, args.to)
    print(f"database: revision {before or '(empty)'} -> {migrate.current(engine)}")
    return 0
