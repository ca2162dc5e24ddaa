"""Changing config layers: check every desired config the change makes, store it,
and publish each changed one retained on ``down/config``.

A change is all or nothing: if any node's merged config (or the layer's own
chain: fleet, its region, its site) would be refused by the agent's model,
nothing is stored or sent, and `ConfigInvalid` names each field path with the
node and the layer that set it. Otherwise, in one transaction, the layer is
stored, each affected node's desired config is recomputed (version: content
hash), changed ones are stored with one ``issued_at``, and the change is logged
with the token's name. After the commit each changed desired config is
published retained, so a node that is offline now gets the newest one when it
connects, never an older one (a retained message holds only the last).
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import sqlalchemy as sa

from fleet_server import config_store
from fleet_server.config_layers import (
    FLEET_TARGET, ConfigInvalid, Layer, Problem, check_place, check_shape, desired, ordered,
)
from fleet_server.schema import config_layers, node_configs, sites
from fleet_server.store import utc_now
from rpfleet.protocol import Channel

log = logging.getLogger(__name__)

MAX_PROBLEMS = 20
"""A refusal names at most this many problems (a fleet layer can break every node alike)."""
ADVISORY_LOCK = 0x7270_636F_6E66  # "rpconf": PostgreSQL's lock for config changes

_changing = threading.Lock()
"""One change at a time in this process, publishing included: a change published after a
later one would leave the older config retained on the broker."""


class Link(Protocol):
    """What publishing needs of the broker link (fleet_server.link.ServerLink)."""

    def publish(self, node: str, channel: Channel, message: Any, *, retain: bool = False) -> Any: ...

    @property
    def connected(self) -> Any: ...  # a threading.Event


@dataclass
class Change:
    """What a layer change did: the nodes whose desired config changed, and which
    of them were published now (the rest when `republish` runs with a broker)."""

    layer: Layer
    action: str
    changed: list[str] = field(default_factory=list)
    published: list[str] = field(default_factory=list)

    @property
    def unpublished(self) -> list[str]:
        return [node for node in self.changed if node not in self.published]


def set_layer(engine: sa.Engine, scope: str, target: str, body: Any, *, token_name: str,
              link: Link | None, now: datetime | None = None) -> Change:
    """Store ``body`` as the layer at ``scope:target`` (replacing it) if every desired
    config it makes is valid, and publish the changed ones.

    Raises LayerError (malformed place or body) or ConfigInvalid; nothing is stored then.
    """
    check_place(scope, target)
    layer = Layer(scope, target, check_shape(body))
    return _change(engine, layer, "set", token_name=token_name, link=link, now=now)


def delete_layer(engine: sa.Engine, scope: str, target: str, *, token_name: str,
                 link: Link | None, now: datetime | None = None) -> Change | None:
    """Remove the layer at ``scope:target``; None if there is none. Raises ConfigInvalid
    if a node's config without it would be invalid (nothing is removed then)."""
    check_place(scope, target)
    layer = Layer(scope, target, {})
    return _change(engine, layer, "delete", token_name=token_name, link=link, now=now)


def _change(engine: sa.Engine, layer: Layer, action: str, *, token_name: str,
            link: Link | None, now: datetime | None) -> Change | None:
    with _changing:
        return _change_serially(engine, layer, action, token_name=token_name, link=link, now=now)


def _change_serially(engine: sa.Engine, layer: Layer, action: str, *, token_name: str,
                     link: Link | None, now: datetime | None) -> Change | None:
    at = now or utc_now()
    change = Change(layer, action)
    with engine.begin() as conn:
        _one_at_a_time(conn)
        layers = _all_layers(conn)
        if action == "delete" and (layer.scope, layer.target) not in layers:
            return None
        if action == "set":
            layers[(layer.scope, layer.target)] = layer
        else:
            del layers[(layer.scope, layer.target)]
        affected = config_store.nodes_under(conn, layer.scope, layer.target)
        computed = _compute(conn, layers, affected, own=layer if action == "set" else None)
        if action == "set":
            config_store.put_layer(conn, layer, at, token_name)
        else:
            config_store.delete_layer(conn, layer.scope, layer.target)
        change.changed = _store(conn, computed, at)
        config_store.log_change(conn, at=at, token_name=token_name, layer=layer, action=action,
                                changed=change.changed)
    log.info("config layer %s %s by %r: %d node(s) to update", layer.name,
             "set" if action == "set" else "deleted", token_name, len(change.changed))
    change.published = _publish(engine, link, change.changed)
    return change


