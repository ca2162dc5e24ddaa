"""The HTTP API: `create_app` builds the FastAPI application over a store.

Access: every route needs an API token (``Authorization: Bearer <token>``,
tokens from ``rpfleet server token create``), ``/healthz`` and ``/metrics``
included, and a missing, unknown or revoked token gets 401. Operator tokens
read everything; integration tokens (queue system, payment gateway) may only
announce at their sites, and operator tokens cannot announce
(fleet_server.api.access says why). No route is open:

- ``/healthz`` would be the usual exception, but nothing here needs it open.
  The process's own liveness is supervised by systemd; a prober without a
  token still learns that the server answers (it gets a 401, not a refused
  connection), and one with a token learns that the store answers too.
- ``/metrics`` takes the same token: Prometheus sends it with
  ``authorization: {credentials_file: ...}`` in its scrape config. A second
  listen address for metrics would be one more port to secure and document
  for no gain, as both would stay on loopback or behind the same proxy.
- FastAPI's interactive docs and its ``/openapi.json`` are switched off; the
  document is committed as docs/openapi.json (see `fleet_server.api.openapi`).
- The site dashboard page (``/sites/{site}/dashboard``) is the one page served
  without a token: it holds no data; its event stream takes a token
  (fleet_server.dashboard.routes).

A refused request body gets 422 naming each field at fault, without echoing
the value sent: a refused field may be a citizen's name.

Routes are plain ``def`` functions: FastAPI runs them in its thread pool,
where blocking SQLAlchemy calls belong.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Callable

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from fleet_server import dashboard, reports
from fleet_server.announcements import Link
from fleet_server.api import metrics, models, queries
from fleet_server.api.access import connection, require_operator, require_token
from fleet_server.api.announce import announcement_routes
from fleet_server.api.job_routes import job_routes
from fleet_server.api.node_routes import node_routes
from fleet_server.api.config_routes import config_routes
from fleet_server.api.rollout_routes import rollout_routes
from fleet_server.ingest import Stats
from rpfleet import __version__

API_PREFIX = "/api/v1"

DESCRIPTION = """\
Every route, `/healthz` and `/metrics` included, needs an API token:
`Authorization: Bearer <token>`, with a token made by
`rpfleet server token create --name NAME`. A missing, unknown or revoked
token gets 401. Operator tokens read every route but the announcement routes;
integration tokens (`--role queue|payment --site SITE`) may call only their
announcement route, at their sites; anything else is a 403. Lists are paged
with `limit` (at most 1000) and `offset`; `total` says how many items match.
See docs/http-api.md."""

REPORT_DAYS = 30
"""The days a report covers when ``from`` is not given (as `rpfleet server report`)."""

Limit = Query(
    models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE, description="The most items to return."
)
Offset = Query(0, ge=0, description="How many matching items to skip (for the next page).")


def _not_found(what: str) -> HTTPException:
    return HTTPException(404, detail=what)


def _api_routes() -> APIRouter:
    api = APIRouter(prefix=API_PREFIX, dependencies=[Depends(require_operator)])

    @api.get("/nodes", response_model=models.NodePage, tags=["fleet"])
    def list_nodes(
        conn: sa.Connection = Depends(connection),
        site: str | None = Query(None, description="Only nodes assigned to this site id."),
        state: str | None = Query(
            None, description="Only nodes in this state: online, offline, unknown or retired."
        ),
        limit: int = Limit,
        offset: int = Offset,
    ) -> models.NodePage:
        """Nodes ordered by id."""
        return queries.node_page(conn, site=site, state=state, limit=limit, offset=offset)

    @api.get(
        "/nodes/{node_id}", response_model=models.NodeDetail, tags=["fleet"],
        responses={404: {"model": models.Problem, "description": "No such node."}},
    )
    def get_node(node_id: str, conn: sa.Connection = Depends(connection)) -> models.NodeDetail:
        """One node with its peripherals, its last health report and its open alerts."""
        found = queries.node_detail(conn, node_id)
        if found is None:
            raise _not_found(f"no node {node_id!r}: it is not registered and has never reported")
        return found

    @api.get("/sites", response_model=models.SitePage, tags=["fleet"])
    def list_sites(
        conn: sa.Connection = Depends(connection),
        region: str | None = Query(None, description="Only sites in this region id."),
        kind: str | None = Query(
            None, description="Only sites of this kind: reception, commune or agency."
        ),
        limit: int = Limit,
        offset: int = Offset,
    ) -> models.SitePage:
        """Registered sites ordered by id, with how many of their nodes are online."""
        return queries.site_page(conn, region=region, kind=kind, limit=limit, offset=offset)

    @api.get(
        "/sites/{site_id}", response_model=models.SiteDetail, tags=["fleet"],
        responses={404: {"model": models.Problem, "description": "No such site."}},
    )
    def get_site(site_id: str, conn: sa.Connection = Depends(connection)) -> models.SiteDetail:
        """One site with its region, counters and nodes."""
        found = queries.site_detail(conn, site_id)
        if found is None:
            raise _not_found(f"no site {site_id!r} is registered")
        return found

    @api.get("/alerts", response_model=models.AlertPage, tags=["alerts"])
    def list_alerts(
        conn: sa.Connection = Depends(connection),
        include_closed: bool = Query(
            False, alias="all", description="Closed alerts too (the history), not only open ones."
        ),
        kind: str | None = Query(None, description="Only alerts of this kind."),
        site: str | None = Query(None, description="Only alerts about this site id."),
        node: str | None = Query(None, description="Only alerts about this node id."),
        limit: int = Limit,
        offset: int = Offset,
    ) -> models.AlertPage:
        """Alerts, newest first; open ones only unless ``all=true``."""
        return queries.alert_page(
            conn, include_closed=include_closed, kind=kind, site=site, node=node,
            limit=limit, offset=offset,
        )

    @api.get("/events/summary", response_model=models.EventsSummary, tags=["satisfaction"])
    def events_summary(
        conn: sa.Connection = Depends(connection), limit: int = Limit, offset: int = Offset
    ) -> models.EventsSummary:
        """Rating taps stored and the share satisfied, per site, with totals over all sites."""
        return queries.events_summary(conn, limit=limit, offset=offset)

    @api.get(
        "/reports", response_model=models.SatisfactionReport, tags=["satisfaction"],
        responses={
            400: {"model": models.Problem, "description": "The range cannot be reported on."},
            404: {"model": models.Problem, "description": "No such region, site or node."},
        },
    )
    def satisfaction_report(
        conn: sa.Connection = Depends(connection),
        first_day: date | None = Query(
            None, alias="from",
            description=f"First local (Hanoi) day; default {REPORT_DAYS} days up to `to`.",
        ),
        last_day: date | None = Query(
            None, alias="to", description="Last local day, included; default today in Hanoi."
        ),
        by: reports.Period = Query(reports.Period.DAY, description="One trend point per period."),
        group: reports.Grouping | None = Query(
            None, description="Split by region, site, counter or node."
        ),
        region: str | None = Query(None, description="Only this region id."),
        site: str | None = Query(None, description="Only this site id."),
        counter: str | None = Query(
            None, description="Only this counter id (within the sites chosen)."
        ),
        node: str | None = Query(None, description="Only this node id."),
        limit: int = Limit,
        offset: int = Offset,
    ) -> models.SatisfactionReport:
        """The share of satisfied ratings per period (and group), with 95 % Wilson intervals;
        misuse-flagged taps are counted apart (fleet_server.reports)."""
        last = last_day or datetime.now(reports.LOCAL_ZONE).date()
        first = first_day or last - timedelta(days=REPORT_DAYS - 1)
        try:
            query = reports.ReportQuery(
                first, last, by=by, group=group, region=region, site=site, counter=counter,
                node=node,
            )
            if len(reports.periods(query)) > models.MAX_PAGE:
                raise HTTPException(
                    400, detail=f"the range holds more than {models.MAX_PAGE} {by.value}s: "
                                "ask for a shorter range or longer periods",
                )
            return queries.satisfaction_report(conn, query, limit=limit, offset=offset)
        except reports.ReportError as exc:
            status = 404 if exc.field in ("region", "site", "node") else 400
            raise HTTPException(status, detail=str(exc)) from None

    @api.get(
        "/sites/{site_id}/services", response_model=models.ServicePage, tags=["satisfaction"],
        responses={
            400: {"model": models.Problem, "description": "The range cannot be listed."},
            404: {"model": models.Problem, "description": "No such site."},
        },
    )
    def list_services(
        site_id: str,
        conn: sa.Connection = Depends(connection),
        first_day: date | None = Query(
            None, alias="from", description="First local (Hanoi) day of the calls; default `to`."
        ),
        last_day: date | None = Query(
            None, alias="to", description="Last local day, included; default today in Hanoi."
        ),
        counter: str | None = Query(None, description="Only this counter id."),
        limit: int = Limit,
        offset: int = Offset,
    ) -> models.ServicePage:
        """Services started by queue calls at the site, newest first, each with its ticket,
        officer and the rating taps pressed at its counter between its call and the next
        call there (or the timeout), by the time they were pressed, however late they arrived."""
        last = last_day or datetime.now(reports.LOCAL_ZONE).date()
        first = first_day or last
        try:
            days = reports.ReportQuery(first, last)
        except reports.ReportError as exc:
            raise HTTPException(400, detail=str(exc)) from None
        found = queries.service_page(conn, site_id, days, counter=counter, limit=limit,
                                     offset=offset)
        if found is None:
            raise _not_found(f"no site {site_id!r} is registered")
        return found

    return api


def _invalid_request(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 naming each field at fault (``loc``), without the value sent (``input``)."""
    problems = []
    for error in exc.errors():
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = (f"{error['loc'][-1]!r} is not a field of this request and is not "
                       "accepted: announcements carry no personal data")
        problems.append({"type": error["type"], "loc": list(error["loc"]), "msg": message})
    return JSONResponse({"detail": problems}, status_code=422)


