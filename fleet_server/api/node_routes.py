"""A node's recent events, and revoking a node (locking it out of the broker).

Operator tokens only. A revocation keeps the token's name as who asked
(fleet_server.revocation); it needs the server's PKI directory
(``enrollment.pki_dir``), and is refused with 409 without one.
"""

from __future__ import annotations

import sqlalchemy as sa
from fastapi import APIRouter, Body, Depends, HTTPException, Query, Request

from fleet_server import revocation
from fleet_server.api import models, queries, tokens
from fleet_server.api.access import connection, require_operator
from fleet_server.schema import node_certificates, nodes

NO_NODE = {404: {"model": models.Problem, "description": "No such node."}}


def _no_node(node_id: str) -> HTTPException:
    return HTTPException(404, detail=f"no node {node_id!r}: it is not registered and has "
                                     "never reported")


def node_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["fleet"], dependencies=[Depends(require_operator)])

    @api.get("/nodes/{node_id}/events", response_model=models.NodeEventPage, responses=NO_NODE)
    def node_events(
        node_id: str,
        conn: sa.Connection = Depends(connection),
        kind: str | None = Query(None, description="Only events of this kind, e.g. rating-tap."),
        limit: int = Query(models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE,
                           description="The most items to return."),
        offset: int = Query(0, ge=0, description="How many matching items to skip."),
    ) -> models.NodeEventPage:
        """The events stored from one node, newest first (by the node's clock, then its
        sequence number), each with its detail as the node sent it."""
        found = queries.node_events(conn, node_id, kind=kind, limit=limit, offset=offset)
        if found is None:
            raise _no_node(node_id)
        return found

    @api.post(
        "/nodes/{node_id}/revoke", response_model=models.Revocation,
        responses={**NO_NODE, 409: {"model": models.Problem, "description":
                                    "The server has no PKI, or the node no live certificate."}},
    )
    def revoke_node(
        node_id: str,
        request: Request,
        asked: models.RevokeRequest | None = Body(None),
        token: tokens.TokenInfo = Depends(require_operator),
        conn: sa.Connection = Depends(connection),
    ) -> models.Revocation:
        """Lock a node out: revoke every certificate it holds and rewrite the CRL.

        The broker refuses the node's next connection once it reloads the CRL; a
        connection open now stays open until the broker restarts (docs/provisioning.md).
        The node is not retired. The token's name is kept with each certificate."""
        state = conn.execute(sa.select(nodes.c.state).where(nodes.c.id == node_id)).scalar()
        enrolled = conn.execute(sa.select(node_certificates.c.serial)
                                .where(node_certificates.c.node_id == node_id).limit(1)).first()
        if state is None and enrolled is None:
            raise _no_node(node_id)
        reason = (asked or models.RevokeRequest()).reason
        try:
            fleet = revocation.fleet_dir(getattr(request.app.state, "pki_dir", None))
            done = revocation.revoke_node(request.app.state.engine, fleet, node_id,
                                          by=token.name, reason=reason)
        except revocation.RevokeError as exc:
            raise HTTPException(exc.status, detail=str(exc)) from None
        return models.Revocation(
            node_id=node_id, revoked=done.serials, revoked_at=done.at, by=token.name,
            reason=done.reason, state=state or "unknown", broker=revocation.BROKER_NOTE,
        )

    return api
