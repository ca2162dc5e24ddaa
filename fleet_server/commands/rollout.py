"""`rollout start|status|pause|resume|abort`: a release to the fleet in waves.

These only change the store; the running server (one worker of many) steps
the rollout and publishes each node's desired update within seconds
(fleet_server.rollouts.publish.step).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store


def add(sub: argparse._SubParsersAction) -> None:
    rollout = sub.add_parser("rollout", help="roll a release out in waves; watch, pause, abort")
    actions = rollout.add_subparsers(dest="rollout_action", required=True, metavar="ACTION")

    begin = actions.add_parser("start", help="plan the waves and send the first one")
    db_option(begin)
    begin.add_argument("version")
    begin.add_argument("--waves", default="1%,10%,50%,100%",
                       help="cumulative shares of the nodes (default 1%%,10%%,50%%,100%%)")
    begin.add_argument("--sites", default=None, help="only these site ids, comma-separated")
    begin.add_argument("--soak", default="30m",
                       help="how long a node must run healthy on it before its wave passes")
    begin.add_argument("--max-failures", default="5%",
                       help="halt past this many failed nodes: a share of those sent it, or a count")
    begin.add_argument("--tap-tolerance", type=float, default=0.3,
                       help="how far (0-1) taps per open hour may fall before the gate fails")
    begin.add_argument("--by", default=None)
    begin.set_defaults(handler=_start)

    show = actions.add_parser("status", help="a rollout's waves, counts and gates (default: newest)")
    db_option(show)
    show.add_argument("id", type=int, nargs="?")
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=_status)

    for name, text in (("pause", "stop opening waves"),
                       ("resume", "run again after a pause or a halt (excusing the failed nodes)"),
                       ("abort", "stop for good: send nodes back their previous release, or clear")):
        action = actions.add_parser(name, help=text)
        db_option(action)
        action.add_argument("id", type=int)
        action.add_argument("--by", default=None)
        action.set_defaults(handler=_steer, action=name)


def _by(args: argparse.Namespace) -> str:
    return args.by or f"cli:{getpass.getuser()}"


def _start(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.rollouts import progress
    from fleet_server.rollouts.gates import Policy
    from fleet_server.rollouts.plan import PlanError, parse_failure_limit, parse_soak, parse_waves
    from fleet_server.store import utc_now

    try:
        shares = parse_waves(args.waves)
        policy = Policy(soak_s=parse_soak(args.soak), failures=parse_failure_limit(args.max_failures),
                        tap_tolerance=args.tap_tolerance)
    except PlanError as exc:
        return fail(f"--{exc}")
    if not 0 <= args.tap_tolerance <= 1:
        return fail("--tap-tolerance: between 0 and 1")
    sites = [s.strip() for s in args.sites.split(",") if s.strip()] if args.sites else None
    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        rollout_id = progress.start(engine, args.version, shares, policy, sites=sites, by=_by(args),
                                    now=utc_now())
    except progress.RolloutError as exc:
        return fail(str(exc))
    with engine.connect() as conn:
        _print(progress.status(conn, rollout_id))
    return 0


def _status(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.rollouts import progress, store

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        rollout_id = args.id
        if rollout_id is None:
            _, rows = store.list_rollouts(conn, limit=1)
            if not rows:
                print("no rollouts")
                return 0
            rollout_id = rows[0].id
        try:
            found = progress.status(conn, rollout_id)
        except progress.RolloutError as exc:
            return fail(str(exc))
    if args.json:
        print(json.dumps(found, default=str, ensure_ascii=False, indent=2))
    else:
        _print(found)
    return 0


def _print(found: dict) -> None:
    print(f"rollout {found['id']} of {found['version']}: {found['state']}, wave {found['wave']} "
          f"of {len(found['waves'])}" + (f" (sites {', '.join(found['sites'])})" if found['sites'] else ""))
    for wave in found["waves"]:
        counts = ", ".join(f"{n} {state}" for state, n in sorted(wave["counts"].items()))
        print(f"  wave {wave['wave']} ({wave['share']:.0%}): {wave['nodes']} node(s), {wave['state']}"
              + (f": {counts}" if counts else ""))
    gates = found.get("gates") or {}
    if gates:
        print(f"  gates: {gates.get('action')}: {gates.get('reason')}")
        if gates.get("taps"):
            print(f"  taps: {gates['taps']['state']}: {gates['taps']['detail']}")
    if found.get("reason"):
        print(f"  reason: {found['reason']}")


def _steer(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server.rollouts import progress
    from fleet_server.store import utc_now

    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        if args.action == "pause":
            progress.pause(engine, args.id, by=_by(args), now=utc_now())
            print(f"rollout {args.id} paused")
        elif args.action == "resume":
            excused = progress.resume(engine, args.id, by=_by(args), now=utc_now())
            print(f"rollout {args.id} running" + (f"; excused: {', '.join(excused)}" if excused else ""))
        else:
            back, cleared = progress.abort(engine, args.id, by=_by(args), now=utc_now())
            print(f"rollout {args.id} aborted: {len(back)} node(s) sent back their previous "
                  f"release, {len(cleared)} desired update(s) cleared")
    except progress.RolloutError as exc:
        print(f"rpfleet server: {exc}", file=sys.stderr)
        return 2
    return 0