def create_app(
    engine: sa.Engine,
    ingest_stats_provider: Callable[[], Stats] | None = None,
    *,
    link: Link | None = None,
    pki_dir: Path | None = None,
) -> FastAPI:
    """The HTTP API over ``engine`` (a store at the newest schema).

    ``ingest_stats_provider`` returns this process's live ingest counters for
    ``/metrics``; None where the API runs without an ingest. ``link`` is the
    broker link announcements are published on; without one they get 503.
    ``pki_dir`` is the fleet PKI whose CRL a node's revocation rewrites; without
    one, revoking answers 409.
    Building the app touches neither the store nor the network.
    """
    app = FastAPI(
        title="rpfleet fleet server",
        version=__version__,
        summary="Nodes, sites, alerts and citizens' satisfaction of the rpfleet fleet.",
        description=DESCRIPTION,
        dependencies=[Depends(require_token)],
        responses={
            401: {"model": models.Problem, "description": "No valid API token."},
            403: {"model": models.Problem,
                  "description": "The token's role or sites do not allow this route."},
        },
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.engine = engine
    app.state.ingest_stats = ingest_stats_provider
    app.state.link = link
    app.state.pki_dir = pki_dir
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.include_router(_api_routes())
    app.include_router(job_routes(API_PREFIX))  # remote commands: fleet_server.jobs
    app.include_router(node_routes(API_PREFIX))  # a node's events, revoking a node
    app.include_router(config_routes(API_PREFIX))
    app.include_router(rollout_routes(API_PREFIX), dependencies=[Depends(require_operator)])
    app.include_router(announcement_routes(API_PREFIX),
                       dependencies=[Depends(dashboard.poke_after_call)])
    dashboard.mount(app, API_PREFIX)  # the hall TVs' page: docs/dashboard.md

    @app.get("/healthz", response_model=models.Liveness, tags=["operations"],
             dependencies=[Depends(require_operator)])
    def healthz(conn: sa.Connection = Depends(connection)) -> models.Liveness:
        """The server and its store answer."""
        conn.execute(sa.select(1))
        return models.Liveness()

    @app.get(
        "/metrics", tags=["operations"], response_class=Response,
        dependencies=[Depends(require_operator)],
        responses={
            200: {"content": {metrics.CONTENT_TYPE: {}}, "description": "Prometheus text format."}
        },
    )
    def prometheus_metrics(request: Request) -> Response:
        """Ingest counters of this process and fleet-wide gauges (see fleet_server.api.metrics)."""
        body = metrics.scrape(request.app.state.engine, request.app.state.ingest_stats)
        return Response(body, media_type=metrics.CONTENT_TYPE)

    return app
