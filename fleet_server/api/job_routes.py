"""The remote-command routes: make a job (one command to many nodes), follow it, and read a
node's command history. Operator tokens only; the token's name is the job's issuer,
kept in the audit log (fleet_server.jobs)."""

from __future__ import annotations

from typing import Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import Field

from fleet_server import job_store, jobs
from fleet_server.api import models, tokens
from fleet_server.api.access import connection, require_operator
from fleet_server.api.models import Model, Page, Utc
from fleet_server.schema import nodes
from fleet_server.store import utc_now

CommandName = Literal["restart-agent", "reboot", "identify", "test-sound", "self-test",
                      "screenshot", "fetch-logs", "update-reset"]
NodeId = str


class JobCreate(Model):
    """A command for the nodes chosen by exactly one of `nodes`, `site`, `region` or `all`."""

    command: CommandName
    args: dict[str, Any] = Field(
        default={}, description="The command's arguments (docs/http-api.md)."
    )
    nodes: list[NodeId] | None = Field(default=None, min_length=1, max_length=50_000)
    site: str | None = None
    region: str | None = None
    all: bool = Field(default=False, description="Every node that is not retired.")
    expires_in_s: int = Field(
        default=jobs.DEFAULT_EXPIRY_S, ge=jobs.MIN_EXPIRY_S, le=jobs.MAX_EXPIRY_S,
        description="A node that gets the command later than this does not run it (expired).",
    )


class Progress(Model):
    total: int
    done: int = Field(description="Nodes that answered ok.")
    failed: int = Field(description="Nodes that answered failed or refused.")
    expired: int = Field(
        description="Nodes that answered expired, or did not answer before the expiry."
    )
    pending: int = Field(description="Nodes that have not answered yet, before the expiry.")


class Job(Model):
    id: str = Field(description="The job's id, also the command id each node gets (32 hex).")
    command: str
    args: dict[str, Any]
    issuer: str = Field(description="The name of the API token (or `cli:user@host`) that asked.")
    created_at: Utc
    expires_at: Utc
    selector: dict[str, Any] = Field(description="How the nodes were chosen, as asked.")
    progress: Progress
    finished: bool = Field(description="No node is pending any more.")


class JobPage(Page):
    items: list[Job]


class NodeOutcome(Model):
    node_id: str
    state: Literal["done", "failed", "expired", "pending"]
    outcome: str | None = Field(description="What the node answered: ok, failed, expired, refused; "
                                            "null: nothing yet.")
    detail: str | None
    output: dict[str, Any] | None = Field(description="Only with `output=true`.")
    sent_at: Utc | None = Field(description="When the server last published it to the node.")
    sends: int
    finished_at: Utc | None = Field(description="When the node finished it, by the node's clock.")
    received_at: Utc | None


class JobDetail(Job):
    nodes: list[NodeOutcome]
    nodes_total: int
    limit: int
    offset: int


class NodeCommand(NodeOutcome):
    job_id: str
    command: str
    args: dict[str, Any]
    issuer: str
    created_at: Utc
    expires_at: Utc


class NodeCommandPage(Page):
    items: list[NodeCommand]


def as_job(row: Any) -> Job:
    """A job row with its counts (fleet_server.job_store) as the API shows it."""
    progress = Progress(total=row.total or 0, done=row.done or 0, failed=row.failed or 0,
                        expired=row.expired or 0, pending=row.pending or 0)
    return Job(id=row.id, command=row.command, args=row.args or {}, issuer=row.issuer,
               created_at=row.created_at, expires_at=row.expires_at, selector=row.selector,
               progress=progress, finished=progress.pending == 0)


def _outcome(row: Any, expires_at: Any, now: Any, with_output: bool) -> dict[str, Any]:
    return {
        "node_id": row.node_id,
        "state": jobs.target_state(row.outcome, job_store.aware(expires_at), now),
        "outcome": row.outcome, "detail": row.detail,
        "output": row.output if with_output else None,
        "sent_at": row.sent_at, "sends": row.sends, "finished_at": row.finished_at,
        "received_at": row.received_at,
    }


def detail(conn: sa.Connection, job_id: str, *, limit: int = models.MAX_PAGE, offset: int = 0,
           with_output: bool = False) -> JobDetail | None:
    now = utc_now()
    row = job_store.job(conn, job_id, now)
    if row is None:
        return None
    targets = job_store.targets(conn, job_id, limit=limit, offset=offset)
    return JobDetail(
        **as_job(row).model_dump(),
        nodes=[NodeOutcome(**_outcome(t, row.expires_at, now, with_output)) for t in targets],
        nodes_total=row.total or 0, limit=limit, offset=offset,
    )


