"""`node add|revoke|list`: enrollment codes, certificates, and locking a node out."""

from __future__ import annotations

import argparse
import datetime as dt
import getpass
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

KINDS_HINT = "counter (rating pad + scanner, the default), rating, scanner, kiosk, soundbox, dashboard"


def add(sub: argparse._SubParsersAction) -> None:
    node = sub.add_parser("node", help="enroll, list and revoke nodes")
    actions = node.add_subparsers(dest="node_action", required=True, metavar="ACTION")

    new = actions.add_parser(
        "add", help="make a one-time enrollment code for a node at a site's counter",
        description="Prints a short code, bound to the site and counter, single use and expiring, "
        "for the technician to type at the node: rpfleet agent enroll CODE --server URL.",
    )
    _store_options(new)
    new.add_argument("--site", required=True, help="the site id, as registered")
    new.add_argument("--counter", required=True, help="the counter the node serves")
    new.add_argument("--kind", default="counter", help=f"what the node drives: {KINDS_HINT}")
    new.add_argument("--node-id", help="the node id (default SITE-COUNTER)")
    new.add_argument("--valid", default=None, help="how long the code works (default 24h)")
    new.add_argument("--by", default=None, help="who asks for it (default: your login name)")
    new.add_argument("--server-url", help="the enrollment address to print (default from settings)")
    new.set_defaults(handler=_add)

    revoke = actions.add_parser(
        "revoke", help="lock a node out: revoke its certificates and rewrite the CRL",
        description="Revokes every certificate of NODE and rewrites the CRL in the PKI directory. "
        "The broker refuses the node's next connection once it reloads (SIGHUP); a restart also "
        "cuts a connection the node has open. --reload runs the command that does either.",
    )
    _store_options(revoke)
    revoke.add_argument("node", help="the node id")
    revoke.add_argument("--reason", default="revoked by an operator", help="kept with the certificate")
    revoke.add_argument("--reload", metavar="COMMAND",
                        help='how to make the broker read the CRL, e.g. "systemctl restart mosquitto"')
    revoke.set_defaults(handler=_revoke)

    listing = actions.add_parser("list", help="certificates and enrollment codes, per node")
    _store_options(listing)
    listing.add_argument("--site", help="only this site's nodes")
    listing.set_defaults(handler=_list)


def _store_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="the fleet server's database URL (default RPFLEET_SERVER_DB_URL)")
    parser.add_argument("--pki", type=Path,
                        help="the PKI directory (default RPFLEET_SERVER_ENROLLMENT__PKI_DIR)")


def _open(args: argparse.Namespace) -> tuple[Any, Any, Any] | None:
    """(settings, engine, FleetDir), or None after saying what is missing."""
    from fleet_server.cli import settings_from
    from fleet_server.commands.common import open_store
    from provisioning.fleet_dir import FleetDir

    settings = settings_from(args)
    if settings is None:
        return None
    if settings.enrollment.pki_dir is None:
        print("rpfleet provision: no PKI directory: pass --pki DIR "
              "(made by `rpfleet provision init DIR`)", file=sys.stderr)
        return None
    fleet = FleetDir(settings.enrollment.pki_dir)
    if not fleet.exists():
        print(f"rpfleet provision: {fleet.path} holds no fleet CA: run "
              f"`rpfleet provision init {fleet.path}`", file=sys.stderr)
        return None
    engine = open_store(settings)
    return None if engine is None else (settings, engine, fleet)


def _add(args: argparse.Namespace) -> int:
    from fleet_server import enrollment
    from fleet_server.node_kinds import load_node_kinds
    from rpfleet.durations import parse_duration

    opened = _open(args)
    if opened is None:
        return 1
    settings, engine, fleet = opened
    try:
        ttl = dt.timedelta(seconds=parse_duration(args.valid) if args.valid else settings.enrollment.code_ttl)
    except ValueError as exc:
        return _fail(f"--valid: {exc}")
    by = args.by or os.environ.get("SUDO_USER") or getpass.getuser()
    try:
        kinds = load_node_kinds(settings.enrollment.kinds_file)
        with engine.begin() as conn:
            made = enrollment.create_code(
                conn, fleet, site_id=args.site, counter=args.counter, kind=args.kind,
                created_by=by, ttl=ttl, node_id=args.node_id, kinds=kinds,
            )
    except (enrollment.BadRequest, ValueError, OSError) as exc:
        return _fail(str(exc))
    url = args.server_url or _default_url(settings.enrollment)
    until = made.expires_at.astimezone(_city_zone(settings)).strftime("%Y-%m-%d %H:%M")
    print(
        f"Mã đăng ký / enrollment code:  {made.code}\n"
        f"  node {made.node_id}: site {made.site_id}, counter {made.counter}, kind {made.kind}\n"
        f"  single use, valid until {until} ({settings.alerts.city_timezone})\n"
        f"At the node / tại máy:  rpfleet agent enroll {made.code} --server {url}"
    )
    return 0


def _revoke(args: argparse.Namespace) -> int:
    from fleet_server import enrollment, store

    opened = _open(args)
    if opened is None:
        return 1
    _, engine, fleet = opened
    with engine.begin() as conn:
        count = enrollment.revoke_certificates(conn, args.node, args.reason, store.utc_now())
        if count == 0:
            return _fail(f"node {args.node!r} has no certificate that is not revoked already")
        fleet.write_crl(enrollment.revoked(conn))
    print(f"revoked {count} certificate(s) of {args.node}; CRL rewritten: {fleet.crl}")
    if not args.reload:
        print("now make the broker read the CRL: `systemctl reload mosquitto` refuses the node's next "
              "connection; `systemctl restart mosquitto` also cuts the one it may have open")
        return 0
    done = subprocess.run(shlex.split(args.reload), capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        return _fail(f"the reload command failed ({done.returncode}): {done.stderr.strip()}")
    print(f"broker reloaded ({args.reload}): {args.node} is refused from now on")
    return 0


def _list(args: argparse.Namespace) -> int:
    from fleet_server.enrollment_listing import list_identities, render_identities

    opened = _open(args)
    if opened is None:
        return 1
    settings, engine, _ = opened
    with engine.connect() as conn:
        rows = list_identities(conn, site=args.site)
    print(render_identities(rows, _city_zone(settings)), end="")
    return 0


def _default_url(settings: Any) -> str:
    host = socket.getfqdn() if settings.host in ("0.0.0.0", "::") else settings.host
    return f"https://{host}:{settings.port}"


def _city_zone(settings: Any) -> dt.tzinfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.alerts.city_timezone)


def _fail(message: str) -> int:
    print(f"rpfleet provision: {message}", file=sys.stderr)
    return 2
