"""`release add|list`: the signed artifacts the server can roll out.

``add`` checks the artifact's signature against the public release keys given
with ``--trust`` (the server holds no private key), then copies it into the
releases directory, from where the enrollment listener serves it to nodes.
"""

from __future__ import annotations

import argparse
import getpass
import os
from pathlib import Path
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store

RELEASES_DIR_ENV = "RPFLEET_SERVER_RELEASES_DIR"


def add(sub: argparse._SubParsersAction) -> None:
    release = sub.add_parser("release", help="signed agent releases the server can roll out")
    actions = release.add_subparsers(dest="release_action", required=True, metavar="ACTION")

    put = actions.add_parser("add", help="verify a signed artifact and keep it as a release")
    db_option(put)
    put.add_argument("file", type=Path, metavar="FILE")
    put.add_argument("--trust", type=Path, nargs="+", required=True, metavar="PUBKEY",
                     help="public release key file(s) (PEM) a signature must be made by")
    put.add_argument("--releases-dir", type=Path, default=None,
                     help=f"where artifacts are kept (default ${RELEASES_DIR_ENV}, else "
                          "releases/ beside a SQLite store, else ./releases)")
    put.add_argument("--by", default=None, help="who adds it (default cli:$USER)")
    put.set_defaults(handler=_add)

    listing = actions.add_parser("list", help="the releases the server holds")
    db_option(listing)
    listing.set_defaults(handler=_list)


def releases_dir(args: argparse.Namespace, settings: Any) -> Path:
    if args.releases_dir is not None:
        return args.releases_dir
    if os.environ.get(RELEASES_DIR_ENV):
        return Path(os.environ[RELEASES_DIR_ENV])
    import sqlalchemy as sa

    url = sa.make_url(settings.db_url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).resolve().parent / "releases"
    return Path("releases")


def _add(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.rollouts.releases import ReleaseError, add_release
    from fleet_server.store import utc_now
    from rpfleet.release.keys import ReleaseKeyError, load_public_key

    try:
        keys = [load_public_key(path) for path in args.trust]
    except ReleaseKeyError as exc:
        return fail(f"--trust: {exc}")
    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        release = add_release(engine, args.file, keys, releases_dir(args, settings),
                              by=args.by or f"cli:{getpass.getuser()}", now=utc_now())
    except ReleaseError as exc:
        return fail(str(exc))
    print(f"release {release.version} ({release.architecture}, {release.size} bytes, "
          f"sha256 {release.sha256[:16]}…) kept at {release.path}")
    return 0


def _list(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.rollouts import store

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        found = store.list_releases(conn)
    if not found:
        print("no releases")
    for r in found:
        print(f"{r.version:<16} {r.architecture:<8} {r.size:>12} bytes  sha256 {r.sha256[:16]}…  "
              f"{r.added_at:%Y-%m-%d %H:%M} UTC by {r.added_by}")
    return 0
