"""`openapi FILE`: write the HTTP API's OpenAPI document (committed as docs/openapi.json)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any


def add(sub: argparse._SubParsersAction) -> None:
    openapi = sub.add_parser(
        "openapi", help="write the HTTP API's OpenAPI document (docs/openapi.json in the repo)"
    )
    openapi.add_argument("file", type=Path, help="where to write it, e.g. docs/openapi.json")
    openapi.set_defaults(handler=_openapi)


def _openapi(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api.openapi import write

    print(write(args.file))
    return 0
