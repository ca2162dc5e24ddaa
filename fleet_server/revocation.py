"""Locking a node out from the HTTP API: revoke its certificates and rewrite the CRL.

The same as `rpfleet provision node revoke` (provisioning.commands.node), with
the API token's name kept as who asked, in each certificate's revoke reason
(`rpfleet provision node list` shows it) and in the log.

The node is not retired: a node replaced under the same id (a new board
enrolled at the same counter, docs/provisioning.md) keeps its row, and a
retired node stays retired whatever it sends (fleet_server.presence), so the
replacement would be left out of announcements, jobs and config. The revoked
node simply goes offline once the broker refuses it, and its offline alert
says so.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from fleet_server import enrollment, store
from fleet_server.schema import node_certificates
from provisioning.fleet_dir import FleetDir

log = logging.getLogger(__name__)

BROKER_NOTE = (
    "CRL rewritten: the broker refuses the node's next connection once it reloads "
    "(systemctl reload mosquitto); a connection the node has open now stays open until "
    "the broker restarts (systemctl restart mosquitto)"
)
"""What the broker does with a rewritten CRL: TLS checks a certificate at the handshake only."""

_crl_writes = threading.Lock()
"""FleetDir.write_crl goes through one temp file: one writer at a time in this process."""


class RevokeError(Exception):
    """A revoke that cannot be done; ``status`` is the HTTP status that says why."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Revoked:
    node_id: str
    serials: list[str]
    at: dt.datetime
    reason: str


def fleet_dir(pki_dir: Path | None) -> FleetDir:
    """The server's PKI; RevokeError (409) when it has none to rewrite the CRL in."""
    if pki_dir is None:
        raise RevokeError("this fleet server has no PKI directory (enrollment.pki_dir is not "
                          "set), so it cannot rewrite the CRL: revoke with `rpfleet provision "
                          "node revoke NODE --pki DIR` on the machine that holds the fleet CA",
                          409)
    fleet = FleetDir(pki_dir)
    if not fleet.exists():
        raise RevokeError(f"the PKI directory {pki_dir} holds no fleet CA, so the CRL cannot "
                          "be rewritten", 409)
    return fleet


def revoke_node(engine: sa.Engine, fleet: FleetDir, node_id: str, *, by: str, reason: str,
                now: dt.datetime | None = None) -> Revoked:
    """Revoke every live certificate of ``node_id`` and rewrite the CRL, in one transaction:
    if the CRL cannot be written, nothing is revoked. RevokeError (409) when the node has
    no live certificate."""
    now = now or store.utc_now()
    kept = f"{reason} (by {by})"[:200]
    with engine.begin() as conn:
        serials = [row.serial for row in conn.execute(
            sa.select(node_certificates.c.serial)
            .where(node_certificates.c.node_id == node_id,
                   node_certificates.c.revoked_at.is_(None))
            .order_by(node_certificates.c.issued_at, node_certificates.c.serial)
        )]
        if not serials:
            earlier = len(enrollment.certificates(conn, node_id))
            raise RevokeError(
                f"node {node_id!r} has no certificate that is not revoked already"
                + (f" (all {earlier} revoked earlier)" if earlier else
                   ": it never enrolled with this server; a certificate made by hand is "
                   "revoked with the CA that made it"), 409)
        count = enrollment.revoke_certificates(conn, node_id, kept, now)
        with _crl_writes:
            fleet.write_crl(enrollment.revoked(conn))
    log.info("node %s: %d certificate(s) revoked by %s (%s); CRL rewritten", node_id, count,
             by, reason)
    return Revoked(node_id, serials, now, kept)
