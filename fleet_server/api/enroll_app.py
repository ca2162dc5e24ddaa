"""The enrollment endpoint: the only route open to nodes without a token.

It is its own application on its own HTTPS listener (the fleet server's
certificate, issued by the fleet CA), so the token-guarded API can stay on
loopback while nodes in the field reach this one. The contract is
`rpfleet.enrollment_api`; the decisions are `fleet_server.enrollment`.
"""

from __future__ import annotations

import base64
import binascii
import logging
from typing import Callable

import sqlalchemy as sa
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from fleet_server import enrollment
from fleet_server.api.rollout_routes import artifact_routes
from fleet_server.node_kinds import load_node_kinds
from fleet_server.settings import EnrollmentSettings
from provisioning.fleet_dir import FleetDir
from rpfleet import enrollment_api as api

log = logging.getLogger(__name__)


def create_enroll_app(
    engine: sa.Engine,
    fleet: FleetDir,
    settings: EnrollmentSettings,
    on_revoked: Callable[[], None],
) -> FastAPI:
    """``on_revoked`` runs after a re-enrollment revoked earlier certificates (rewrite the CRL).

    The nodes' release downloads are served here too (fleet_server.api.rollout_routes says why)."""
    app = FastAPI(
        title="rpfleet enrollment", docs_url=None, redoc_url=None, openapi_url=None
    )
    ca_pem = fleet.ca_cert.read_text(encoding="ascii")
    kinds = load_node_kinds(settings.kinds_file)

    def refuse(source: str, refused: enrollment.Refused) -> JSONResponse:
        if refused.reason == "rate_limited":  # not recorded: a flood must not grow the table
            log.warning("enrollment refused from %s: rate_limited", source)
        else:
            with engine.begin() as conn:
                enrollment.record_failure(conn, source, refused)
        body = api.Refusal(reason=refused.reason, detail=str(refused))
        return JSONResponse(body.model_dump(), status_code=refused.status)

    @app.get(api.CA_PATH)
    def ca() -> Response:
        return Response(ca_pem, media_type="application/x-pem-file")

    @app.post(api.ENROLL_PATH, response_model=api.Enrollment)
    def enroll(body: api.EnrollRequest, request: Request):
        source = request.client.host if request.client else "unknown"
        try:
            with engine.begin() as conn:
                enrollment.check_rate(conn, source, settings)
                done = enrollment.redeem(
                    conn, fleet, code_text=body.code, csr_pem=body.csr, site=body.site, kinds=kinds
                )
        except enrollment.Refused as refused:
            return refuse(source, refused)
        if done.replaced:
            on_revoked()
        return api.Enrollment(
            node_id=done.node_id, site_id=done.site_id, counter=done.counter, kind=done.kind,
            certificate=done.certificate.decode("ascii"), ca=ca_pem,
            broker=api.BrokerAddress(host=settings.node_broker_host, port=settings.node_broker_port),
            peripherals=done.peripherals,
        )

    @app.post(api.RENEW_PATH, response_model=api.Renewal)
    def renew(body: api.RenewRequest, request: Request):
        source = request.client.host if request.client else "unknown"
        try:
            signature = base64.b64decode(body.signature, validate=True)
        except (binascii.Error, ValueError):
            return refuse(source, enrollment.Refused("bad_signature", "the signature is not base64", 400))
        try:
            with engine.begin() as conn:
                enrollment.check_rate(conn, source, settings)
                cert = enrollment.renew(
                    conn, fleet, cert_pem=body.certificate, csr_pem=body.csr, signature=signature
                )
        except enrollment.Refused as refused:
            return refuse(source, refused)
        return api.Renewal(certificate=cert.decode("ascii"))

    app.include_router(artifact_routes(engine))
    return app