def reconcile(engine: sa.Engine, link: Link | None, *, republish: bool = False,
              now: datetime | None = None) -> tuple[list[str], list[str]]:
    """Recompute every registered node's desired config from the layers as they are
    (nodes placed or moved since the last change get theirs), store the changed ones,
    and publish them (every node's with ``republish``: after a broker was replaced).

    Returns (nodes changed, nodes published). Raises ConfigInvalid if some node's
    config is invalid (a node moved to a site whose layer does not suit it); nothing
    is stored then.
    """
    with _changing:
        at = now or utc_now()
        with engine.begin() as conn:
            _one_at_a_time(conn)
            layers = _all_layers(conn)
            computed = _compute(conn, layers, config_store.nodes_under(conn, "fleet", FLEET_TARGET))
            changed = _store(conn, computed, at)
            wanted = [s.node for s in config_store.all_states(conn)] if republish else changed
        return changed, _publish(engine, link, wanted)


def _one_at_a_time(conn: sa.Connection) -> None:
    """Serialize config changes across server processes: each computes from the layers
    the previous one left. (SQLite serializes writers itself.)"""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": ADVISORY_LOCK})


def _all_layers(conn: sa.Connection) -> dict[tuple[str, str], Layer]:
    return {(row.scope, row.target): Layer(row.scope, row.target, row.body)
            for row in conn.execute(sa.select(config_layers))}


def _chain(layers: dict[tuple[str, str], Layer], node: str | None, region: str | None,
           site: str | None) -> list[Layer]:
    wanted = [("fleet", FLEET_TARGET), ("region", region), ("site", site), ("node", node)]
    return ordered([layers[key] for key in wanted if key[1] is not None and key in layers])


def _compute(conn: sa.Connection, layers: dict[tuple[str, str], Layer],
             affected: list[tuple[str, str | None, str | None]], own: Layer | None = None,
             ) -> dict[str, tuple[dict[str, Any], str]]:
    """Node -> (desired config, version); ConfigInvalid naming every problem found."""
    problems: list[Problem] = []
    if own is not None:  # the layer's own chain, even where no node is placed yet
        region = site = node = None
        if own.scope == "region":
            region = own.target
        elif own.scope == "site":
            site = own.target
            region = conn.execute(sa.select(sites.c.region_id).where(sites.c.id == site)).scalar()
        elif own.scope == "node":
            node = own.target
            region, site = config_store.placement(conn, node)
        try:
            desired(_chain(layers, node, region, site), node)
        except ConfigInvalid as exc:
            problems.extend(exc.problems)
    computed: dict[str, tuple[dict[str, Any], str]] = {}
    seen: dict[tuple[str, ...], tuple[dict[str, Any], str] | ConfigInvalid] = {}
    for node, region, site in affected:
        chain = _chain(layers, node, region, site)
        key = tuple(layer.name for layer in chain)
        if key not in seen:  # nodes of one site without their own layer share one result
            try:
                seen[key] = desired(chain)
            except ConfigInvalid as exc:
                seen[key] = exc
        outcome = seen[key]
        if isinstance(outcome, ConfigInvalid):
            problems.extend(Problem(p.path, p.why, p.layer, node) for p in outcome.problems
                            if p not in problems)
        else:
            computed[node] = outcome
    if problems:
        unique = list(dict.fromkeys(problems))
        shown = unique[:MAX_PROBLEMS]
        if len(unique) > MAX_PROBLEMS:
            shown.append(Problem("…", f"{len(unique) - MAX_PROBLEMS} more problem(s)", None))
        raise ConfigInvalid(shown)
    return computed


def _store(conn: sa.Connection, computed: dict[str, tuple[dict[str, Any], str]],
           at: datetime) -> list[str]:
    current = dict(conn.execute(sa.select(node_configs.c.node_id, node_configs.c.version)).all())
    changed = []
    for node, (config, version) in sorted(computed.items()):
        if node not in current and not config:
            continue  # no layer reaches it and none ever did: nothing to manage
        if current.get(node) != version and config_store.save_desired(conn, node, config, version, at):
            changed.append(node)
    return changed


def _publish(engine: sa.Engine, link: Link | None, wanted: list[str]) -> list[str]:
    """Publish the stored desired config of each node in ``wanted``, retained; the nodes sent."""
    if not wanted or link is None or not link.connected.is_set():
        if wanted:
            log.warning("not connected to the broker: %d desired config(s) not published yet "
                        "(`rpfleet server config publish` sends them)", len(wanted))
        return []
    with engine.connect() as conn:
        states = {s.node: s for s in config_store.all_states(conn)}
    sent = []
    for node in wanted:
        state = states.get(node)
        if state is not None:
            link.publish(node, Channel.CONFIG_DESIRED, state.message(), retain=True)
            sent.append(node)
    return sent

