"""The `rpfleet` command's front door.

It knows each subcommand's name and one-line summary, and imports the package
that implements it only when that subcommand runs, so a node with only the
``[agent]`` extra never imports the server, and the reverse.
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {
    "agent": ("agent.cli", "run the node agent, check its config"),
    "server": ("fleet_server.cli", "run the fleet server, show the satisfaction summary"),
    "console": ("rpfleet.console.cli", "the fleet console (terminal UI over the HTTP API)"),
    "provision": ("provisioning.cli", "broker configuration and credentials"),
    "schema": ("rpfleet.schema_cli", "export the JSON Schemas of the wire contract"),
    "demo": ("rpfleet.demo.cli", "a private broker, the server and simulated nodes, live"),
    "release": ("rpfleet.release.cli", "make release keys; build, sign and verify agent artifacts"),
}

USAGE = "usage: rpfleet COMMAND [ARGS...]\n\ncommands:\n" + "".join(
    f"  {name:<10} {summary}\n" for name, (_, summary) in COMMANDS.items()
) + "\n`rpfleet COMMAND --help` explains each one.\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, end="")
        return 0
    if args[0] == "--version":
        from rpfleet import __version__

        print(f"rpfleet {__version__}")
        return 0
    entry = COMMANDS.get(args[0])
    if entry is None:
        print(f"rpfleet: unknown command {args[0]!r}\n\n{USAGE}", end="", file=sys.stderr)
        return 2
    module_name, _ = entry
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        extra = {"agent": "agent", "server": "server", "demo": "agent,server",
                 "console": "console"}.get(args[0], "")
        hint = f" (install it with: pip install 'rpfleet[{extra}]')" if extra else ""
        print(f"rpfleet {args[0]}: {exc}{hint}", file=sys.stderr)
        return 2
    return module.main(args[1:], prog=f"rpfleet {args[0]}")
