"""`rpfleet agent`: run the node agent or check its configuration file."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from pydantic import ValidationError

from agent import enroll_command, selftest_command
from agent.settings import DEFAULT_CONFIG, AgentSettings, load_settings
from rpfleet.validation import error_lines


def main(argv: list[str], prog: str = "rpfleet agent") -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__)
    sub = parser.add_subparsers(dest="action", required=True)
    for name, text in (
        ("run", "run the agent until SIGTERM or Ctrl-C"),
        ("check-config", "validate the config file; non-zero exit naming each bad field"),
    ):
        cmd = sub.add_parser(name, help=text, description=text)
        cmd.add_argument(
            "--config", type=Path, default=DEFAULT_CONFIG, help=f"TOML file (default {DEFAULT_CONFIG})"
        )
    run = sub.choices["run"]
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    enroll_command.add(sub)
    selftest_command.add(sub)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) is not None:
        return args.command(args)

    settings = _load(args.config)
    if settings is None:
        return 1
    if args.action == "check-config":
        print(f"{args.config}: ok (node {settings.node_id}, {len(settings.peripherals)} peripheral(s))")
        return 0
    from agent import logs

    logs.setup(args.log_level, settings.log_format, settings.node_id)
    return asyncio.run(_run(settings))


def _load(path: Path) -> AgentSettings | None:
    try:
        return load_settings(path)
    except FileNotFoundError as exc:
        print(f"rpfleet agent: {exc}", file=sys.stderr)
    except ValidationError as exc:
        print(f"rpfleet agent: {path} is not a valid agent config:", file=sys.stderr)
        for line in error_lines(exc):
            print(f"  {line}", file=sys.stderr)
    return None


async def _run(settings: AgentSettings) -> int:
    """Run until stopped; the exit status is 75 when the agent ends for an update
    (the unit's ``RestartForceExitStatus=75`` starts the release ``current`` names)."""
    from agent.node import NodeAgent

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    agent = NodeAgent(settings)
    await agent.run(stop)
    return agent.updates.exit_status or 0
