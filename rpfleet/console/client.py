"""The console's only way to the fleet: the fleet server's HTTP API (docs/http-api.md).

`FleetApi` speaks JSON over httpx with an operator token and hands back the
decoded bodies (plain dicts and lists), so the console keeps working when the
server grows a field. It never opens the database. Every failure is one of
three exceptions, so the UI can tell them apart:

- `ServerUnreachable`: no answer at all (refused, timed out, reset): the
  console shows its connection banner and keeps retrying;
- `RouteMissing`: this server does not have the route yet (an older server):
  the screen that needs it says so and the rest works;
- `ApiError`: the server answered with an error (401, 403, 404 for an
  unknown id, 409, 422, 503); its ``detail`` is the server's own words.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx

PREFIX = "/api/v1"
PAGE = 1000
"""The server's largest page; lists are read page by page."""

COMMANDS = (
    "identify", "test-sound", "self-test", "screenshot", "fetch-logs", "restart-agent", "reboot",
)
"""The remote commands a node runs (issue 10), least disruptive first."""
DESTRUCTIVE = frozenset({"reboot", "restart-agent"})
"""Commands that interrupt a node's service: the console asks before sending them."""


class ApiError(Exception):
    """The server answered ``status`` with ``detail`` for ``path``."""

    def __init__(self, path: str, status: int, detail: str) -> None:
        super().__init__(f"{path}: {status} {detail}")
        self.path, self.status, self.detail = path, status, detail


class RouteMissing(ApiError):
    """The server has no such route (a server older than this console)."""


class ServerUnreachable(Exception):
    """No answer from the server at ``server``; ``reason`` says what failed."""

    def __init__(self, server: str, reason: str) -> None:
        super().__init__(f"no answer from {server}: {reason}")
        self.server, self.reason = server, reason


@dataclass(frozen=True)
class JobRequest:
    """One command for a set of nodes: by id, a site, a region or the whole fleet."""

    command: str
    nodes: tuple[str, ...] = ()
    site: str | None = None
    region: str | None = None
    everywhere: bool = False
    args: dict[str, Any] | None = None
    expires_in_s: int = 600

    def __post_init__(self) -> None:
        if self.command not in COMMANDS:
            raise ValueError(f"command: {self.command!r} is not one of {', '.join(COMMANDS)}")
        targets = sum([bool(self.nodes), self.site is not None, self.region is not None,
                       self.everywhere])
        if targets != 1:
            raise ValueError("target: give exactly one of nodes, site, region or everywhere")

    def body(self) -> dict[str, Any]:
        """The JSON of ``POST /api/v1/jobs``."""
        body: dict[str, Any] = {"command": self.command, "args": self.args or {},
                                "expires_in_s": self.expires_in_s}
        if self.nodes:
            body["nodes"] = list(self.nodes)
        elif self.site is not None:
            body["site"] = self.site
        elif self.region is not None:
            body["region"] = self.region
        else:
            body["all"] = True
        return body

    def target(self) -> str:
        """The target in words, for a confirmation question."""
        if self.nodes:
            return self.nodes[0] if len(self.nodes) == 1 else f"{len(self.nodes)} nodes"
        if self.site is not None:
            return f"every node of site {self.site}"
        if self.region is not None:
            return f"every node of region {self.region}"
        return "every node of the fleet"


