"""`rpfleet provision`: the fleet's PKI, the broker's configuration, enrolling nodes.

Commands that touch the store read the fleet server's settings
(``RPFLEET_SERVER_*`` variables, or --db). `rpfleet provision COMMAND --help`
explains each command.
"""

from __future__ import annotations

import argparse

from provisioning.commands import MODULES


def main(argv: list[str], prog: str = "rpfleet provision") -> int:
    parser = argparse.ArgumentParser(
        prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="action", required=True, metavar="COMMAND")
    for module in MODULES:
        module.add(sub)
    args = parser.parse_args(argv)
    return args.handler(args)
