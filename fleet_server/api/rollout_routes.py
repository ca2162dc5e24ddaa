"""Releases and rollouts over HTTP: operator tokens read them (``/api/v1/releases``,
``/api/v1/rollouts``, ``/api/v1/rollouts/{id}``); making and steering them stays
with the command line for now (``rpfleet server release|rollout``), where the
operator holds the release keys' public halves and sees the plan.

Artifacts are downloaded by nodes from ``/releases/{version}/{key}/artifact``,
served by the **enrollment listener** (`artifact_routes`), decided so:

- nodes reach that listener in the field (the token API stays on loopback) and
  already trust its certificate (the fleet CA's), while they hold no API token;
- the listener does not check client certificates, so the route is a
  capability URL: ``key`` is 128 random bits per release, and only a node's
  own retained ``down/update`` (its ACL lets no one else read it) names it;
- what a leaked URL gives is the artifact, which holds no secret (the agent's
  code and wheels; a test keeps private keys out of the tree) and which a node
  installs only after checking size, sha256 and the Ed25519 signature against
  the keys it holds: integrity never rests on the URL or the transport;
- byte ranges are served (Starlette's FileResponse), so a node resumes a
  download cut in the middle.

Answers are 404 alike for an unknown version and a wrong key.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import FileResponse
from pydantic import Field

from fleet_server.api import models
from fleet_server.api.access import connection
from fleet_server.api.models import Model, Page, Utc
from fleet_server.rollouts import progress, store


class Release(Model):
    version: str
    architecture: str = Field(description="What the artifact is built for, or `any`.")
    size: int = Field(description="The artifact's size in bytes.")
    sha256: str
    added_at: Utc
    added_by: str
    manifest: dict[str, Any] = Field(description="The signed manifest, as in the artifact.")


class ReleaseList(Model):
    items: list[Release]


class Wave(Model):
    wave: int = Field(description="1 for the first wave.")
    share: float = Field(description="The share of the rollout's nodes reached by the end of it.")
    nodes: int = Field(description="Nodes in this wave (those that joined later included).")
    state: str = Field(description="done, open or waiting.")
    counts: dict[str, int] = Field(
        description="Nodes sent the version, by where they stand: proven, soaking, updating, "
                    "waiting, absent, failed, stuck, regressed.")


class Rollout(Model):
    id: int
    version: str
    state: str = Field(description="running, paused, halted, aborted or completed.")
    wave: int = Field(description="The wave open now (1 for the first).")
    waves: list[Wave]
    sites: list[str] | None = Field(description="The sites it covers; null: every site.")
    policy: dict[str, Any] = Field(description="Soak, failure limit and gate tolerances.")
    created_at: Utc
    created_by: str
    wave_opened_at: Utc
    updated_at: Utc
    finished_at: Utc | None
    reason: str | None = Field(description="Why it halted, or who paused or aborted it.")
    gates: dict[str, Any] | None = Field(
        description="The last evaluation of the open wave: action, reason, counts, the tap gate, "
                    "failed nodes (docs/http-api.md).")


class RolloutPage(Page):
    items: list[Rollout]


def rollout_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["releases"])

    @api.get("/releases", response_model=ReleaseList)
    def list_releases(conn: sa.Connection = Depends(connection)) -> ReleaseList:
        """Every release the server holds, oldest first."""
        return ReleaseList(items=[
            Release(version=r.version, architecture=r.architecture, size=r.size, sha256=r.sha256,
                    added_at=r.added_at, added_by=r.added_by, manifest=r.manifest)
            for r in store.list_releases(conn)])

    @api.get("/rollouts", response_model=RolloutPage)
    def list_rollouts(conn: sa.Connection = Depends(connection),
                      limit: int = Query(models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE),
                      offset: int = Query(0, ge=0)) -> RolloutPage:
        """Rollouts, newest first."""
        total, rows = store.list_rollouts(conn, limit=limit, offset=offset)
        return RolloutPage(total=total, limit=limit, offset=offset,
                           items=[Rollout(**progress.status(conn, r.id)) for r in rows])

    @api.get("/rollouts/{rollout_id}", response_model=Rollout,
             responses={404: {"model": models.Problem, "description": "No such rollout."}})
    def get_rollout(rollout_id: int, conn: sa.Connection = Depends(connection)) -> Rollout:
        """One rollout: its waves with their counts, the last gate evaluation, why it halted."""
        if store.get_rollout(conn, rollout_id) is None:
            raise HTTPException(404, detail=f"no rollout {rollout_id}")
        return Rollout(**progress.status(conn, rollout_id))

    return api


def artifact_routes(engine: sa.Engine) -> APIRouter:
    """The nodes' download route, for the enrollment listener (see the module's docstring)."""
    router = APIRouter()

    @router.get("/releases/{version}/{key}/artifact", include_in_schema=False)
    def artifact(version: str, key: str, request: Request) -> FileResponse:
        with engine.connect() as conn:
            release = store.get_release(conn, version)
        if release is None or not hmac.compare_digest(release.download_key.encode(), key.encode()):
            raise HTTPException(404, detail="no such artifact")
        return FileResponse(Path(release.path), media_type="application/octet-stream",
                            filename=f"rpfleet-{release.version}.rpa")

    return router
