"""`command send`, `job list` and `job show`: remote commands to nodes, as jobs, from the
server's shell.

`command send NAME` stores a job in the store (the issuer is ``cli:USER@HOST``) and
the running fleet server publishes it (fleet_server.jobs); it prints the job id and
follows the progress with a bar until no node is pending (``--no-wait``: prints the id
only). `job show ID` prints a job's audit record: who asked what, when, for which
nodes, and what each answered; ``--save DIR`` writes fetched logs and screenshots.
"""

from __future__ import annotations

import argparse
import base64
import getpass
import json
import socket
import sys
import time
from pathlib import Path
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store

COMMANDS = ("restart-agent", "reboot", "identify", "test-sound", "self-test", "screenshot",
            "fetch-logs", "update-reset")
"""As fleet_server.jobs.COMMANDS (not imported: `--help` stays light)."""
POLL_S = 0.5
NOT_SENT_WARNING_S = 10.0
BAR_WIDTH = 30


def add(sub: argparse._SubParsersAction) -> None:
    command = sub.add_parser("command", help="send a remote command to nodes, as a job")
    actions = command.add_subparsers(dest="command_action", required=True, metavar="ACTION")
    send = actions.add_parser(
        "send", help="send NAME to the nodes chosen; prints the job id and follows its progress",
        description="Send a command to nodes as a job. Choose the nodes with --node (repeat), "
                    "--site, --region or --all. The running fleet server publishes it; a node "
                    "that is offline gets it when it returns, until it expires.",
    )
    db_option(send)
    send.add_argument("name", choices=COMMANDS, metavar="NAME", help=", ".join(COMMANDS))
    where = send.add_mutually_exclusive_group(required=True)
    where.add_argument("--node", dest="nodes", action="append", metavar="NODE",
                       help="a node id (repeat for several)")
    where.add_argument("--site", help="every node of this site")
    where.add_argument("--region", help="every node of the sites of this region")
    where.add_argument("--all", action="store_true", help="every node that is not retired")
    send.add_argument("--arg", dest="args", action="append", default=[], metavar="KEY=VALUE",
                      help="an argument of the command, e.g. --arg lines=500 --arg since=2h "
                           "(docs/http-api.md lists each command's arguments)")
    send.add_argument("--expires", default="10m", metavar="DURATION",
                      help="not run by a node that gets it later than this "
                           "(default 10m; at most 7d)")
    send.add_argument("--no-wait", action="store_true", help="print the job id and return")
    send.add_argument("--yes", action="store_true",
                      help="confirm reboot or restart-agent of a whole site, region or fleet")
    send.set_defaults(handler=_send)

    job = sub.add_parser("job", help="remote-command jobs: list them, show one")
    job_actions = job.add_subparsers(dest="job_action", required=True, metavar="ACTION")
    listing = job_actions.add_parser("list", help="jobs newest first, with their progress")
    db_option(listing)
    listing.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    listing.set_defaults(handler=_list)
    show = job_actions.add_parser("show", help="a job's audit record and each node's outcome")
    db_option(show)
    show.add_argument("job_id", metavar="ID")
    show.add_argument("--save", type=Path, metavar="DIR",
                      help="write each node's fetched logs (.log) and screenshot into DIR")
    show.set_defaults(handler=_show)


def parse_arg(text: str) -> tuple[str, str]:
    """``KEY=VALUE``, the value as text: the node reads it as its argument's type
    (``lines=500`` a number, ``since=2h`` a duration), and refuses it naming the key."""
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ValueError(f"--arg {text!r}: write KEY=VALUE")
    return key, value


def progress_line(p: Any, width: int = BAR_WIDTH) -> str:
    """``[####------] 4/10 done 3 · failed 1 · expired 0 · pending 6``."""
    answered = p.total - p.pending
    filled = round(width * answered / p.total) if p.total else width
    return (f"[{'#' * filled}{'-' * (width - filled)}] {answered}/{p.total}  done {p.done} · "
            f"failed {p.failed} · expired {p.expired} · pending {p.pending}")


