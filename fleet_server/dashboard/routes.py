"""The dashboard's HTTP routes, mounted on the API by `mount`:

- ``GET /sites/{site}/dashboard``: the page (static HTML, CSS and JS shipped
  in this package; no CDN). It holds no data and needs no token: a TV's
  browser cannot send an Authorization header to load a page.
- ``GET /sites/{site}/dashboard/events``: the live feed as Server-Sent Events
  read with ``fetch`` (which, unlike EventSource, can send the token as
  ``Authorization: Bearer``): ``hello``, then a ``dashboard`` event with the
  snapshot (fleet_server.dashboard.snapshot) whenever it changes, and an
  ``: alive`` comment every ``keepalive_s`` in between, after which the token
  is checked again (a revocation ends the stream).
- ``GET /api/v1/sites/{site}/dashboard``: the snapshot as JSON, in the API.

The page reads its token from the URL's fragment (``#key=rpf_...``), which
browsers never send to a server: it appears in no access log and no proxy's.
Both data routes take an operator token, or a ``dashboard`` token of that site
(fleet_server.api.access.require_dashboard_reader); docs/dashboard.md says why.

The page and its feed live in a sub-application mounted at ``/sites``, outside
the API's app-wide token check: the page because it is public, the feed
because that check holds a store connection for the whole request, which for
a stream is all day. The feed checks the token itself, on a connection it
gives back at once.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from importlib import resources
from typing import AsyncIterator, Iterator

import sqlalchemy as sa
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import StreamingResponse
from fastapi.security import HTTPAuthorizationCredentials

from fleet_server.api import access, tokens
from fleet_server.dashboard.feed import DashboardFeed
from fleet_server.dashboard.snapshot import SiteDashboard
from fleet_server.schema import sites

PAGE_PREFIX = "/sites"
KEEPALIVE_S = 15
"""Between ``: alive`` comments: the page reconnects after three missed ones."""

ASSETS = {
    "dashboard.css": "text/css; charset=utf-8",
    "dashboard.js": "text/javascript; charset=utf-8",
}
"""The page's files besides its HTML (fleet_server/dashboard/static/)."""


def _asset(name: str) -> bytes:
    return resources.files("fleet_server.dashboard").joinpath("static", name).read_bytes()


def mount(app: FastAPI, api_prefix: str, *, poll_s: float | None = None) -> DashboardFeed:
    """Add the dashboard to ``app`` (the API of fleet_server.api.app): the JSON route
    under ``api_prefix``, the page and its feed under ``/sites``; returns the
    process's feed (also ``app.state.dashboards``)."""
    engine: sa.Engine = app.state.engine
    feed = DashboardFeed(engine) if poll_s is None else DashboardFeed(engine, poll_s=poll_s)
    app.state.dashboards = feed
    app.state.before_stop = [*getattr(app.state, "before_stop", ()), feed.close]
    app.include_router(_api_routes(api_prefix))
    app.mount(PAGE_PREFIX, _page_app(engine, feed))
    return feed


def poke_after_call(site_id: str, request: Request) -> Iterator[None]:
    """A dependency for the announcement routes: once a call was made at ``site_id``
    (the route returned; a refusal raises through the ``yield`` and pokes
    nothing), the site's screens in this process re-read it at once."""
    yield
    feed: DashboardFeed | None = getattr(request.app.state, "dashboards", None)
    if feed is not None:
        feed.poke(site_id)


def _api_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["dashboard"])

    @api.get(
        "/sites/{site_id}/dashboard", response_model=SiteDashboard,
        dependencies=[Depends(access.require_dashboard_reader)],
        responses={404: {"description": "No such site."}},
        # Documented in docs/dashboard.md; kept out of docs/openapi.json, which
        # describes the operators' and integrations' API.
        include_in_schema=False,
    )
    def dashboard_snapshot(site_id: str, request: Request) -> SiteDashboard:
        """What the site's dashboard shows now: today's latest queue calls, today's
        ratings and share satisfied, and which counters are open (docs/dashboard.md).
        Operator tokens, or a dashboard token of this site."""
        found = request.app.state.dashboards.read(site_id)
        if found is None:
            raise HTTPException(404, detail=f"no site {site_id!r} is registered")
        return found

    return api


def _page_app(engine: sa.Engine, feed: DashboardFeed) -> FastAPI:
    page = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)

    @page.get("/{site_id}/dashboard")
    def dashboard_page(site_id: str) -> Response:
        # The same page for every site: it finds its site in its own URL and learns
        # the site's name from the feed, so it tells nobody which sites exist.
        return Response(_asset("dashboard.html"), media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-cache"})

    @page.get("/{site_id}/dashboard/static/{name}")
    def dashboard_asset(site_id: str, name: str) -> Response:
        if name not in ASSETS:
            raise HTTPException(404, detail=f"no dashboard file {name!r}")
        return Response(_asset(name), media_type=ASSETS[name],
                        headers={"Cache-Control": "no-cache"})

    @page.get("/{site_id}/dashboard/events")
    async def dashboard_events(
        site_id: str, request: Request,
        keepalive_s: float = Query(KEEPALIVE_S, ge=0.2, le=60,
                                   description="Seconds between ': alive' comments."),
    ) -> StreamingResponse:
        credentials = await access.bearer(request)
        await run_in_threadpool(_authorize, engine, site_id, request, credentials,
                                known_site=True)
        return StreamingResponse(
            _events(engine, feed, site_id, request, credentials, keepalive_s),
            media_type="text/event-stream",
            # no-transform and X-Accel-Buffering: proxies must pass each event on at once.
            headers={"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"},
        )

    return page


def _authorize(engine: sa.Engine, site_id: str, request: Request,
               credentials: HTTPAuthorizationCredentials | None, *,
               known_site: bool = False) -> tokens.TokenInfo:
    """The API's own token checks (401, 403) on a connection given back at once;
    with ``known_site``, 404 for a site that is not registered."""
    with engine.connect() as conn:
        token = access.require_token(request, credentials, conn)
        access.require_dashboard_reader(site_id, request, token)
        if known_site and conn.execute(
                sa.select(sites.c.id).where(sites.c.id == site_id)).first() is None:
            raise HTTPException(404, detail=f"no site {site_id!r} is registered")
    return token


async def _events(engine: sa.Engine, feed: DashboardFeed, site_id: str, request: Request,
                  credentials: HTTPAuthorizationCredentials | None, keepalive_s: float
                  ) -> AsyncIterator[str]:
    yield f"event: hello\ndata: {json.dumps({'keepalive_s': keepalive_s})}\n\n"
    # aclosing: the screen leaves the watch as soon as the stream ends, however it ends.
    async with aclosing(feed.watch(site_id, keepalive_s=keepalive_s)) as changes:
        async for shown in changes:
            if shown is not None:
                yield f"event: dashboard\ndata: {shown.model_dump_json()}\n\n"
                continue
            try:
                await run_in_threadpool(_authorize, engine, site_id, request, credentials)
            except HTTPException:
                return  # revoked meanwhile: the page's next request is refused and says so
            except sa.exc.SQLAlchemyError:
                pass  # the store is away: checked again at the next keepalive
            yield ": alive\n\n"
