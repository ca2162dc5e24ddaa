"""`init DIR`: the fleet's PKI — a CA, the broker's and the fleet server's identities, a CRL."""

from __future__ import annotations

import argparse
import socket
import sys
from pathlib import Path

from provisioning.fleet_dir import DEFAULT_NAMES, FleetDir, FleetDirError


def add(sub: argparse._SubParsersAction) -> None:
    cmd = sub.add_parser(
        "init", help="make the fleet PKI in DIR (once per fleet)",
        description=__doc__ + "\n\nPrivate keys are written 0600 and never printed. Keep DIR off "
        "git and back it up: losing ca.key means enrolling every node again.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cmd.add_argument("dir", type=Path, help="where the PKI goes, e.g. /etc/rpfleet/pki")
    cmd.add_argument(
        "--broker-name", action="append", dest="broker_names", metavar="NAME",
        help="a DNS name or IP address nodes use to reach the broker (repeat; "
        f"default: {', '.join(DEFAULT_NAMES)} and this machine's name)",
    )
    cmd.add_argument(
        "--server-name", action="append", dest="server_names", metavar="NAME",
        help="a DNS name or IP address nodes use to reach the enrollment endpoint (repeat; same default)",
    )
    cmd.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    default = (*DEFAULT_NAMES, socket.getfqdn())
    try:
        fleet = FleetDir.create(
            args.dir,
            broker_names=tuple(dict.fromkeys(args.broker_names or default)),
            server_names=tuple(dict.fromkeys(args.server_names or default)),
        )
    except FleetDirError as exc:
        print(f"rpfleet provision: {exc}", file=sys.stderr)
        return 2
    print(
        f"fleet PKI made in {fleet.path}\n"
        f"  CA fingerprint (sha256 of its key): {fleet.ca_fingerprint()}\n"
        f"  broker certificate: {fleet.broker.cert}\n"
        f"  fleet server identity: {fleet.server.cert}\n"
        f"next: rpfleet provision broker-config --pki {fleet.path}"
    )
    return 0
