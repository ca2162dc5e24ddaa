"""`nodes`: every node with its site, counter, state, last message and peripherals."""

from __future__ import annotations

import argparse
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store


def add(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "nodes", help="list nodes: site, counter, state, last seen, peripherals",
        description="List nodes with their site, counter, state (online, offline, retired or "
                    "unknown), when a message last came from them, and each peripheral's state "
                    "from their latest health (ok, degraded, missing, failed).",
    )
    db_option(parser)
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--site", metavar="SITE_ID", help="only the nodes at this site")
    where.add_argument("--region", metavar="REGION_ID", help="only the nodes in this region")
    parser.set_defaults(handler=_nodes)


def _nodes(args: argparse.Namespace, settings: Any) -> int:
    import sqlalchemy as sa

    from fleet_server.node_list import list_nodes, render_nodes
    from fleet_server.schema import regions, sites
    from fleet_server.store import utc_now

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        for table, wanted, what in ((sites, args.site, "site"), (regions, args.region, "region")):
            if wanted is not None and conn.execute(
                sa.select(table.c.id).where(table.c.id == wanted)
            ).first() is None:
                return fail(f"no {what} {wanted!r} is registered")
        found = list_nodes(conn, site=args.site, region=args.region)
    engine.dispose()
    if not found:
        print("no nodes" + (f" at site {args.site}" if args.site else "")
              + (f" in region {args.region}" if args.region else ""))
        return 0
    print(render_nodes(found, utc_now()))
    return 0