def _send(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import jobs
    from rpfleet.durations import parse_duration

    try:
        request_args = dict(parse_arg(a) for a in args.args)
        expires = parse_duration(args.expires)
    except ValueError as exc:
        return fail(str(exc))
    request = jobs.JobRequest(
        command=args.name, args=request_args,
        nodes=tuple(args.nodes) if args.nodes else None, site=args.site, region=args.region,
        all=args.all, expires_in_s=expires,
    )
    engine = open_store(settings)
    if engine is None:
        return 1
    if args.name in jobs.DESTRUCTIVE and not args.nodes and not args.yes:
        return fail(f"{args.name} of every node of {request.selector()}: add --yes to confirm")
    issuer = f"cli:{getpass.getuser()}@{socket.gethostname()}"[:128]
    try:
        job_id = jobs.create_job(engine, request, issuer)
    except jobs.JobError as exc:
        return fail(str(exc))
    print(job_id, flush=True)
    if args.no_wait:
        return 0
    try:
        return _follow(engine, job_id)
    except KeyboardInterrupt:
        print(f"\nstopped following; the job goes on: rpfleet server job show {job_id}",
              file=sys.stderr)
        return 130


def _follow(engine: Any, job_id: str) -> int:
    from fleet_server.api.job_routes import detail

    tty = sys.stderr.isatty()
    last = ""
    started = time.monotonic()
    warned = False
    while True:
        with engine.connect() as conn:
            found = detail(conn, job_id, limit=1)
        assert found is not None
        if not warned and time.monotonic() - started > NOT_SENT_WARNING_S and not any(
            n.sends for n in found.nodes
        ):
            print(("\n" if tty else "") + "nothing has been sent yet: is the fleet server "
                  "(rpfleet server run) running on this store?", file=sys.stderr, flush=True)
            warned = True
        line = progress_line(found.progress)
        if line != last:
            print(("\r" if tty else "") + line, end="" if tty else "\n", file=sys.stderr,
                  flush=True)
            last = line
        if found.finished:
            break
        time.sleep(POLL_S)
    if tty:
        print(file=sys.stderr)
    with engine.connect() as conn:
        _print_outcomes(detail(conn, job_id))
    p = found.progress
    return 0 if p.done == p.total else 3


def _list(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import job_store
    from fleet_server.api.job_routes import as_job
    from fleet_server.store import utc_now

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        rows, total = job_store.job_page(conn, utc_now(), limit=max(1, args.limit), offset=0)
    if not rows:
        print("no jobs")
        return 0
    print(f"{'job':<32} {'asked (UTC)':<16} {'command':<13} {'issuer':<24} progress")
    for row in rows:
        job = as_job(row)
        p = job.progress
        print(f"{job.id:<32} {job.created_at:%Y-%m-%d %H:%M} {job.command:<13} "
              f"{job.issuer[:24]:<24} {p.total - p.pending}/{p.total} done {p.done} · "
              f"failed {p.failed} · expired {p.expired} · pending {p.pending}")
    if total > len(rows):
        print(f"({total - len(rows)} older job(s) not shown: --limit)")
    return 0


def _show(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.api.job_routes import detail

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        found = detail(conn, args.job_id, with_output=args.save is not None)
    if found is None:
        return fail(f"no job {args.job_id!r}")
    print(f"job       {found.id}")
    asked = json.dumps(found.args, ensure_ascii=False) if found.args else ""
    print(f"command   {found.command} {asked}")
    print(f"asked by  {found.issuer} at {found.created_at:%Y-%m-%d %H:%M:%S} UTC")
    print(f"expires   {found.expires_at:%Y-%m-%d %H:%M:%S} UTC")
    print(f"nodes     {json.dumps(found.selector, ensure_ascii=False)}")
    print(f"progress  {progress_line(found.progress)}")
    _print_outcomes(found)
    if args.save is not None:
        for saved in _save(found, args.save):
            print(f"saved {saved}")
    return 0


def _print_outcomes(found: Any) -> None:
    print(f"{'node':<24} {'state':<8} {'outcome':<8} {'finished (UTC)':<19} detail")
    for n in found.nodes:
        finished = f"{n.finished_at:%Y-%m-%d %H:%M:%S}" if n.finished_at else ""
        print(f"{n.node_id:<24} {n.state:<8} {n.outcome or '':<8} {finished:<19} {n.detail or ''}")


def _save(found: Any, where: Path) -> list[Path]:
    where.mkdir(parents=True, exist_ok=True)
    saved = []
    for n in found.nodes:
        output = n.output or {}
        if "lines" in output:
            path = where / f"{n.node_id}-{found.id[:8]}.log"
            path.write_text("\n".join(output["lines"]) + "\n", encoding="utf-8")
            saved.append(path)
        if "data_base64" in output:
            suffix = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}.get(
                output.get("media_type", ""), ".bin")
            path = where / f"{n.node_id}-{found.id[:8]}{suffix}"
            path.write_bytes(base64.b64decode(output["data_base64"]))
            saved.append(path)
    return saved
