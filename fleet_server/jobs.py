"""Remote commands from the server's side: a command to one node or to thousands is a
*job*, stored with who asked, what, when and for which nodes, and with what each node
answered (the audit log: tables ``jobs`` and ``job_targets``).

Delivery. Each node gets the job's command on its ``down/cmd`` with QoS 1, not
retained (a retained message keeps one command per topic; a node may have several
waiting). The command id is the job id: 32 lowercase hex digits, so that the
server's `Ack` can confirm the node's result (1.5). A node that is offline still
gets its commands when it returns, by two ways:

1. the broker keeps QoS 1 messages for the node's persistent session (7 days);
2. the `Dispatcher` of every server worker publishes each target that has no
   outcome yet and whose command has not expired, first as soon as the job is
   made, then again whenever the node's status has come ``online`` since the
   last send (its session may be gone: a broker restarted without persistence,
   an expired session, a node whose first connection comes after the job).

Both may deliver the same command twice; the node runs each id at most once
(agent.commands) and answers a redelivery with its stored result. Several
workers may publish the same target at once: a conditional update claims each
send, so mostly one does, and a second copy is harmless.

Progress: a target is *done* (outcome ok), *failed* (failed or refused),
*expired* (the node said expired, or nothing came back before the expiry: a node
that never returned) or *pending*. The first outcome a node reports is kept.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable

import sqlalchemy as sa

from fleet_server import job_store
from fleet_server.schema import nodes, sites
from fleet_server.store import utc_now
from rpfleet.durations import format_duration
from rpfleet.protocol import Channel
from rpfleet.protocol.messages import Command

log = logging.getLogger(__name__)

COMMANDS = ("restart-agent", "reboot", "identify", "test-sound", "self-test", "screenshot",
            "fetch-logs", "update-reset")
DESTRUCTIVE = ("restart-agent", "reboot")
ARG_KEYS: dict[str, tuple[str, ...]] = {
    "restart-agent": (),
    "reboot": (),
    "identify": ("counter",),
    "test-sound": (),
    "self-test": (),
    "screenshot": ("peripheral", "max_width"),
    "fetch-logs": ("since", "until", "lines", "unit"),
    "update-reset": ("reason",),
}
"""The keys each command takes; the node checks their values (agent/commands/args.py)."""
MIN_EXPIRY_S = 10
MAX_EXPIRY_S = 7 * 24 * 3600
"""As the node's limit (agent.commands.runner.MAX_EXPIRY): beyond it the node refuses."""
DEFAULT_EXPIRY_S = 600
MAX_ARGS_BYTES = 2000

DONE, FAILED, EXPIRED, PENDING = "done", "failed", "expired", "pending"


