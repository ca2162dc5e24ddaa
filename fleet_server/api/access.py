"""Who may call what: the API token of a request, and what its role allows.

- Every route needs an active token (401 otherwise): `require_token`.
- Operator tokens read the API: every route but the announcement routes
  (`require_operator`; an integration token gets 403 there).
- Integration tokens (``queue``, ``payment``) may only announce, with their
  own role's route and only at the sites they serve (`require_integration`;
  403 naming the site otherwise). Operator tokens cannot announce: they are
  read tokens held by consoles and Prometheus, and one leaked from a scrape
  config should not be able to speak in the halls of every site of the city.
  An integration token confines that power to one vendor's sites.
- Dashboard tokens (``dashboard``, one site) may only read that site's
  dashboard (`require_dashboard_reader`, which operator tokens pass too); every
  other route refuses them like an integration token.

The token is checked against the store on every request, so a revocation
counts from the next request on. Tokens are never logged: a refusal logs the
path and, for a revoked or refused token, the token's name.
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import sqlalchemy as sa
from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from fleet_server.api import tokens

log = logging.getLogger(__name__)

bearer = HTTPBearer(
    auto_error=False,
    scheme_name="ApiToken",
    description="An API token made with `rpfleet server token create --name NAME`.",
)

ROUTE_OF_ROLE = {
    tokens.QUEUE: "POST /api/v1/sites/{site}/calls",
    tokens.PAYMENT: "POST /api/v1/sites/{site}/payments",
    tokens.DASHBOARD: "GET /api/v1/sites/{site}/dashboard (and its stream)",
}


def connection(request: Request) -> Iterator[sa.Connection]:
    """One store connection per request, shared by the token check and the route."""
    with request.app.state.engine.connect() as conn:
        yield conn


def _refuse(detail: str) -> HTTPException:
    return HTTPException(401, detail=detail, headers={"WWW-Authenticate": "Bearer"})


def require_token(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
    conn: sa.Connection = Depends(connection),
) -> tokens.TokenInfo:
    """The request's active API token; raises 401 for anything else."""
    if credentials is None:
        log.info("refused %r: no bearer token", request.url.path)
        raise _refuse("an API token is required: send 'Authorization: Bearer <token>'")
    found = tokens.identify(conn, credentials.credentials)
    if found is None or not found.active:
        why = "unknown token" if found is None else f"revoked token {found.name!r}"
        # %r: the path is the client's (node ids in it), so no forged log lines.
        log.info("refused %r: %s", request.url.path, why)
        raise _refuse("the API token is unknown or revoked")
    return found


def require_operator(
    request: Request, token: tokens.TokenInfo = Depends(require_token)
) -> tokens.TokenInfo:
    """The request's token if it is an operator token; 403 for an integration token."""
    if not token.is_operator:
        log.info("refused %r: %s token %r may only call %s", request.url.path, token.role,
                 token.name, ROUTE_OF_ROLE[token.role])
        raise HTTPException(
            403, detail=f"token {token.name!r} is a {token.role} "
                        f"{'integration ' if token.role in tokens.INTEGRATION_ROLES else ''}"
                        f"token: it may only call {ROUTE_OF_ROLE[token.role]}",
        )
    return token


def require_dashboard_reader(
    site_id: str, request: Request, token: tokens.TokenInfo = Depends(require_token)
) -> tokens.TokenInfo:
    """The request's token if it may read the dashboard of ``site_id`` (an operator
    token, or a dashboard token of that site); 403 saying why otherwise."""
    if token.is_operator or (token.role == tokens.DASHBOARD and site_id in token.sites):
        return token
    if token.role == tokens.DASHBOARD:
        problem = (f"token {token.name!r} shows the dashboard of site {token.sites[0]!r}, "
                   f"not of {site_id!r}")
    else:
        problem = (f"token {token.name!r} is a {token.role} token: it may call "
                   f"{ROUTE_OF_ROLE[token.role]}, not read dashboards")
    log.info("refused %r: %s", request.url.path, problem)
    raise HTTPException(403, detail=problem)


def require_integration(role: str) -> Callable[..., tokens.TokenInfo]:
    """A dependency for a route of ``role`` under ``/sites/{site_id}/``: the request's
    token if it has that role and serves that site; 403 saying why otherwise."""

    def allowed(
        site_id: str, request: Request, token: tokens.TokenInfo = Depends(require_token)
    ) -> tokens.TokenInfo:
        if token.is_operator:
            problem = (f"token {token.name!r} is an operator token, which cannot announce: "
                       f"the {role} integration needs its own token "
                       f"(rpfleet server token create --name NAME --role {role} --site SITE)")
        elif token.role != role:
            problem = (f"token {token.name!r} is a {token.role} token: it may call "
                       f"{ROUTE_OF_ROLE[token.role]}, not this {role} route")
        elif site_id not in token.sites:
            problem = (f"token {token.name!r} does not serve site {site_id!r} "
                       f"(it serves {', '.join(token.sites)})")
        else:
            return token
        log.info("refused %r: %s", request.url.path, problem)
        raise HTTPException(403, detail=problem)

    return allowed
