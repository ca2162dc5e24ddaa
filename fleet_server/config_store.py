"""Config layers, each node's desired and reported config, and the change log, in the store.

Pure merging and checking is `fleet_server.config_layers`; making a change
(check, store, publish) is `fleet_server.desired_config`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server.config_layers import FLEET_TARGET, SCOPES, Layer, ordered
from fleet_server.presence import RETIRED
from fleet_server.schema import config_changes, config_layers, node_configs, nodes, sites
from fleet_server.store import as_utc
from rpfleet.protocol.messages import ConfigDesired, ConfigReported


@dataclass(frozen=True)
class StoredLayer:
    layer: Layer
    updated_at: datetime
    updated_by: str


@dataclass(frozen=True)
class NodeConfigState:
    """A node's desired config (as last computed and sent) and what it last reported."""

    node: str
    desired: dict[str, Any]
    version: str
    issued_at: datetime
    reported_version: str | None
    reported_state: str | None
    reported_reason: str | None
    reported_at: datetime | None

    @property
    def in_sync(self) -> bool:
        return self.reported_version == self.version and self.reported_state == "applied"

    def message(self) -> ConfigDesired:
        return ConfigDesired(version=self.version, config=self.desired, issued_at=self.issued_at)


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """An INSERT that can say ON CONFLICT on either backend."""
    return {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name].insert(table)


def _layer(row: Any) -> StoredLayer:
    return StoredLayer(Layer(row.scope, row.target, row.body), as_utc(row.updated_at), row.updated_by)


def list_layers(conn: sa.Connection) -> list[StoredLayer]:
    """Every layer, fleet first, then by scope and target."""
    found = [_layer(row) for row in conn.execute(sa.select(config_layers))]
    return sorted(found, key=lambda s: (SCOPES.index(s.layer.scope), s.layer.target))


def get_layer(conn: sa.Connection, scope: str, target: str) -> StoredLayer | None:
    row = conn.execute(
        sa.select(config_layers).where(config_layers.c.scope == scope, config_layers.c.target == target)
    ).first()
    return None if row is None else _layer(row)


def put_layer(conn: sa.Connection, layer: Layer, at: datetime, by: str) -> None:
    stmt = _insert(conn, config_layers).values(
        scope=layer.scope, target=layer.target, body=layer.body, updated_at=at, updated_by=by
    )
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["scope", "target"], set_={"body": layer.body, "updated_at": at, "updated_by": by}
    ))


def delete_layer(conn: sa.Connection, scope: str, target: str) -> bool:
    """Remove a layer; False if there was none."""
    done = conn.execute(config_layers.delete().where(
        config_layers.c.scope == scope, config_layers.c.target == target
    ))
    return done.rowcount > 0


def log_change(conn: sa.Connection, *, at: datetime, token_name: str, layer: Layer, action: str,
               changed: list[str]) -> None:
    """The audit trail: who set or deleted which layer, and whose desired config it changed."""
    conn.execute(config_changes.insert().values(
        at=at, token_name=token_name, scope=layer.scope, target=layer.target, action=action,
        body=layer.body if action == "set" else None, nodes=changed,
    ))


def placement(conn: sa.Connection, node: str) -> tuple[str | None, str | None]:
    """The node's (region, site), either None when unknown."""
    row = conn.execute(
        sa.select(nodes.c.site_id, sites.c.region_id)
        .select_from(nodes.outerjoin(sites, sites.c.id == nodes.c.site_id))
        .where(nodes.c.id == node)
    ).first()
    return (None, None) if row is None else (row.region_id, row.site_id)


def layers_of_node(conn: sa.Connection, node: str, *, region: str | None = None,
                   site: str | None = None, known: bool = False) -> list[Layer]:
    """The layers that apply to ``node``, fleet first (placement looked up unless ``known``)."""
    if not known:
        region, site = placement(conn, node)
    wanted = [("fleet", FLEET_TARGET), ("node", node)]
    if region:
        wanted.append(("region", region))
    if site:
        wanted.append(("site", site))
    rows = conn.execute(sa.select(config_layers).where(
        sa.tuple_(config_layers.c.scope, config_layers.c.target).in_(wanted)
    )).all()
    return ordered([Layer(row.scope, row.target, row.body) for row in rows])


def nodes_under(conn: sa.Connection, scope: str, target: str) -> list[tuple[str, str | None, str | None]]:
    """Registered nodes (not retired) a layer at ``scope:target`` applies to, with their
    (node, region, site), ordered by id."""
    query = (
        sa.select(nodes.c.id, sites.c.region_id, nodes.c.site_id)
        .select_from(nodes.outerjoin(sites, sites.c.id == nodes.c.site_id))
        .where(nodes.c.state != RETIRED)
        .order_by(nodes.c.id)
    )
    if scope == "region":
        query = query.where(sites.c.region_id == target)
    elif scope == "site":
        query = query.where(nodes.c.site_id == target)
    elif scope == "node":
        query = query.where(nodes.c.id == target)
    return [(row.id, row.region_id, row.site_id) for row in conn.execute(query)]


def _state(row: Any) -> NodeConfigState:
    return NodeConfigState(
        node=row.node_id, desired=row.desired, version=row.version, issued_at=as_utc(row.issued_at),
        reported_version=row.reported_version, reported_state=row.reported_state,
        reported_reason=row.reported_reason, reported_at=as_utc(row.reported_at),
    )


def node_state(conn: sa.Connection, node: str) -> NodeConfigState | None:
    row = conn.execute(sa.select(node_configs).where(node_configs.c.node_id == node)).first()
    return None if row is None else _state(row)


def all_states(conn: sa.Connection) -> list[NodeConfigState]:
    return [_state(row) for row in conn.execute(sa.select(node_configs).order_by(node_configs.c.node_id))]


def save_desired(conn: sa.Connection, node: str, config: dict[str, Any], version: str,
                 issued_at: datetime) -> bool:
    """Store ``config`` as the node's desired config unless it already is; True if it changed.
    The reported state is kept: drift compares it with the new version."""
    current = conn.execute(
        sa.select(node_configs.c.version).where(node_configs.c.node_id == node)
    ).scalar_one_or_none()
    if current == version:
        return False
    stmt = _insert(conn, node_configs).values(node_id=node, desired=config, version=version,
                                              issued_at=issued_at)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["node_id"], set_={"desired": config, "version": version, "issued_at": issued_at}
    ))
    return True


def record_reports(conn: sa.Connection, reports: Iterable[tuple[ConfigReported, datetime]]) -> None:
    """Keep each node's latest ``up/config`` report; a node without a desired config has
    nothing to report against, and its report is left out."""
    for report, received_at in reports:
        conn.execute(node_configs.update().where(node_configs.c.node_id == report.node).values(
            reported_version=report.version, reported_state=report.state,
            reported_reason=report.reason, reported_at=received_at,
        ))


def _drifting() -> Any:
    return sa.or_(
        node_configs.c.reported_version.is_(None),
        node_configs.c.reported_version != node_configs.c.version,
        node_configs.c.reported_state != "applied",
    )


def drift(conn: sa.Connection, *, limit: int, offset: int) -> tuple[int, list[NodeConfigState]]:
    """Nodes not (yet) on their latest desired config, by node id: (how many, this page)."""
    total = conn.execute(sa.select(sa.func.count()).select_from(node_configs).where(_drifting())).scalar_one()
    rows = conn.execute(
        sa.select(node_configs).where(_drifting()).order_by(node_configs.c.node_id)
        .limit(limit).offset(offset)
    ).all()
    return total, [_state(row) for row in rows]
