"""`config set|delete|layers|show|drift|publish`: configuration as desired state.

Layers (fleet -> region -> site -> node) are TOML files of the keys a layer
sets (docs/http-api.md, "Config"); ``set`` checks every node the layer applies
to, stores it and publishes the changed desired configs retained on
``down/config`` over a short broker connection of its own (the server's
broker settings, its own client id). If the broker cannot be reached the
change is stored anyway and ``publish`` sends it later.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from pathlib import Path
from typing import Any

from fleet_server.commands.common import db_option, fail, open_store
from rpfleet.node_config import short_version


def add(sub: argparse._SubParsersAction) -> None:
    config = sub.add_parser("config", help="config layers, each node's desired config, drift")
    actions = config.add_subparsers(dest="config_action", required=True, metavar="ACTION")

    put = actions.add_parser("set", help="set a layer from a TOML file and publish what changed")
    db_option(put)
    put.add_argument("place", metavar="SCOPE[:TARGET]",
                     help="fleet, region:ID, site:ID or node:ID")
    put.add_argument("file", type=Path, metavar="FILE.toml")
    _broker_options(put)
    put.set_defaults(handler=_set)

    delete = actions.add_parser("delete", help="remove a layer and publish what changed")
    db_option(delete)
    delete.add_argument("place", metavar="SCOPE[:TARGET]")
    _broker_options(delete)
    delete.set_defaults(handler=_delete)

    layers = actions.add_parser("layers", help="list the layers")
    db_option(layers)
    layers.set_defaults(handler=_layers)

    show = actions.add_parser("show", help="a node's desired config, its version, what it reported")
    db_option(show)
    show.add_argument("node")
    show.set_defaults(handler=_show)

    drift = actions.add_parser("drift", help="nodes not (yet) on their latest desired config")
    db_option(drift)
    drift.set_defaults(handler=_drift)

    publish = actions.add_parser(
        "publish", help="recompute every node's desired config and publish the changed ones "
                        "(--all: every one, e.g. after the broker was replaced)")
    db_option(publish)
    publish.add_argument("--all", action="store_true")
    _broker_options(publish)
    publish.set_defaults(handler=_publish)


def _broker_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker-host", help="the broker (default: the server's settings)")
    parser.add_argument("--broker-port", type=int)
    parser.add_argument("--by", default=None,
                        help="who makes the change, for the change log (default: cli:$USER)")


def _place(text: str) -> tuple[str, str]:
    from fleet_server.config_layers import FLEET_TARGET

    scope, _, target = text.partition(":")
    return scope, target or FLEET_TARGET


def _by(args: argparse.Namespace) -> str:
    return args.by or f"cli:{getpass.getuser()}"


def _refused(exc: Exception) -> int:
    from fleet_server.config_layers import ConfigInvalid

    print("rpfleet server: refused, nothing stored or sent:", file=sys.stderr)
    for problem in getattr(exc, "problems", None) or [exc]:
        print(f"  {problem}", file=sys.stderr)
    return 2 if not isinstance(exc, ConfigInvalid) else 1


def _change(args: argparse.Namespace, settings: Any, make) -> int:
    """Run ``make(engine, link)`` with a broker connection if one can be had."""
    from fleet_server.link import OneShotLink

    engine = open_store(settings)
    if engine is None:
        return 1
    try:
        with OneShotLink(settings.broker) as link:
            return make(engine, link)
    except ConnectionError as exc:
        print(f"rpfleet server: {exc}; storing without publishing", file=sys.stderr)
        return make(engine, None)


def _report(change: Any) -> int:
    print(f"layer {change.layer.name} {'set' if change.action == 'set' else 'deleted'}: "
          f"{len(change.changed)} node(s) with a new desired config, {len(change.published)} published")
    if change.unpublished:
        print(f"not published yet (no broker): {', '.join(change.unpublished)}; "
              "run `rpfleet server config publish` when it is back")
        return 3
    return 0


def _set(args: argparse.Namespace, settings: Any) -> int:
    import tomllib

    from fleet_server import desired_config
    from fleet_server.config_layers import ConfigInvalid, LayerError

    try:
        body = tomllib.loads(args.file.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        return fail(f"{args.file}: {exc}")
    scope, target = _place(args.place)

    def make(engine, link) -> int:
        try:
            change = desired_config.set_layer(engine, scope, target, body, token_name=_by(args),
                                              link=link)
        except (ConfigInvalid, LayerError) as exc:
            return _refused(exc)
        return _report(change)

    return _change(args, settings, make)


def _delete(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import desired_config
    from fleet_server.config_layers import ConfigInvalid, LayerError

    scope, target = _place(args.place)

    def make(engine, link) -> int:
        try:
            change = desired_config.delete_layer(engine, scope, target, token_name=_by(args),
                                                 link=link)
        except (ConfigInvalid, LayerError) as exc:
            return _refused(exc)
        if change is None:
            return fail(f"no config layer {args.place}")
        return _report(change)

    return _change(args, settings, make)


def _publish(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import desired_config
    from fleet_server.config_layers import ConfigInvalid

    def make(engine, link) -> int:
        try:
            changed, published = desired_config.reconcile(engine, link, republish=args.all)
        except ConfigInvalid as exc:
            return _refused(exc)
        print(f"{len(changed)} node(s) with a new desired config, {len(published)} published")
        return 0 if link is not None else 3

    return _change(args, settings, make)


def _layers(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import config_store

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        layers = config_store.list_layers(conn)
    if not layers:
        print("no config layers")
    for stored in layers:
        print(f"{stored.layer.name:<24} {stored.updated_at:%Y-%m-%d %H:%M} UTC by {stored.updated_by}: "
              f"{json.dumps(stored.layer.body, ensure_ascii=False, sort_keys=True)}")
    return 0


def _show(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import config_store

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        state = config_store.node_state(conn, args.node)
        layers = config_store.layers_of_node(conn, args.node)
    if state is None:
        return fail(f"node {args.node!r} has no desired config yet "
                    "(`rpfleet server config publish` computes every node's)")
    print(f"node {state.node}: desired {short_version(state.version)} issued {state.issued_at:%Y-%m-%d %H:%M:%S} UTC "
          f"from {', '.join(layer.name for layer in layers) or 'no layers'}")
    if state.reported_version is None:
        print("reported: nothing yet")
    else:
        print(f"reported: {state.reported_state} {short_version(state.reported_version)} at "
              f"{state.reported_at:%Y-%m-%d %H:%M:%S} UTC"
              + (f": {state.reported_reason}" if state.reported_reason else ""))
    print("in sync" if state.in_sync else "NOT in sync")
    print(json.dumps(state.desired, ensure_ascii=False, indent=2, sort_keys=True))
    return 0


def _drift(args: argparse.Namespace, settings: Any) -> int:
    from fleet_server import config_store

    engine = open_store(settings)
    if engine is None:
        return 1
    with engine.connect() as conn:
        total, states = config_store.drift(conn, limit=10_000, offset=0)
    if not states:
        print("every node is on its latest desired config")
        return 0
    print(f"{total} node(s) not on their latest desired config:")
    print(f"{'node':<28} {'desired':<12} {'reported':<12} {'state':<9} reason")
    for s in states:
        print(f"{s.node:<28} {short_version(s.version):<12} {short_version(s.reported_version or '-'):<12} "
              f"{s.reported_state or '-':<9} {s.reported_reason or ''}")
    return 0
