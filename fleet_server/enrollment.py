"""Enrollment by one-time code, certificate renewal and revocation.

A technician's code (`rpfleet.enrollment_code`) is bound to one site, counter
and node kind; it is single use, expires, and only its hash is stored. The
node proves it holds a key by sending a CSR; the server names the certificate
(the node id) itself. There is no open enrollment: every refusal has a reason
code, is logged and is recorded in ``enrollment_failures``, and too many
failures from one address (or from everywhere) refuse further attempts for a
while.

Functions run inside the caller's transaction; a refusal raises `Refused`,
which the caller records with `record_failure` in a transaction of its own,
so that it survives the rollback of the attempt.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from fleet_server import store
from fleet_server.node_kinds import NodeKinds, initial_peripherals, load_node_kinds
from fleet_server.registry import placement_problem
from fleet_server.schema import enrollment_codes, enrollment_failures, node_certificates, nodes
from fleet_server.settings import EnrollmentSettings
from provisioning.fleet_dir import FleetDir
from rpfleet import pki
from rpfleet.enrollment_code import CodeError, EnrollmentCode, new_code, parse_code
from rpfleet.protocol.topics import TopicError, check_node_id

log = logging.getLogger(__name__)


class Refused(Exception):
    """An enrollment or renewal that is refused; ``reason`` is a stable code."""

    def __init__(self, reason: str, message: str, status: int = 403) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class BadRequest(ValueError):
    """An operator's request (a new code, a revoke) that cannot be done; the message says why."""


@dataclass(frozen=True)
class NewCode:
    code: EnrollmentCode
    node_id: str
    site_id: str
    counter: str
    kind: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Enrolled:
    node_id: str
    site_id: str
    counter: str
    kind: str
    certificate: bytes
    replaced: int
    """Certificates of an earlier enrollment of this node, revoked by this one."""

    peripherals: list[dict[str, Any]]


def node_id_for(site_id: str, counter: str) -> str:
    """The node at a site's counter: ``<site>-<counter>``, the same id when it is replaced."""
    node_id = f"{site_id}-{counter}"
    try:
        return check_node_id(node_id)
    except TopicError as exc:
        raise BadRequest(f"cannot name a node {node_id!r}: {exc}; pass --node-id") from None


def create_code(
    conn: sa.Connection,
    fleet: FleetDir,
    *,
    site_id: str,
    counter: str,
    kind: str,
    created_by: str,
    ttl: dt.timedelta,
    node_id: str | None = None,
    kinds: NodeKinds | None = None,
    now: dt.datetime | None = None,
) -> NewCode:
    """A new single-use code for the node at ``site_id``/``counter``; BadRequest if it cannot be."""
    now = now or store.utc_now()
    kinds = kinds if kinds is not None else load_node_kinds()
    if kind not in kinds:
        raise BadRequest(f"no node kind {kind!r} (kinds: {', '.join(kinds)})")
    problem = placement_problem(conn, site_id, counter)
    if problem:
        raise BadRequest(problem)
    if node_id is None:
        node_id = node_id_for(site_id, counter)
    else:
        try:
            check_node_id(node_id)
        except TopicError as exc:
            raise BadRequest(f"node id {node_id!r}: {exc}") from None
    code = new_code(fleet.ca_fingerprint())
    conn.execute(
        enrollment_codes.insert().values(
            secret_hash=code.secret_hash(), node_id=node_id, site_id=site_id, counter=counter,
            kind=kind, created_by=created_by, created_at=now, expires_at=now + ttl,
        )
    )
    log.info("enrollment code made for node=%s site=%s counter=%s kind=%s by=%s",
             node_id, site_id, counter, kind, created_by)
    return NewCode(code, node_id, site_id, counter, kind, now + ttl)


def check_rate(
    conn: sa.Connection, source: str, limits: EnrollmentSettings, now: dt.datetime | None = None
) -> None:
    """Refuse (429) when ``source``, or the whole fleet, has failed too often lately."""
    since = (now or store.utc_now()) - dt.timedelta(seconds=limits.failure_window)
    recent = sa.select(sa.func.count()).select_from(enrollment_failures).where(
        enrollment_failures.c.at > since
    )
    if conn.execute(recent.where(enrollment_failures.c.source == source)).scalar_one() >= limits.max_failures:
        raise Refused("rate_limited", "too many failed attempts from this address; wait and try again", 429)
    if conn.execute(recent).scalar_one() >= limits.fleet_max_failures:
        raise Refused("rate_limited", "enrollment is paused after many failed attempts; call IT support", 429)


