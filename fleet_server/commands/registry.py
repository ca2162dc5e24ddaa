"""`add-site`, `assign-node`: the registry by hand (`import-sites` loads a whole file)."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store


def add(sub: argparse._SubParsersAction) -> None:
    site = sub.add_parser("add-site", help="register a site, or rename it")
    db_option(site)
    site.add_argument("site_id")
    site.add_argument("name")
    site.add_argument("--kind", choices=["reception", "commune", "agency"], default="commune")
    site.set_defaults(handler=_add_site)

    node = sub.add_parser("assign-node", help="put a node at a site and counter")
    db_option(node)
    node.add_argument("node_id")
    node.add_argument("--site", required=True)
    node.add_argument("--counter")
    node.set_defaults(handler=_assign_node)


def _add_site(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import store
    from fleet_server.registry import is_id

    if not is_id(args.site_id):
        return fail(f"{args.site_id!r} is not a site id: use lowercase a-z, 0-9 and '-'")
    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.begin() as conn:
        store.add_site(conn, args.site_id, args.name, args.kind)
    return 0


def _assign_node(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import store
    from fleet_server.registry import placement_problem
    from rpfleet.protocol import TopicError, check_node_id

    try:
        check_node_id(args.node_id)
    except TopicError as exc:
        return fail(str(exc))
    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.begin() as conn:
        problem = placement_problem(conn, args.site, args.counter)
        if problem is None:
            store.assign_node(conn, args.node_id, args.site, args.counter)
    return fail(problem) if problem else 0
