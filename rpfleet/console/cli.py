"""`rpfleet console`: the fleet console in this terminal, over the fleet server's HTTP API.

It needs the server's address and an operator API token (made with
`rpfleet server token create --name NAME`), from the options or from
RPFLEET_SERVER and RPFLEET_TOKEN_FILE."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

SERVER_ENV = "RPFLEET_SERVER"
TOKEN_FILE_ENV = "RPFLEET_TOKEN_FILE"


class SetupError(Exception):
    """What the console needs and was not given, in words for the user."""


def resolve(server: str | None, token_file: Path | None,
            environ: dict[str, str]) -> tuple[str, str]:
    """The server URL and the token, from the options or else the environment.

    Raises SetupError naming what is missing or unreadable.
    """
    server = server or environ.get(SERVER_ENV)
    if token_file is None and environ.get(TOKEN_FILE_ENV):
        token_file = Path(environ[TOKEN_FILE_ENV])
    missing = []
    if not server:
        missing.append(f"the server's address (--server URL or {SERVER_ENV})")
    if token_file is None:
        missing.append(f"an API token file (--token-file FILE or {TOKEN_FILE_ENV})")
    if missing:
        raise SetupError("needs " + " and ".join(missing))
    assert server is not None and token_file is not None
    if not server.startswith(("http://", "https://")):
        raise SetupError(f"--server: {server!r} is not an http:// or https:// URL")
    try:
        token = token_file.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise SetupError(f"--token-file: cannot read {token_file}: {exc.strerror}") from None
    if not token:
        raise SetupError(f"--token-file: {token_file} is empty")
    return server, token


def main(argv: list[str], prog: str = "rpfleet console") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--server", metavar="URL",
                        help=f"the fleet server's HTTP API, e.g. http://127.0.0.1:8080 "
                             f"(default: ${SERVER_ENV})")
    parser.add_argument("--token-file", type=Path, metavar="FILE",
                        help=f"a file holding an operator API token (default: ${TOKEN_FILE_ENV})")
    parser.add_argument("--refresh", type=float, default=5.0, metavar="SECONDS",
                        help="how often the screen on top is reloaded (default 5)")
    args = parser.parse_args(argv)
    try:
        server, token = resolve(args.server, args.token_file, dict(os.environ))
    except SetupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 2
    if args.refresh <= 0:
        print(f"{prog}: --refresh: must be more than 0 seconds", file=sys.stderr)
        return 2

    try:
        from rpfleet.console.app import FleetConsole
        from rpfleet.console.client import FleetApi
    except ImportError as exc:
        print(f"{prog}: {exc} (install it with: pip install 'rpfleet[console]')", file=sys.stderr)
        return 2

    api = FleetApi(server, token, timeout=min(5.0, args.refresh))
    FleetConsole(api, refresh_s=args.refresh).run()
    return 0
