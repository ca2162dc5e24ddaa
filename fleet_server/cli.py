"""`rpfleet server`: run the fleet server and manage its store.

Settings come from ``RPFLEET_SERVER_*`` variables (for example
``RPFLEET_SERVER_DB_URL``, ``RPFLEET_SERVER_BROKER__PORT``); the options
override them. `rpfleet server COMMAND --help` explains each command.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from pydantic import ValidationError

from fleet_server.commands import MODULES


def main(argv: list[str], prog: str = "rpfleet server") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    for module in MODULES:
        module.add(sub)
    args = parser.parse_args(argv)
    settings = settings_from(args)
    if settings is None:
        return 1
    return args.handler(args, settings)


def settings_from(args: argparse.Namespace) -> Any:
    """Settings from the environment, with the command line's --db and broker options on top."""
    from fleet_server.settings import ServerSettings
    from rpfleet.validation import error_lines

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
    except ValidationError as exc:
        for line in error_lines(exc):
            print(f"rpfleet server: {line}", file=sys.stderr)
        return None
    overrides: dict[str, Any] = {}
    if getattr(args, "pki", None):
        overrides["enrollment"] = settings.enrollment.model_copy(update={"pki_dir": args.pki})
    if getattr(args, "db", None):
        overrides["db_url"] = args.db
    if broker:
        overrides["broker"] = settings.broker.model_copy(update=broker)
    for option in ("http_host", "http_port"):
        if getattr(args, option, None) is not None:
            overrides[option] = getattr(args, option)
    return settings.model_copy(update=overrides)
