"""The jobs tables (fleet_server.schema ``jobs``, ``job_targets``): SQL only, both backends.

Every change is a conditional statement, safe when several workers run it at once:
a send is claimed only if nobody sent it meanwhile, and an outcome is written
only if none was (the first answer a node gives is the one kept).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa

from fleet_server.schema import job_targets, jobs, nodes
from rpfleet.protocol.messages import CommandResult

DUE_PER_ROUND = 1000
ACKABLE = re.compile(r"^[0-9a-f]{32}$")
"""Command ids an `Ack` can name (job ids are all of this form)."""


def aware(at: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; everything the server stores is UTC.
    if at is None:
        return None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at


@dataclass(frozen=True)
class NewJob:
    id: str
    command: str
    args: dict[str, Any]
    issuer: str
    created_at: datetime
    expires_at: datetime
    selector: dict[str, Any]


def insert_job(conn: sa.Connection, job: NewJob, targets: list[str]) -> None:
    conn.execute(jobs.insert().values(
        id=job.id, command=job.command, args=job.args, issuer=job.issuer,
        created_at=job.created_at, expires_at=job.expires_at, selector=job.selector,
        node_count=len(targets),
    ))
    for start in range(0, len(targets), 1000):
        conn.execute(job_targets.insert(), [
            {"job_id": job.id, "node_id": node, "sends": 0} for node in targets[start:start + 1000]
        ])


def due(conn: sa.Connection, now: datetime) -> list[Any]:
    """Targets to publish now: no outcome, command not expired, node not retired, and
    never sent or the node came online since the last send. Rows carry the job's columns."""
    came_back = sa.and_(nodes.c.state == "online", nodes.c.state_at > job_targets.c.sent_at)
    query = (
        sa.select(job_targets.c.job_id, job_targets.c.node_id, job_targets.c.sent_at,
                  job_targets.c.sends, jobs.c.id, jobs.c.command, jobs.c.args, jobs.c.issuer,
                  jobs.c.created_at, jobs.c.expires_at)
        .select_from(job_targets.join(jobs, jobs.c.id == job_targets.c.job_id)
                     .outerjoin(nodes, nodes.c.id == job_targets.c.node_id))
        .where(job_targets.c.outcome.is_(None), jobs.c.expires_at > now,
               sa.or_(nodes.c.state.is_(None), nodes.c.state != "retired"),
               sa.or_(job_targets.c.sent_at.is_(None), came_back))
        .order_by(jobs.c.created_at)
        .limit(DUE_PER_ROUND)
    )
    return list(conn.execute(query))


def claim(conn: sa.Connection, job_id: str, node_id: str, sends: int, now: datetime) -> bool:
    """Take the next send of a target; False when another worker took it first."""
    result = conn.execute(
        job_targets.update()
        .where(job_targets.c.job_id == job_id, job_targets.c.node_id == node_id,
               job_targets.c.sends == sends, job_targets.c.outcome.is_(None))
        .values(sent_at=now, sends=sends + 1)
    )
    return result.rowcount == 1


def record_results(conn: sa.Connection,
                   results: Iterable[tuple[CommandResult, datetime]]) -> list[str]:
    """Keep each node's first outcome for its command; "node/id" of each result that
    matched no target (not a job of this server, or not sent to that node)."""
    unknown = []
    for result, received_at in results:
        updated = conn.execute(
            job_targets.update()
            .where(job_targets.c.job_id == result.id, job_targets.c.node_id == result.node,
                   job_targets.c.outcome.is_(None))
            .values(outcome=result.outcome, detail=result.detail, output=result.output,
                    finished_at=result.finished_at.astimezone(timezone.utc),
                    received_at=received_at)
        )
        if updated.rowcount == 0:
            known = conn.execute(
                sa.select(job_targets.c.job_id).where(job_targets.c.job_id == result.id,
                                                      job_targets.c.node_id == result.node)
            ).first()
            if known is None:
                unknown.append(f"{result.node}/{result.id}")
    return unknown


# ---- reading ---------------------------------------------------------------


def _counts(now: datetime) -> list[Any]:
    """Per-job counts of the four states, as aggregate columns over job_targets."""
    outcome = job_targets.c.outcome
    no_answer = outcome.is_(None)
    lapsed = jobs.c.expires_at <= now
    return [
        sa.func.count(job_targets.c.node_id).label("total"),
        sa.func.sum(sa.case((outcome == "ok", 1), else_=0)).label("done"),
        sa.func.sum(sa.case((outcome.in_(["failed", "refused"]), 1), else_=0)).label("failed"),
        sa.func.sum(sa.case((outcome == "expired", 1), (sa.and_(no_answer, lapsed), 1),
                            else_=0)).label("expired"),
        sa.func.sum(sa.case((sa.and_(no_answer, sa.not_(lapsed)), 1), else_=0)).label("pending"),
    ]


def _jobs_with_counts(now: datetime) -> sa.Select:
    # Counted in a subquery: PostgreSQL cannot group by the JSON columns of jobs.
    counted = (
        sa.select(job_targets.c.job_id, *_counts(now))
        .select_from(job_targets.join(jobs, jobs.c.id == job_targets.c.job_id))
        .group_by(job_targets.c.job_id)
        .subquery()
    )
    return (
        sa.select(jobs, counted.c.total, counted.c.done, counted.c.failed, counted.c.expired,
                  counted.c.pending)
        .select_from(jobs.outerjoin(counted, counted.c.job_id == jobs.c.id))
    )


def job_page(conn: sa.Connection, now: datetime, *, limit: int, offset: int,
             command: str | None = None, issuer: str | None = None) -> tuple[list[Any], int]:
    """Jobs newest first with their counts, and how many match."""
    query = _jobs_with_counts(now)
    count = sa.select(sa.func.count()).select_from(jobs)
    for column, value in ((jobs.c.command, command), (jobs.c.issuer, issuer)):
        if value is not None:
            query, count = query.where(column == value), count.where(column == value)
    rows = conn.execute(
        query.order_by(jobs.c.created_at.desc(), jobs.c.id).limit(limit).offset(offset)
    ).all()
    return rows, conn.execute(count).scalar_one()


def job(conn: sa.Connection, job_id: str, now: datetime) -> Any | None:
    return conn.execute(_jobs_with_counts(now).where(jobs.c.id == job_id)).first()


def targets(conn: sa.Connection, job_id: str, *, limit: int | None = None, offset: int = 0,
            outcome: str | None = None) -> list[Any]:
    query = (sa.select(job_targets).where(job_targets.c.job_id == job_id)
             .order_by(job_targets.c.node_id).offset(offset))
    if outcome is not None:
        query = query.where(job_targets.c.outcome == outcome)
    if limit is not None:
        query = query.limit(limit)
    return conn.execute(query).all()


def node_history(conn: sa.Connection, node_id: str, *, limit: int,
                 offset: int) -> tuple[list[Any], int]:
    """The commands sent to ``node_id``, newest first, each with its job's columns."""
    where = job_targets.c.node_id == node_id
    rows = conn.execute(
        sa.select(job_targets, jobs.c.command, jobs.c.args, jobs.c.issuer, jobs.c.created_at,
                  jobs.c.expires_at)
        .select_from(job_targets.join(jobs, jobs.c.id == job_targets.c.job_id))
        .where(where)
        .order_by(jobs.c.created_at.desc(), jobs.c.id)
        .limit(limit).offset(offset)
    ).all()
    total = conn.execute(
        sa.select(sa.func.count()).select_from(job_targets).where(where)
    ).scalar_one()
    return rows, total
