"""`rpfleet schema export DIR`: one JSON Schema file per message of the contract."""

from __future__ import annotations

import argparse
from pathlib import Path

from rpfleet.protocol.schema import export


def main(argv: list[str], prog: str = "rpfleet schema") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    cmd = sub.add_parser("export", help="write the schemas into DIR (stale ones removed)")
    cmd.add_argument("directory", type=Path, metavar="DIR")
    args = parser.parse_args(argv)
    for path in export(args.directory):
        print(path)
    return 0
