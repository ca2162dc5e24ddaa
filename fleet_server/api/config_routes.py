"""Configuration as desired state over HTTP (operator tokens; writes logged with the
token's name): the layers, one node's desired and reported config, and the drift
list. Changing a layer is `fleet_server.desired_config`."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import Field

from fleet_server import config_store, desired_config
from fleet_server.api import models, tokens
from fleet_server.api.access import connection, require_operator
from fleet_server.api.models import Model, Page, Utc
from fleet_server.config_layers import ConfigInvalid, LayerError, desired
from fleet_server.schema import nodes

Scope = Literal["fleet", "region", "site", "node"]


class ConfigLayer(Model):
    scope: Scope
    target: str = Field(description="The region, site or node id; '-' for the fleet layer.")
    body: dict[str, Any] = Field(description="The keys this layer sets (see docs/http-api.md).")
    updated_at: Utc
    updated_by: str = Field(description="The name of the API token (or CLI user) that set it.")


class ConfigLayerList(Model):
    items: list[ConfigLayer]


class ConfigChange(Model):
    """What setting or deleting a layer did."""

    scope: Scope
    target: str
    action: Literal["set", "delete"]
    changed: list[str] = Field(description="Nodes whose desired config changed.")
    published: list[str] = Field(description="Of those, the ones sent on down/config now.")
    unpublished: list[str] = Field(
        description="Changed but not sent: the server is not connected to the broker "
                    "(`rpfleet server config publish` sends them)."
    )


class ConfigProblem(Model):
    path: str = Field(description="The field path, peripherals by id: peripherals[pad-1].scale")
    msg: str
    layer: str | None = Field(description="The layer that set the field: fleet, site:bd, ...")
    node: str | None = Field(description="The node whose merged config is at fault.")


class ConfigRefusal(Model):
    """Why a layer change was refused; nothing was stored or sent."""

    detail: str
    problems: list[ConfigProblem]


class NodeConfig(Model):
    node: str
    desired: dict[str, Any] = Field(description="The merged layers, as sent on down/config.")
    version: str = Field(description="sha256 of the desired config's canonical JSON.")
    issued_at: Utc | None = Field(description="When this version was computed and sent; null "
                                              "if it was never sent (computed now).")
    layers: list[str] = Field(description="The layers it is merged from, fleet first.")
    reported_version: str | None
    reported_state: Literal["applied", "rejected"] | None
    reported_reason: str | None
    reported_at: Utc | None
    in_sync: bool = Field(description="The node reported this version applied.")


class DriftItem(Model):
    node: str
    version: str = Field(description="The latest desired version.")
    issued_at: Utc
    reported_version: str | None
    reported_state: Literal["applied", "rejected"] | None
    reported_reason: str | None
    reported_at: Utc | None


class DriftPage(Page):
    items: list[DriftItem]


REFUSED = {
    404: {"model": models.Problem, "description": "No such layer."},
    422: {"model": ConfigRefusal,
          "description": "The layer, or some node's config merged with it, would be invalid."},
}


def _layer(stored: config_store.StoredLayer) -> ConfigLayer:
    layer = stored.layer
    return ConfigLayer(scope=layer.scope, target=layer.target, body=layer.body,
                       updated_at=stored.updated_at, updated_by=stored.updated_by)


def _change(change: desired_config.Change) -> ConfigChange:
    return ConfigChange(scope=change.layer.scope, target=change.layer.target, action=change.action,
                        changed=change.changed, published=change.published,
                        unpublished=change.unpublished)


def _refused(exc: Exception) -> JSONResponse:
    """422 naming each problem: field path, what is wrong, the layer and the node."""
    if isinstance(exc, ConfigInvalid):
        problems = [ConfigProblem(path=p.path, msg=p.why, layer=p.layer, node=p.node)
                    for p in exc.problems]
    else:
        problems = [ConfigProblem(path="(layer)", msg=str(exc), layer=None, node=None)]
    refusal = ConfigRefusal(detail=f"refused, nothing stored or sent: {exc}", problems=problems)
    return JSONResponse(refusal.model_dump(mode="json"), status_code=422)


def config_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["config"], dependencies=[Depends(require_operator)])

    @api.get("/config/layers", response_model=ConfigLayerList)
    def list_layers(conn: sa.Connection = Depends(connection)) -> ConfigLayerList:
        """Every config layer, fleet first, then regions, sites and nodes by id."""
        return ConfigLayerList(items=[_layer(s) for s in config_store.list_layers(conn)])

    @api.get("/config/layers/{scope}/{target}", response_model=ConfigLayer, responses=REFUSED)
    def get_layer(scope: Scope, target: str, conn: sa.Connection = Depends(connection)) -> ConfigLayer:
        """One layer."""
        found = config_store.get_layer(conn, scope, target)
        if found is None:
            raise HTTPException(404, detail=f"no config layer {scope}:{target}")
        return _layer(found)

    @api.put("/config/layers/{scope}/{target}", response_model=ConfigChange, responses=REFUSED)
    def put_layer(
        scope: Scope, target: str, request: Request,
        body: dict[str, Any] = Body(description="The keys this layer sets; replaces the layer."),
        token: tokens.TokenInfo = Depends(require_operator),
    ) -> ConfigChange | JSONResponse:
        """Set a layer (replacing it): checked against every node it applies to, stored,
        and each changed desired config published retained on down/config."""
        try:
            change = desired_config.set_layer(
                request.app.state.engine, scope, target, body, token_name=token.name,
                link=request.app.state.link,
            )
        except (ConfigInvalid, LayerError) as exc:
            return _refused(exc)
        return _change(change)

    @api.delete("/config/layers/{scope}/{target}", response_model=ConfigChange, responses=REFUSED)
    def delete_layer(scope: Scope, target: str, request: Request,
                     token: tokens.TokenInfo = Depends(require_operator)) -> ConfigChange | JSONResponse:
        """Remove a layer; the nodes it applied to get their config without it."""
        try:
            change = desired_config.delete_layer(
                request.app.state.engine, scope, target, token_name=token.name,
                link=request.app.state.link,
            )
        except (ConfigInvalid, LayerError) as exc:
            return _refused(exc)
        if change is None:
            raise HTTPException(404, detail=f"no config layer {scope}:{target}")
        return _change(change)

    @api.get("/nodes/{node_id}/config", response_model=NodeConfig, tags=["fleet"],
             responses={404: {"model": models.Problem, "description": "No such node."},
                        409: {"model": models.Problem,
                              "description": "Its layers do not merge into a valid config."}})
    def node_config(node_id: str, conn: sa.Connection = Depends(connection)) -> NodeConfig:
        """The node's desired config (merged layers) with its version, and the version
        the node last reported applied or rejected (with the reason)."""
        layers = config_store.layers_of_node(conn, node_id)
        state = config_store.node_state(conn, node_id)
        if state is None:
            known = conn.execute(sa.select(nodes.c.id).where(nodes.c.id == node_id)).first()
            if known is None:
                raise HTTPException(404, detail=f"no node {node_id!r}")
            try:
                config, version = desired(layers, node_id)
            except ConfigInvalid as exc:
                raise HTTPException(409, detail=f"its layers do not merge into a valid config: {exc}")
            return NodeConfig(node=node_id, desired=config, version=version, issued_at=None,
                              layers=[layer.name for layer in layers], reported_version=None,
                              reported_state=None, reported_reason=None, reported_at=None,
                              in_sync=False)
        return NodeConfig(
            node=node_id, desired=state.desired, version=state.version, issued_at=state.issued_at,
            layers=[layer.name for layer in layers], reported_version=state.reported_version,
            reported_state=state.reported_state, reported_reason=state.reported_reason,
            reported_at=state.reported_at, in_sync=state.in_sync,
        )

    @api.get("/config/drift", response_model=DriftPage)
    def drift(
        conn: sa.Connection = Depends(connection),
        limit: int = Query(models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> DriftPage:
        """Nodes not on their latest desired config (not reported yet, an older version,
        or rejected), by node id."""
        total, states = config_store.drift(conn, limit=limit, offset=offset)
        return DriftPage(total=total, limit=limit, offset=offset, items=[
            DriftItem(node=s.node, version=s.version, issued_at=s.issued_at,
                      reported_version=s.reported_version, reported_state=s.reported_state,
                      reported_reason=s.reported_reason, reported_at=s.reported_at)
            for s in states
        ])

    return api