REFUSALS = {
    404: {"model": models.Problem, "description": "No such node, site or region."},
    409: {"model": models.Problem, "description": "The choice holds no node, or a retired one."},
    422: {"description": "A field is missing or malformed, or the command does not take an "
                         "argument given (the error names it)."},
}


def job_routes(prefix: str) -> APIRouter:
    api = APIRouter(prefix=prefix, tags=["commands"], dependencies=[Depends(require_operator)])

    @api.post("/jobs", status_code=201, response_model=JobDetail, responses=REFUSALS)
    def create_job(
        asked: JobCreate,
        request: Request,
        token: tokens.TokenInfo = Depends(require_operator),
        conn: sa.Connection = Depends(connection),
    ) -> JobDetail:
        """Send `command` to the nodes chosen, as a job; the token's name is its issuer.

        Each node gets it on its `down/cmd` (at once if online, else when it comes back
        before `expires_in_s`), runs it at most once and answers; the job's progress
        counts the answers (GET /jobs/{id})."""
        try:
            job_id = jobs.create_job(request.app.state.engine, jobs.JobRequest(
                command=asked.command, args=asked.args,
                nodes=tuple(asked.nodes) if asked.nodes is not None else None,
                site=asked.site, region=asked.region, all=asked.all,
                expires_in_s=asked.expires_in_s,
            ), issuer=token.name)
        except jobs.JobError as exc:
            raise HTTPException(exc.status, detail=str(exc)) from None
        wake = getattr(request.app.state, "wake_jobs", None)
        if wake is not None:
            wake()
        made = detail(conn, job_id)
        assert made is not None
        return made

    @api.get("/jobs", response_model=JobPage)
    def list_jobs(
        conn: sa.Connection = Depends(connection),
        command: str | None = Query(None, description="Only jobs of this command."),
        issuer: str | None = Query(None, description="Only jobs asked by this token name."),
        limit: int = Query(models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> JobPage:
        """Jobs, newest first, each with its progress: the audit log of remote commands."""
        rows, total = job_store.job_page(conn, utc_now(), limit=limit, offset=offset,
                                         command=command, issuer=issuer)
        return JobPage(items=[as_job(r) for r in rows], total=total, limit=limit, offset=offset)

    @api.get("/jobs/{job_id}", response_model=JobDetail,
             responses={404: {"model": models.Problem, "description": "No such job."}})
    def get_job(
        job_id: str,
        conn: sa.Connection = Depends(connection),
        output: bool = Query(False, description="Include what each node sent back (logs, "
                                                "screenshots: large)."),
        limit: int = Query(models.MAX_PAGE, ge=1, le=models.MAX_PAGE,
                           description="The most nodes to list."),
        offset: int = Query(0, ge=0),
    ) -> JobDetail:
        """One job: its progress and each node's outcome, by node id."""
        found = detail(conn, job_id, limit=limit, offset=offset, with_output=output)
        if found is None:
            raise HTTPException(404, detail=f"no job {job_id!r}")
        return found

    @api.get("/nodes/{node_id}/commands", response_model=NodeCommandPage,
             responses={404: {"model": models.Problem, "description": "No such node."}})
    def node_commands(
        node_id: str,
        conn: sa.Connection = Depends(connection),
        output: bool = Query(False, description="Include what the node sent back."),
        limit: int = Query(models.DEFAULT_PAGE, ge=1, le=models.MAX_PAGE),
        offset: int = Query(0, ge=0),
    ) -> NodeCommandPage:
        """The commands sent to one node, newest first, with what it answered."""
        rows, total = job_store.node_history(conn, node_id, limit=limit, offset=offset)
        known = conn.execute(sa.select(nodes.c.id).where(nodes.c.id == node_id)).first()
        if not rows and known is None:
            raise HTTPException(404, detail=f"no node {node_id!r}: it is not registered and has "
                                            "never reported")
        now = utc_now()
        items = [NodeCommand(**_outcome(r, r.expires_at, now, output), job_id=r.job_id,
                             command=r.command, args=r.args or {}, issuer=r.issuer,
                             created_at=r.created_at, expires_at=r.expires_at) for r in rows]
        return NodeCommandPage(items=items, total=total, limit=limit, offset=offset)

    return api
