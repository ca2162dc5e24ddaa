"""What the subcommands share: the --db option and opening a current store."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import sqlalchemy as sa


def db_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="database URL (default sqlite:///fleet.sqlite)")


def open_store(settings: Any) -> sa.Engine | None:
    """The store at the newest schema, or None after saying why (and how to fix it)."""
    from fleet_server import migrate, store

    try:
        return store.connect(settings.db_url)
    except migrate.OutOfDate as exc:
        print(f"rpfleet server: {exc}", file=sys.stderr)
        return None


def fail(message: str) -> int:
    print(f"rpfleet server: {message}", file=sys.stderr)
    return 2
