"""`broker-config`: the Mosquitto configuration and ACL for a fleet PKI.

Writes ``mosquitto.conf`` and ``acl`` to --out. The TLS listener admits only
clients with a certificate from the fleet CA that is not in its CRL, and takes
the certificate's CN as the MQTT username (a node's id, or the fleet server's
``_fleet-server``). The files of the PKI are referred to where they are, so a
revocation (a new crl.pem) takes effect after ``systemctl reload mosquitto``
(SIGHUP) without a new config. Mosquitto re-reads them as its own user after
dropping root, so when that user (--broker-user) exists, its group is given
read access to broker.key and passage through the PKI directory; ca.key stays
the owner's alone.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path

from provisioning.mosquitto import TLS_PORT, TlsListener, render_acl, render_config


def add(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "broker-config",
        help="write mosquitto.conf and the ACL for the fleet PKI (mutual TLS)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--pki", type=Path, required=True, metavar="DIR",
                        help="the fleet PKI made by `rpfleet provision init DIR`")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR",
                        help="where mosquitto.conf and acl are written")
    parser.add_argument("--port", type=_port, default=TLS_PORT,
                        help=f"TLS port (default {TLS_PORT})")
    parser.add_argument("--bind", metavar="ADDRESS",
                        help="address of the TLS listener (default: every interface)")
    parser.add_argument("--plain-port", type=_port, metavar="PORT",
                        help="also a plain-TCP listener with passwords, on 127.0.0.1 only")
    parser.add_argument("--password-file", type=Path, metavar="FILE",
                        help="mosquitto_passwd file for the plain listener "
                        "(required with --plain-port)")
    parser.add_argument("--data-dir", type=Path, default=Path("/var/lib/mosquitto"), metavar="DIR",
                        help="where the broker persists sessions (default /var/lib/mosquitto)")
    parser.add_argument("--log-file", type=Path, metavar="FILE",
                        help="the broker's log file "
                        "(default: stderr, which systemd keeps in the journal)")
    parser.add_argument("--broker-user", default="mosquitto", metavar="USER",
                        help="the user Mosquitto runs as, given read access to the broker's files "
                        "(default mosquitto; skipped when no such user exists)")
    parser.set_defaults(handler=_broker_config)


def _broker_config(args: argparse.Namespace) -> int:
    from provisioning.fleet_dir import FleetDir

    fleet = FleetDir(args.pki)
    needed = (fleet.ca_cert, fleet.broker.cert, fleet.broker.key, fleet.crl)
    missing = [path for path in needed if not path.is_file()]
    if missing:
        return _fail(f"{args.pki} is not a complete fleet PKI (no {missing[0].name}): "
                     f"run `rpfleet provision init {args.pki}`")
    if args.plain_port is not None and args.password_file is None:
        return _fail("--plain-port needs --password-file: the plain listener takes passwords")
    if args.password_file is not None and args.plain_port is None:
        return _fail("--password-file is for the plain listener: give --plain-port too")
    if args.bind is not None:
        try:
            ipaddress.ip_address(args.bind)
        except ValueError:
            return _fail(f"--bind {args.bind!r} is not an IP address")
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    acl = out / "acl"
    config = render_config(
        data_dir=args.data_dir.resolve(),
        acl_file=acl.resolve(),
        tls=TlsListener.for_fleet(fleet, args.port, args.bind),
        port=args.plain_port,
        password_file=args.password_file.resolve() if args.password_file else None,
        log_file=args.log_file.resolve() if args.log_file else None,
    )
    granted = _grant_broker_read(fleet, args.broker_user)
    _write(acl, render_acl())
    _write(out / "mosquitto.conf", config)
    where = args.bind or "every interface"
    print(f"wrote {out / 'mosquitto.conf'} and {acl}: mutual TLS on {where}, port {args.port}"
          + (f"; passwords on 127.0.0.1:{args.plain_port}" if args.plain_port else ""))
    if granted:
        print(granted)
    print(f"run: mosquitto -c {(out / 'mosquitto.conf').resolve()}")
    return 0


def _grant_broker_read(fleet, user: str) -> str | None:
    """Let ``user``'s group pass through the PKI directory and read the broker's key."""
    import grp
    import os
    import pwd

    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        return None
    if os.geteuid() != 0:
        return f"note: run as root to give {user} read access to {fleet.broker.key}"
    group = grp.getgrgid(entry.pw_gid).gr_name
    os.chown(fleet.path, -1, entry.pw_gid)
    os.chmod(fleet.path, 0o710)
    os.chown(fleet.broker.key, -1, entry.pw_gid)
    os.chmod(fleet.broker.key, 0o640)
    for public in (fleet.ca_cert, fleet.broker.cert, fleet.crl):
        os.chmod(public, 0o644)
    return f"group {group} may read {fleet.broker.key.name} and the certificates; ca.key stays 0600"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a TCP port") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a TCP port (1 to 65535)")
    return port


def _fail(message: str) -> int:
    print(f"rpfleet provision broker-config: {message}", file=sys.stderr)
    return 2