class JobError(ValueError):
    """A job that cannot be made; ``status`` is the HTTP status, ``field`` the field at fault."""

    def __init__(self, message: str, status: int = 422, field: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.field = field


@dataclass(frozen=True)
class JobRequest:
    """One command for the nodes chosen by exactly one of ``nodes``, ``site``, ``region``,
    ``all``."""

    command: str
    args: dict[str, Any] = field(default_factory=dict)
    nodes: tuple[str, ...] | None = None
    site: str | None = None
    region: str | None = None
    all: bool = False
    expires_in_s: float = DEFAULT_EXPIRY_S

    def selector(self) -> dict[str, Any]:
        if self.nodes is not None:
            return {"nodes": list(self.nodes)}
        if self.site is not None:
            return {"site": self.site}
        if self.region is not None:
            return {"region": self.region}
        return {"all": True}


def check(request: JobRequest) -> None:
    """Raises JobError naming the field when ``request`` cannot be a job."""
    import json

    if request.command not in COMMANDS:
        raise JobError(f"command: {request.command!r} is not a command; one of "
                       f"{', '.join(COMMANDS)}", field="command")
    unknown = sorted(set(request.args) - set(ARG_KEYS[request.command]))
    if unknown:
        takes = ", ".join(ARG_KEYS[request.command]) or "no args"
        raise JobError(f"args.{unknown[0]}: {request.command} does not take it (it takes {takes})",
                       field=f"args.{unknown[0]}")
    if len(json.dumps(request.args, default=str)) > MAX_ARGS_BYTES:
        raise JobError(f"args: more than {MAX_ARGS_BYTES} bytes", field="args")
    chosen = [name for name, given in (("nodes", request.nodes is not None),
                                       ("site", request.site is not None),
                                       ("region", request.region is not None),
                                       ("all", request.all)) if given]
    if len(chosen) != 1:
        raise JobError("choose the nodes with exactly one of nodes, site, region or all"
                       + (f" (got {', '.join(chosen)})" if chosen else ""), field="nodes")
    if request.nodes is not None and not request.nodes:
        raise JobError("nodes: the list is empty", field="nodes")
    if not MIN_EXPIRY_S <= request.expires_in_s <= MAX_EXPIRY_S:
        raise JobError(f"expires_in_s: between {MIN_EXPIRY_S} s and "
                       f"{format_duration(MAX_EXPIRY_S)}; got {request.expires_in_s:g}",
                       field="expires_in_s")


def chosen_nodes(conn: sa.Connection, request: JobRequest) -> list[str]:
    """The ids of the nodes ``request`` chooses (retired nodes left out); JobError when a
    named node, site or region is unknown or nothing is chosen."""
    live = nodes.c.state != "retired"
    if request.nodes is not None:
        wanted = sorted(set(request.nodes))
        found = dict(conn.execute(
            sa.select(nodes.c.id, nodes.c.state).where(nodes.c.id.in_(wanted))).all())
        missing = [n for n in wanted if n not in found]
        if missing:
            raise JobError(f"nodes: no node {', '.join(missing)}: not registered and never "
                           "heard from", status=404, field="nodes")
        retired = [n for n in wanted if found[n] == "retired"]
        if retired:
            raise JobError(f"nodes: {', '.join(retired)} retired", status=409, field="nodes")
        return wanted
    query = sa.select(nodes.c.id).where(live).order_by(nodes.c.id)
    if request.site is not None:
        if conn.execute(sa.select(sites.c.id).where(sites.c.id == request.site)).first() is None:
            raise JobError(f"site: no site {request.site!r} is registered", status=404,
                           field="site")
        query = query.where(nodes.c.site_id == request.site)
    elif request.region is not None:
        in_region = sa.select(sites.c.id).where(sites.c.region_id == request.region)
        if conn.execute(in_region.limit(1)).first() is None:
            raise JobError(f"region: no site is registered in region {request.region!r}",
                           status=404, field="region")
        query = query.where(nodes.c.site_id.in_(in_region))
    chosen = list(conn.execute(query).scalars())
    if not chosen:
        raise JobError(f"no node to send it to: {request.selector()} chooses none",
                       status=409, field="nodes")
    return chosen


def create_job(engine: sa.Engine, request: JobRequest, issuer: str,
               now: datetime | None = None) -> str:
    """Store a job for ``request`` asked by ``issuer``; its id. The dispatcher sends it."""
    check(request)
    now = now or utc_now()
    job_id = uuid.uuid4().hex
    with engine.begin() as conn:
        targets = chosen_nodes(conn, request)
        job_store.insert_job(conn, job_store.NewJob(
            id=job_id, command=request.command, args=request.args, issuer=issuer,
            created_at=now, expires_at=now + timedelta(seconds=request.expires_in_s),
            selector=request.selector(),
        ), targets)
    log.info("job %s: %s for %d node(s) %s, asked by %s", job_id, request.command, len(targets),
             request.selector(), issuer)
    return job_id


def target_state(outcome: str | None, expires_at: datetime, now: datetime) -> str:
    """done, failed, expired or pending: where one node of a job stands."""
    if outcome == "ok":
        return DONE
    if outcome in ("failed", "refused"):
        return FAILED
    if outcome == "expired" or now >= expires_at:
        return EXPIRED
    return PENDING


def command_of(job: Any) -> Command:
    """The wire command of a job row."""
    return Command(id=job.id, name=job.command, args=job.args or {}, issuer=job.issuer,
                   issued_at=job_store.aware(job.created_at),
                   expires_at=job_store.aware(job.expires_at))


class Dispatcher:
    """Publishes each job's command to its nodes (see the module's docstring), every
    ``every_s`` seconds while the broker link is up. Runs in every server worker."""

    def __init__(self, engine: sa.Engine, publish: Callable[[str, Channel, Any], None],
                 link_up: Callable[[], bool], *, every_s: float = 1.0,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self._engine = engine
        self._publish = publish
        self._link_up = link_up
        self._every_s = every_s
        self._clock = clock
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.sent = 0

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="job dispatcher", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def wake(self) -> None:
        """Look for work now (a job was just made)."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                if self._link_up():
                    self.dispatch()
            except Exception:  # noqa: BLE001 - try again next round
                log.exception("job dispatch failed; trying again")
            self._wake.wait(self._every_s)
            self._wake.clear()

    def dispatch(self) -> int:
        """One round: publish every target due; how many were published."""
        now = self._clock()
        sent = 0
        with self._engine.begin() as conn:
            due = job_store.due(conn, now)
            for target in due:
                if not job_store.claim(conn, target.job_id, target.node_id, target.sends, now):
                    continue  # another worker sent it
                self._publish(target.node_id, Channel.CMD, command_of(target))
                sent += 1
        if sent:
            log.info("published %d command(s)", sent)
        self.sent += sent
        return sent
