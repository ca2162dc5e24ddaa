"""What `rpfleet provision node list` shows: each node's certificates and its
enrollment codes, newest first."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from fleet_server.schema import enrollment_codes, node_certificates, nodes
from fleet_server.store import as_utc, utc_now


@dataclass(frozen=True)
class IdentityLine:
    node_id: str
    site_id: str | None
    counter: str | None
    what: str  # "certificate" or "code"
    state: str  # valid / revoked / expired / unused / used
    at: dt.datetime  # issued or made
    until: dt.datetime | None
    detail: str


def list_identities(conn: sa.Connection, *, site: str | None = None, now: dt.datetime | None = None
                    ) -> list[IdentityLine]:
    now = now or utc_now()
    lines: list[IdentityLine] = []
    certs = sa.select(node_certificates, nodes.c.site_id, nodes.c.counter).join(
        nodes, nodes.c.id == node_certificates.c.node_id, isouter=True
    )
    if site is not None:
        certs = certs.where(nodes.c.site_id == site)
    for row in conn.execute(certs):
        not_after = as_utc(row.not_after)
        state = "revoked" if row.revoked_at else "expired" if not_after <= now else "valid"
        detail = f"serial {row.serial[:12]}… {row.how}"
        if row.revoke_reason:
            detail += f"; {row.revoke_reason}"
        lines.append(IdentityLine(row.node_id, row.site_id, row.counter, "certificate", state,
                                  as_utc(row.issued_at), not_after, detail))
    codes = sa.select(enrollment_codes)
    if site is not None:
        codes = codes.where(enrollment_codes.c.site_id == site)
    for row in conn.execute(codes):
        expires = as_utc(row.expires_at)
        state = "used" if row.used_at else "expired" if expires <= now else "unused"
        detail = f"{row.kind}, made by {row.created_by}"
        if row.used_at:
            detail += f", used {as_utc(row.used_at):%Y-%m-%d %H:%M}Z"
        lines.append(IdentityLine(row.node_id, row.site_id, row.counter, "code", state,
                                  as_utc(row.created_at), expires, detail))
    return sorted(lines, key=lambda line: (line.node_id, -line.at.timestamp()))


def render_identities(lines: list[IdentityLine], zone: dt.tzinfo) -> str:
    if not lines:
        return "no enrollment codes or certificates yet (rpfleet provision node add ...)\n"
    head = f"{'NODE':<28} {'SITE':<20} {'CTR':<5} {'WHAT':<12} {'STATE':<8} {'SINCE':<16} {'UNTIL':<16} DETAIL"
    out = [head]
    for line in lines:
        until = f"{line.until.astimezone(zone):%Y-%m-%d %H:%M}" if line.until else "-"
        out.append(
            f"{line.node_id:<28} {line.site_id or '-':<20} {line.counter or '-':<5} {line.what:<12} "
            f"{line.state:<8} {line.at.astimezone(zone):%Y-%m-%d %H:%M} {until:<16} {line.detail}"
        )
    return "\n".join(out) + "\n"