def redeem(
    conn: sa.Connection,
    fleet: FleetDir,
    *,
    code_text: str,
    csr_pem: str,
    site: str | None = None,
    kinds: NodeKinds | None = None,
    now: dt.datetime | None = None,
) -> Enrolled:
    """Trade a code and a CSR for the node's certificate; raises Refused.

    A node enrolled again (a wiped disk, a replaced board) keeps its node id and
    gets a new certificate; every earlier certificate of it is revoked, and the
    caller rewrites the CRL. ``site``, when the technician gives it, must be the
    code's site: a code read out for another site is refused and stays unused.
    """
    now = now or store.utc_now()
    try:
        code = parse_code(code_text)
    except CodeError as exc:
        raise Refused("malformed", str(exc), 400) from None
    if not code.pins(fleet.ca_fingerprint()):
        raise Refused("wrong_fleet", "this code was made for another fleet CA")
    row = conn.execute(
        sa.select(enrollment_codes).where(enrollment_codes.c.secret_hash == code.secret_hash())
    ).first()
    if row is None:
        raise Refused("unknown_code", "no such enrollment code; check it with the person who made it")
    if row.used_at is not None:
        raise Refused("used", "this code has been used already; ask for a new one")
    if store.as_utc(row.expires_at) <= now:
        raise Refused("expired", "this code has expired; ask for a new one")
    if site is not None and site != row.site_id:
        raise Refused("wrong_site", f"this code is for another site, not {site!r}; check the code")
    try:
        public_key = pki.csr_public_key(csr_pem)
    except pki.PkiError as exc:
        raise Refused("bad_csr", str(exc), 400) from None
    claimed = conn.execute(
        enrollment_codes.update()
        .where(enrollment_codes.c.id == row.id, enrollment_codes.c.used_at.is_(None))
        .values(used_at=now)
    )
    if claimed.rowcount != 1:
        raise Refused("used", "this code has been used already; ask for a new one")
    replaced = revoke_certificates(conn, row.node_id, "replaced by a new enrollment", now)
    cert = fleet.sign(public_key, row.node_id, now=now)
    record_certificate(conn, row.node_id, cert, "enrolled", now)
    _place(conn, row.node_id, row.site_id, row.counter)
    log.info("node %s enrolled at site=%s counter=%s (certificate %x, %d earlier revoked)",
             row.node_id, row.site_id, row.counter, cert.serial_number, replaced)
    return Enrolled(
        node_id=row.node_id, site_id=row.site_id, counter=row.counter, kind=row.kind,
        certificate=pki.cert_pem(cert), replaced=replaced,
        peripherals=initial_peripherals(
            kinds if kinds is not None else load_node_kinds(), row.kind, row.counter
        ),
    )


def record_failure(
    conn: sa.Connection, source: str, refused: Refused, now: dt.datetime | None = None
) -> None:
    conn.execute(
        enrollment_failures.insert().values(
            at=now or store.utc_now(), source=source[:100], reason=refused.reason, detail=str(refused)
        )
    )
    log.warning("enrollment refused from %s: %s (%s)", source, refused.reason, refused)


def renew(
    conn: sa.Connection,
    fleet: FleetDir,
    *,
    cert_pem: str,
    csr_pem: str,
    signature: bytes,
    now: dt.datetime | None = None,
) -> bytes:
    """A new certificate for a node that proves it holds its current, valid one.

    The node signs its new CSR with its current key (``signature``); the current
    certificate must be the fleet's, unexpired and not revoked. No technician
    is involved, and a stolen, revoked node cannot renew.
    """
    now = now or store.utc_now()
    ca_cert, _ = fleet.load_ca()
    try:
        current = pki.load_cert(cert_pem.encode())
        pki.check_issued(ca_cert, current)
        new_key = pki.csr_public_key(csr_pem)
    except pki.PkiError as exc:
        raise Refused("bad_certificate", str(exc), 400) from None
    public = current.public_key()
    try:
        assert isinstance(public, ec.EllipticCurvePublicKey)
        public.verify(signature, csr_pem.encode(), ec.ECDSA(hashes.SHA256()))
    except (AssertionError, InvalidSignature):
        raise Refused("bad_signature", "the request is not signed by the current certificate's key") from None
    if current.not_valid_after_utc <= now:
        raise Refused("expired", "the current certificate has expired; enroll the node again")
    serial = format(current.serial_number, "x")
    known = conn.execute(
        sa.select(node_certificates).where(node_certificates.c.serial == serial)
    ).first()
    if known is None or known.revoked_at is not None:
        raise Refused("revoked", "this certificate is revoked or unknown; enroll the node again")
    node_id = known.node_id
    cert = fleet.sign(new_key, node_id, now=now)
    record_certificate(conn, node_id, cert, "renewed", now)
    log.info("node %s renewed its certificate (%s -> %x)", node_id, serial, cert.serial_number)
    return pki.cert_pem(cert)


def revoke_certificates(conn: sa.Connection, node_id: str, reason: str, now: dt.datetime) -> int:
    """Revoke every live certificate of ``node_id``; returns how many."""
    result = conn.execute(
        node_certificates.update()
        .where(node_certificates.c.node_id == node_id, node_certificates.c.revoked_at.is_(None))
        .values(revoked_at=now, revoke_reason=reason[:200])
    )
    return result.rowcount


def revoked(conn: sa.Connection) -> list[tuple[int, dt.datetime]]:
    """(serial, revoked at) of every revoked certificate, for the CRL."""
    rows = conn.execute(
        sa.select(node_certificates.c.serial, node_certificates.c.revoked_at)
        .where(node_certificates.c.revoked_at.is_not(None))
        .order_by(node_certificates.c.serial)
    )
    return [(int(serial, 16), store.as_utc(at)) for serial, at in rows]


def certificates(conn: sa.Connection, node_id: str | None = None) -> list[Any]:
    query = sa.select(node_certificates).order_by(node_certificates.c.issued_at)
    if node_id is not None:
        query = query.where(node_certificates.c.node_id == node_id)
    return list(conn.execute(query))


def record_certificate(
    conn: sa.Connection, node_id: str, cert: x509.Certificate, how: str, now: dt.datetime
) -> None:
    conn.execute(
        node_certificates.insert().values(
            serial=format(cert.serial_number, "x"), node_id=node_id,
            fingerprint=pki.fingerprint(cert), issued_at=now,
            not_after=cert.not_valid_after_utc, how=how,
        )
    )


def _place(conn: sa.Connection, node_id: str, site_id: str, counter: str) -> None:
    exists = conn.execute(sa.select(nodes.c.id).where(nodes.c.id == node_id)).first()
    if exists is None:
        conn.execute(nodes.insert().values(id=node_id, site_id=site_id, counter=counter))
    else:
        store.assign_node(conn, node_id, site_id, counter)