class FleetApi:
    """An async client of one fleet server (``server`` is its base URL).

    ``transport`` replaces the network (httpx's own transports); ``timeout``
    is per request, in seconds. Use as an async context manager or call
    `aclose`.
    """

    def __init__(self, server: str, token: str, *, timeout: float = 5.0,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.server = server.rstrip("/")
        self._http = httpx.AsyncClient(
            base_url=self.server, timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "User-Agent": "rpfleet-console"},
        )

    async def __aenter__(self) -> "FleetApi":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        try:
            response = await self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ServerUnreachable(self.server, str(exc) or type(exc).__name__) from None
        if response.is_success:
            try:
                return response.json()
            except ValueError:  # e.g. a proxy's HTML page in front of a stopped server
                raise ApiError(path, response.status_code,
                               f"the answer is not JSON ({response.headers.get('content-type')})"
                               ) from None
        detail = _detail(response)
        # FastAPI's own 404 for a path it has no route for says just "Not Found";
        # ours always name the missing thing.
        if response.status_code in (404, 405) and detail in ("Not Found", "Method Not Allowed"):
            raise RouteMissing(path, response.status_code, detail)
        raise ApiError(path, response.status_code, detail)

    async def get(self, path: str, **params: Any) -> Any:
        """GET ``/api/v1{path}`` with the non-None ``params``; the decoded JSON."""
        query = {k: v for k, v in params.items() if v is not None}
        return await self._request("GET", PREFIX + path, params=query)

    async def _all(self, path: str, **params: Any) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        while True:
            page = await self.get(path, limit=PAGE, offset=len(items), **params)
            items.extend(page["items"])
            if not page["items"] or len(items) >= page["total"]:
                return items

    # ---- fleet -------------------------------------------------------------

    async def nodes(self) -> list[dict[str, Any]]:
        """Every node, by id."""
        return await self._all("/nodes")

    async def node(self, node_id: str) -> dict[str, Any]:
        """One node with peripherals, last health and open alerts (ApiError 404 if unknown)."""
        return await self.get(f"/nodes/{node_id}")

    async def sites(self) -> list[dict[str, Any]]:
        """Every registered site with its nodes online / total."""
        return await self._all("/sites")

    async def site(self, site_id: str) -> dict[str, Any]:
        return await self.get(f"/sites/{site_id}")

    async def alerts(self, *, node: str | None = None) -> list[dict[str, Any]]:
        """Open alerts, newest first (only ``node``'s if given)."""
        return await self._all("/alerts", node=node)

    async def satisfaction(self, day: date) -> dict[str, Any]:
        """The satisfaction report of one local day, split by site."""
        return await self.get("/reports", **{"from": day.isoformat(), "to": day.isoformat()},
                              group="site", limit=PAGE)

    # ---- config (404 from a server without them: RouteMissing) ---------------

    async def node_config(self, node_id: str) -> dict[str, Any]:
        """Desired merged config and version, and what the node reported."""
        return await self.get(f"/nodes/{node_id}/config")

    async def drift(self) -> list[dict[str, Any]]:
        """Nodes not on their latest desired config (not reported yet, older, or rejected)."""
        return await self._all("/config/drift")

    # ---- commands and jobs ----------------------------------------------------

    async def jobs(self, limit: int = 100) -> list[dict[str, Any]]:
        """The newest jobs, newest first, each with its progress."""
        return _items(await self.get("/jobs", limit=limit))

    async def job(self, job_id: str) -> dict[str, Any]:
        """One job with its progress and each node's outcome (the first 1000, by node id)."""
        return await self.get(f"/jobs/{job_id}")

    async def node_commands(self, node_id: str, *, limit: int = 20, offset: int = 0,
                            output: bool = False) -> list[dict[str, Any]]:
        """The commands sent to one node, newest first, and what came back (with what
        the node sent, logs included, when ``output``: ask for one at a time)."""
        return _items(await self.get(f"/nodes/{node_id}/commands", limit=limit, offset=offset,
                                     output="true" if output else None))

    async def send(self, request: JobRequest) -> dict[str, Any]:
        """Create a job; the job as the server made it."""
        return await self._request("POST", PREFIX + "/jobs", json=request.body())

    # ---- events and revocation (RouteMissing from an older server) --------------

    async def node_events(self, node_id: str, *, limit: int = 10) -> list[dict[str, Any]]:
        """The node's newest stored events, newest first."""
        return _items(await self.get(f"/nodes/{node_id}/events", limit=limit))

    async def revoke(self, node_id: str, reason: str | None = None) -> dict[str, Any]:
        """Revoke the node's certificates (the server rewrites its CRL); what was revoked.
        ApiError 409 when the server has no PKI or the node no live certificate."""
        body = {"reason": reason} if reason else {}
        return await self._request("POST", f"{PREFIX}/nodes/{node_id}/revoke", json=body)


    # ---- releases and rollouts (read-only; RouteMissing from an older server) -------

    async def releases(self) -> list[dict[str, Any]]:
        """Every release the server holds, oldest first."""
        return _items(await self.get("/releases"))

    async def rollouts(self, limit: int = 50) -> list[dict[str, Any]]:
        """The newest rollouts, newest first, each with its waves and last gate result."""
        return _items(await self.get("/rollouts", limit=limit))

    async def rollout(self, rollout_id: int) -> dict[str, Any]:
        """One rollout: state, waves with their counts, gates, reason (ApiError 404 if
        unknown). Steering it (pause, resume, abort) is the server's command line."""
        return await self.get(f"/rollouts/{rollout_id}")


def _items(body: Any) -> list[dict[str, Any]]:
    """A list body, or the ``items`` of a page."""
    return body["items"] if isinstance(body, dict) and "items" in body else list(body)


def _detail(response: httpx.Response) -> str:
    try:
        detail = response.json().get("detail")
    except (ValueError, AttributeError):
        return response.text[:200] or response.reason_phrase
    if isinstance(detail, list):  # 422: one problem per field
        return "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []))}: {item.get('msg')}" for item in detail
        )
    return str(detail)
