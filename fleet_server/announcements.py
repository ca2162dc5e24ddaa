"""The announcement channel: a queue call or a payment confirmation from an
integration (the queue system, the payment gateway) becomes one `Announce` on
``down/announce`` of each node that should say or show it.

Which nodes (`recipients`), from the registry:

- every node placed at the site and counter asked for, whatever its kind: the
  counter's own node speaks or shows what concerns its desk;
- for a queue call, also every node of the site whose kind is ``soundbox`` or
  ``dashboard``: the hall's speaker and screens call every counter. A node's
  kind is the one it last enrolled as (its used enrollment code); a node
  that never enrolled has no known kind and hears only its own counter.
- A payment confirmation goes to the cashier's counter only: what someone
  paid is said to them, not to the hall.
- Retired nodes are left out; offline ones are not (the broker keeps the
  message for their persistent session, and a node that comes back after
  ``expires_at`` drops it).

Idempotency: a client may name an announcement (``id``). The same id at the
same site is announced once: a retry that asks the same gets the first
answer again (``duplicate``), one that asks something else is a conflict.

A queue call also starts a *service* at its counter (table ``services``):
the call's ticket (and officer) and the window during which rating taps at
that counter belong to it, from the call to the next call at the counter or
`SERVICE_TIMEOUT`, whichever is first (fleet_server.service_tagging reads it).
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

import sqlalchemy as sa

from fleet_server import store
from fleet_server.registry import placement_problem
from fleet_server.schema import announcements, enrollment_codes, nodes, services, sites
from rpfleet.protocol import Channel
from rpfleet.protocol.messages import Announce

log = logging.getLogger(__name__)

QUEUE_CALL = "queue-call"
PAYMENT = "payment"
HALL_KINDS = ("soundbox", "dashboard")
"""Node kinds that serve the whole site: they hear every queue call of their site."""

DEFAULT_TTL_S = 120
"""How long an announcement may still be said: a call spoken ten minutes late is worse than none."""
MIN_TTL_S = 5
MAX_TTL_S = 1800
SERVICE_TIMEOUT = timedelta(minutes=30)
"""A service without a next call at its counter ends this long after its call."""


class Link(Protocol):
    """What announcing needs of the broker link (fleet_server.link.ServerLink)."""

    def publish(
        self, node: str, channel: Channel, message: Any, *, retain: bool = False
    ) -> None: ...

    @property
    def connected(self) -> Any: ...  # a threading.Event


class AnnounceError(Exception):
    """An announcement that cannot be made; ``status`` is the HTTP status that says so."""

    status = 400

    def __init__(self, message: str) -> None:
        super().__init__(message)


class UnknownSite(AnnounceError):
    status = 404


class BadCounter(AnnounceError):
    status = 422


class Conflict(AnnounceError):
    status = 409


class NoBroker(AnnounceError):
    status = 503


@dataclass(frozen=True)
class Recipient:
    node: str
    state: str
    reason: str
    """Why it hears it: "counter" (placed there), or its hall kind ("soundbox", "dashboard")."""


@dataclass(frozen=True)
class Call:
    """A queue call: ticket ``ticket`` to counter ``counter``."""

    ticket: str
    counter: str
    service: str | None = None
    priority: bool = False
    officer: str | None = None
    id: str | None = None
    ttl_s: int = DEFAULT_TTL_S

    kind = QUEUE_CALL


@dataclass(frozen=True)
class Payment:
    """A payment confirmation: ``amount_vnd`` received at cashier counter ``counter``."""

    amount_vnd: int
    counter: str
    id: str | None = None
    ttl_s: int = DEFAULT_TTL_S

    kind = PAYMENT


Request = Call | Payment


@dataclass(frozen=True)
class Announced:
    """What was announced (or, with ``duplicate``, had been by an earlier request)."""

    message: Announce
    site_id: str
    sent_at: datetime
    nodes: tuple[Recipient, ...]
    duplicate: bool
    service_id: int | None
    called_at: datetime | None


def _asked(request: Request) -> dict[str, Any]:
    """What a request asks to be said, as stored: a retry must ask exactly this."""
    fields = {k: v for k, v in vars(request).items() if k not in ("id", "ttl_s")}
    return {"kind": request.kind, **fields}


def wire_message(announcement_id: str, asked: dict[str, Any], expires_at: datetime) -> Announce:
    """The `Announce` for what ``asked`` says (as `_asked` gives it).

    Built through the contract's model. A call's ``service`` and ``priority``
    choose the voice pack's wording on the node (contract 1.4). The officer
    never goes: it is kept for tagging the service, not said.
    """
    fields = {k: v for k, v in asked.items() if v is not None and k != "officer"}
    return Announce.model_validate({**fields, "id": announcement_id, "expires_at": expires_at})


# ---- who hears it -------------------------------------------------------


def node_kinds(conn: sa.Connection, node_ids: list[str]) -> dict[str, str]:
    """The kind each node last enrolled as; nodes that never enrolled are absent."""
    if not node_ids:
        return {}
    rows = conn.execute(
        sa.select(enrollment_codes.c.node_id, enrollment_codes.c.kind)
        .where(enrollment_codes.c.node_id.in_(node_ids), enrollment_codes.c.used_at.is_not(None))
        .order_by(enrollment_codes.c.used_at, enrollment_codes.c.id)
    )
    return {row.node_id: row.kind for row in rows}  # the latest enrollment wins


def recipients(conn: sa.Connection, site_id: str, counter: str, kind: str) -> list[Recipient]:
    """The nodes of ``site_id`` that should hear a ``kind`` announcement for ``counter``
    (the rule is in the module docstring), by node id."""
    placed = conn.execute(
        sa.select(nodes.c.id, nodes.c.counter, nodes.c.state)
        .where(nodes.c.site_id == site_id, nodes.c.state != "retired")
        .order_by(nodes.c.id)
    ).all()
    kinds = node_kinds(conn, [row.id for row in placed]) if kind == QUEUE_CALL else {}
    found = []
    for row in placed:
        if row.counter == counter:
            found.append(Recipient(row.id, row.state, "counter"))
        elif kinds.get(row.id) in HALL_KINDS:
            found.append(Recipient(row.id, row.state, kinds[row.id]))
    return found


# ---- announcing ---------------------------------------------------------


def announce(
    engine: sa.Engine,
    site_id: str,
    request: Request,
    *,
    token_name: str,
    link: Link | None,
    now: datetime | None = None,
) -> Announced:
    """Record ``request`` at ``site_id`` and publish it to its recipients (QoS 1, not retained).

    A repeated ``request.id`` publishes nothing and returns the first answer.
    Raises UnknownSite, BadCounter (a counter the site does not have), Conflict
    (no node to hear it; an id already used for something else) or NoBroker
    (the server is not connected: nothing is recorded, so a retry can succeed).
    """
    now = now or store.utc_now()
    try:
        with engine.begin() as conn:
            made = _record(conn, site_id, request, token_name=token_name, link=link, now=now)
    except sa.exc.IntegrityError:
        # The same id, recorded meanwhile by a concurrent request (another worker).
        with engine.connect() as conn:
            made = _earlier(conn, site_id, request)
        if made is None:
            raise
    if made.duplicate:
        log.info("announcement %r at %s repeated by %s: not published again",
                 made.message.id, site_id, token_name)
        return made
    assert link is not None  # _record refused without one
    for recipient in made.nodes:
        link.publish(recipient.node, Channel.ANNOUNCE, made.message)
    log.info("announced %s %r at %s/%s to %s (by %s)", request.kind, made.message.id, site_id,
             request.counter, ",".join(r.node for r in made.nodes), token_name)
    return made


def _record(conn: sa.Connection, site_id: str, request: Request, *, token_name: str,
            link: Link | None, now: datetime) -> Announced:
    if conn.execute(sa.select(sites.c.id).where(sites.c.id == site_id)).first() is None:
        raise UnknownSite(f"no site {site_id!r} is registered")
    earlier = _earlier(conn, site_id, request)
    if earlier is not None:
        return earlier
    problem = placement_problem(conn, site_id, request.counter)
    if problem:
        raise BadCounter(problem)
    heard_by = recipients(conn, site_id, request.counter, request.kind)
    if not heard_by:
        hall = (" and the site has no soundbox or dashboard node"
                if request.kind == QUEUE_CALL else "")
        raise Conflict(f"no node at site {site_id!r} can announce at counter "
                       f"{request.counter!r}: none is placed at that counter{hall}")
    if link is None or not link.connected.is_set():
        raise NoBroker("the fleet server is not connected to the broker: nothing was announced;"
                       " try again shortly")
    message = wire_message(request.id or uuid.uuid4().hex, _asked(request),
                           now + timedelta(seconds=request.ttl_s))
    conn.execute(announcements.insert().values(
        id=message.id, site_id=site_id, kind=request.kind, counter=request.counter,
        ticket=message.ticket, amount_vnd=message.amount_vnd, request=_asked(request),
        token_name=token_name, created_at=now, expires_at=message.expires_at,
        nodes=[vars(r) for r in heard_by],
    ))
    service_id = None
    if isinstance(request, Call):
        service_id = start_service(conn, site_id, request, message.id, now)
    return Announced(message, site_id, now, tuple(heard_by), False, service_id,
                     now if service_id is not None else None)


def _earlier(conn: sa.Connection, site_id: str, request: Request) -> Announced | None:
    """The announcement ``request.id`` already made at ``site_id``, or None.

    Raises Conflict when that id was used for something else.
    """
    if request.id is None:
        return None
    row = conn.execute(sa.select(announcements).where(
        announcements.c.site_id == site_id, announcements.c.id == request.id
    )).first()
    if row is None:
        return None
    if row.request != _asked(request):
        raise Conflict(f"announcement id {request.id!r} was used at {site_id!r} for another "
                       f"{row.kind} (at counter {row.counter!r}); "
                       "give each announcement its own id")
    service = conn.execute(
        sa.select(services.c.id, services.c.called_at).where(
            services.c.site_id == site_id, services.c.announcement_id == row.id)
    ).first()
    message = wire_message(row.id, row.request, store.as_utc(row.expires_at))
    return Announced(
        message, site_id, store.as_utc(row.created_at),
        tuple(Recipient(**r) for r in row.nodes), True,
        service.id if service else None, store.as_utc(service.called_at) if service else None,
    )


def start_service(conn: sa.Connection, site_id: str, call: Call, announcement_id: str,
                  now: datetime) -> int:
    """Begin the service ``call`` starts at its counter, ending the one before it there.

    Returns the new service's id.
    """
    conn.execute(
        services.update()
        .where(services.c.site_id == site_id, services.c.counter == call.counter,
               services.c.ends_at > now)
        .values(ends_at=now)
    )
    return conn.execute(
        services.insert().values(
            site_id=site_id, counter=call.counter, ticket=call.ticket, officer=call.officer,
            service=call.service, priority=call.priority, called_at=now,
            ends_at=now + SERVICE_TIMEOUT, announcement_id=announcement_id,
        ).returning(services.c.id)
    ).scalar_one()
