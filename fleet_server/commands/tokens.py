"""`token create|list|revoke`: API tokens for the HTTP API.

The token is printed once, by `create`, on stdout and nowhere else; the store
keeps only its SHA-256 digest (see fleet_server.api.tokens), so a lost token
is revoked and replaced, never recovered.

Without ``--role`` a token is an operator token (reads the whole API); with
``--role queue|payment`` and one ``--site`` per site served it is the queue
system's or the payment gateway's, and may only announce at those sites.
With ``--role dashboard --site SITE`` it is a hall TV's: it reads that one
site's dashboard page and nothing else (docs/dashboard.md).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store

INTEGRATION_ROLES = ("queue", "payment")
"""As fleet_server.api.tokens.INTEGRATION_ROLES (not imported: `--help` stays light)."""
SCOPED_ROLES = (*INTEGRATION_ROLES, "dashboard")


def add(sub: argparse._SubParsersAction) -> None:
    token = sub.add_parser("token", help="API tokens for the HTTP API: create, list, revoke")
    actions = token.add_subparsers(dest="token_action", required=True, metavar="ACTION")

    create = actions.add_parser("create", help="make a token and print it (once)")
    db_option(create)
    create.add_argument("--name", required=True, help="who or what uses it, e.g. prometheus")
    create.add_argument(
        "--role", choices=SCOPED_ROLES, default=None,
        help="an integration token: the queue system (queue calls) or the payment gateway "
             "(payment confirmations); or a hall TV's (dashboard: one site's dashboard, "
             "read only); without it, an operator token (read access)",
    )
    create.add_argument(
        "--site", dest="sites", action="append", default=[], metavar="SITE",
        help="a site the integration token serves (repeat for several; needs --role); "
             "a dashboard token takes exactly one",
    )
    create.set_defaults(handler=_create)

    listing = actions.add_parser("list", help="the tokens: role, sites, when made and revoked")
    db_option(listing)
    listing.set_defaults(handler=_list)

    revoke = actions.add_parser("revoke", help="refuse a token from now on")
    db_option(revoke)
    revoke.add_argument("name")
    revoke.set_defaults(handler=_revoke)


def _create(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api import tokens

    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        with engine.begin() as conn:
            token = tokens.create(conn, args.name, role=args.role or tokens.OPERATOR,
                                  sites=args.sites)
    except tokens.TokenError as exc:
        return fail(str(exc))
    print(token)
    if args.role == tokens.DASHBOARD:
        # stderr: stdout stays the token alone, for scripts that capture it.
        print(f"the TV opens http://SERVER:PORT/sites/{args.sites[0]}/dashboard#key={token}"
              " (the key after '#' never reaches the server's logs)", file=sys.stderr)
    return 0


def _list(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api import tokens

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        found = tokens.listing(conn)
    print(f"{'name':<32} {'role':<9} {'created':<20} {'revoked':<20} sites")
    for t in found:
        revoked = _when(t.revoked_at) if t.revoked_at else "-"
        served = ",".join(t.sites) or "-"
        print(f"{t.name:<32} {t.role:<9} {_when(t.created_at):<20} {revoked:<20} {served}")
    return 0


def _revoke(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api import tokens

    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        with engine.begin() as conn:
            revoked = tokens.revoke(conn, args.name)
    except tokens.TokenError as exc:
        return fail(str(exc))
    print(f"token {revoked.name!r} revoked at {_when(revoked.revoked_at)}")
    return 0


def _when(at: Any) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%SZ")
