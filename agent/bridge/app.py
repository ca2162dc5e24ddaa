"""The bridge's routes (Starlette), described once in `OPERATIONS` for the app and its OpenAPI.

Every route is behind `Guarded` (agent/bridge/guarded.py); the handlers here only do the work:
print, reprint and void tickets, hand announcements to the soundboxes, report the status.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Awaitable, Callable, Iterable

from pydantic import BaseModel, ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from agent.bridge.guard import Guard
from agent.bridge.guarded import PUBLIC_PREFIX, Guarded, error_body
from agent.bridge.models import (
    FALLBACK_VI,
    AnnouncementRequest,
    AnnouncementTaken,
    PrintResult,
    PrinterState,
    Status,
    TicketRequest,
    VoidResult,
)
from agent.bridge.page_socket import PageSockets
from agent.bridge.peripherals import Announcing, TicketPrinting, printers, soundboxes
from devices.printer.ticket import JobVoided, PrintOutcome, Ticket, UnknownJob
from rpfleet.protocol.messages import Announce, PeripheralHealth

log = logging.getLogger("agent.bridge")

KIOSK_DIR = Path(__file__).resolve().parent / "kiosk"
ANNOUNCE_TTL = timedelta(seconds=60)
"""An announcement a page asked for and not said within this long is dropped."""


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class Operation:
    """One HTTP route: what the app serves and what the OpenAPI document says of it."""

    id: str
    method: str
    path: str
    summary: str
    response: type[BaseModel]
    status: int = 200
    request: type[BaseModel] | None = None
    errors: dict[int, str] = field(default_factory=dict)
    description: str = ""


OPERATIONS: tuple[Operation, ...] = (
    Operation(
        "status", "GET", "/v1/status", "The node's peripherals and its ticket printers' state",
        Status,
    ),
    Operation(
        "print_ticket", "POST", "/v1/tickets", "Print a queue ticket", PrintResult,
        request=TicketRequest,
        errors={422: "A field of the ticket is bad (`field` names it).",
                503: "Not printed: a `PrintResult` with `printed: false` and the `fallback` "
                     "message, or a `BridgeError` `no-printer`."},
        description="Returns once the ticket has printed and been cut, or has failed. A "
        "ticket counts as issued only when `printed` is true; otherwise show the citizen "
        f"`fallback` (\"{FALLBACK_VI}\").",
    ),
    Operation(
        "reprint_ticket", "POST", "/v1/tickets/{job_id}/reprint",
        "Print an earlier ticket again", PrintResult,
        errors={404: "No printer here has this job.", 409: "The job was voided.",
                503: "Not printed (as for printing)."},
        description="A new job, printed like the first; the old job id stays valid.",
    ),
    Operation(
        "void_ticket", "POST", "/v1/tickets/{job_id}/void", "Withdraw an earlier ticket",
        VoidResult, errors={404: "No printer here has this job."},
        description="The ticket will not be reprinted; voiding twice is harmless.",
    ),
    Operation(
        "announce", "POST", "/v1/announcements", "Ask the node's soundbox to say something",
        AnnouncementTaken, status=202, request=AnnouncementRequest,
        errors={422: "A field is bad (`field` names it).",
                503: "No soundbox here says it (none, or none for that counter)."},
        description="Taken at once; said in turn by the soundboxes serving the counter, "
        "dropped if not said within 60 s. The outcome is recorded as an event for the fleet.",
    ),
)


class BridgeApp:
    """The work behind the routes, given the node's printers, soundboxes and status."""

    def __init__(
        self,
        drivers: Iterable[object],
        peripherals: Callable[[], list[PeripheralHealth]],
        sockets: PageSockets | None,
        *,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        """``drivers`` is iterated afresh at each call: the node's drivers follow its config."""
        self.drivers = drivers
        self.peripherals = peripherals
        self.sockets = sockets
        self._clock = clock

    @property
    def printers(self) -> list[TicketPrinting]:
        return printers(self.drivers)

    @property
    def soundboxes(self) -> list[Announcing]:
        return soundboxes(self.drivers)

    def status(self) -> Status:
        return Status(
            peripherals=self.peripherals(),
            printers=[PrinterState(id=p.id, status=p.status()) for p in self.printers],
        )

    def asgi(self, guard: Guard, *, sample_page: bool) -> Guarded:
        handlers: dict[str, Callable[[Request], Awaitable[Response]]] = {
            "status": self._status, "print_ticket": self._print, "reprint_ticket": self._reprint,
            "void_ticket": self._void, "announce": self._announce,
        }
        routes: list = [Route(op.path, handlers[op.id], methods=[op.method]) for op in OPERATIONS]
        if self.sockets is not None:
            routes.append(WebSocketRoute("/v1/events", self.sockets.serve))
        if sample_page:
            routes.append(Route("/", lambda request: RedirectResponse(PUBLIC_PREFIX + "/")))
            routes.append(Mount(PUBLIC_PREFIX, StaticFiles(directory=KIOSK_DIR, html=True)))
        app = Starlette(routes=routes)
        app.add_exception_handler(404, _not_found)
        app.add_exception_handler(405, _not_allowed)
        app.add_exception_handler(Exception, _failed)
        return Guarded(app, guard, public=sample_page)

    # -- handlers --------------------------------------------------------------------------

    async def _status(self, request: Request) -> Response:
        return _json(200, self.status())

    async def _print(self, request: Request) -> Response:
        body = await _body(request, TicketRequest)
        if isinstance(body, Response):
            return body
        printer = self._printer()
        if printer is None:
            return _no_printer()
        ticket = Ticket(**body.model_dump(exclude={"issued_at"}),
                        issued_at=body.issued_at or self._clock())
        outcome = await _unbroken(printer.print_ticket(ticket))
        log.info("bridge: ticket %s (%s) on %s: %s", ticket.number, ticket.service, printer.id,
                 "printed" if outcome.printed else f"not printed ({outcome.reason})")
        return self._printed(printer, outcome)

    async def _reprint(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        for printer in self.printers:
            try:
                outcome = await _unbroken(printer.reprint(job_id))
            except UnknownJob:
                continue
            except JobVoided:
                return _error(409, "job-voided", f"job {job_id} was voided: it is not reprinted")
            log.info("bridge: job %s reprinted on %s as %s: %s", job_id, printer.id,
                     outcome.job_id, "printed" if outcome.printed else outcome.reason)
            return self._printed(printer, outcome)
        return _unknown_job(job_id, self.printers)

    async def _void(self, request: Request) -> Response:
        job_id = request.path_params["job_id"]
        for printer in self.printers:
            try:
                await printer.void(job_id)
            except UnknownJob:
                continue
            log.info("bridge: job %s on %s voided", job_id, printer.id)
            return _json(200, VoidResult(job_id=job_id, printer=printer.id))
        return _unknown_job(job_id, self.printers)

    async def _announce(self, request: Request) -> Response:
        body = await _body(request, AnnouncementRequest)
        if isinstance(body, Response):
            return body
        message = Announce(id=f"bridge-{uuid.uuid4().hex}", expires_at=self._clock() + ANNOUNCE_TTL,
                           **body.model_dump(exclude_none=True))
        taken = [box.id for box in self.soundboxes if box.announce(message)]
        if not taken:
            where = f" for counter {body.counter}" if body.counter else ""
            return _error(503, "no-soundbox", f"no soundbox on this node says announcements{where}")
        log.info("bridge: %s %s taken by %s", message.kind, message.id, ", ".join(taken))
        return _json(202, AnnouncementTaken(id=message.id, soundboxes=taken))

    # -- the rest ---------------------------------------------------------------------------

    def _printer(self) -> TicketPrinting | None:
        """The printer for a new ticket: the first one that would print now, else the first."""
        ready = [p for p in self.printers if p.status().online]
        return (ready or self.printers or [None])[0]

    def _printed(self, printer: TicketPrinting, outcome: PrintOutcome) -> Response:
        result = PrintResult(
            job_id=outcome.job_id, printer=printer.id, printed=outcome.printed,
            reason=outcome.reason, detail=outcome.detail,
            fallback=None if outcome.printed else FALLBACK_VI,
        )
        if self.sockets is not None:
            self.sockets.status_may_have_changed()
        return _json(200 if outcome.printed else 503, result)


async def _unbroken(job: Awaitable[PrintOutcome]) -> PrintOutcome:
    """Wait for a print job that a page going away mid-ticket must not cut short."""
    return await asyncio.shield(asyncio.ensure_future(job))


async def _body(request: Request, model: type[BaseModel]):
    """The request's JSON body as ``model``, or the 400/422 response saying what is wrong."""
    try:
        data = json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError) as exc:
        return _error(400, "invalid-json", f"the body is not JSON: {exc}")
    if not isinstance(data, dict):
        return _error(422, "invalid-request", f"the body must be a JSON object ({model.__name__})")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or None
        return _error(422, "invalid-request", f"{where}: {first['msg']}" if where
                      else first["msg"], field=where)


def _json(status: int, model: BaseModel) -> Response:
    return Response(model.model_dump_json(exclude_none=True), status,
                    media_type="application/json")


def _error(status: int, error: str, message: str, **extra) -> Response:
    return Response(error_body(error, message, **extra), status, media_type="application/json")


def _no_printer() -> Response:
    return _error(503, "no-printer", "no ticket printer is configured on this node",
                  fallback=FALLBACK_VI)


def _unknown_job(job_id: str, printers: list[TicketPrinting]) -> Response:
    if not printers:
        return _no_printer()
    return _error(404, "unknown-job", f"no printer on this node has job {job_id}")


async def _not_found(request: Request, exc: Exception) -> Response:
    return _error(404, "not-found", f"no such endpoint: {request.url.path}")


async def _not_allowed(request: Request, exc: Exception) -> Response:
    return _error(405, "method-not-allowed",
                  f"{request.method} is not allowed on {request.url.path}")


async def _failed(request: Request, exc: Exception) -> Response:
    log.error("bridge: %s %s failed", request.method, request.url.path, exc_info=exc)
    return _error(500, "bridge-failed", f"the bridge failed: {type(exc).__name__}",
                  fallback=FALLBACK_VI)
