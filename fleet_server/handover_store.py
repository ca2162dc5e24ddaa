"""Handover records: stored once per ``handover_id`` as nodes send them, and read back
per site with what the site's nodes are made of and how they were enrolled.

Reading gathers rows only; `provisioning.commands.handover` turns them into text.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server.schema import enrollment_codes, handovers, node_certificates, nodes, peripherals, sites
from fleet_server.store import as_utc
from rpfleet.protocol.messages import Handover


def insert(conn: sa.Connection, handover: Handover, received_at: datetime) -> bool:
    """Store ``handover`` unless its ``handover_id`` is already stored; True when it was new.

    The record keeps the site the node is at when it arrives (None for a node
    not yet placed).
    """
    site_id = conn.execute(
        sa.select(nodes.c.site_id).where(nodes.c.id == handover.node)
    ).scalar_one_or_none()
    dialect = {"sqlite": sqlite, "postgresql": postgresql}[conn.dialect.name]
    stmt = dialect.insert(handovers).values(
        handover_id=handover.handover_id,
        node_id=handover.node,
        site_id=site_id,
        technician=handover.technician,
        # SQLite would drop the offset: store UTC, as the events are.
        started_at=handover.started_at.astimezone(timezone.utc),
        finished_at=handover.finished_at.astimezone(timezone.utc),
        received_at=received_at,
        passed=handover.passed,
        results=[r.model_dump(mode="json", exclude_none=True) for r in handover.results],
    )
    result = conn.execution_options(preserve_rowcount=True).execute(
        stmt.on_conflict_do_nothing(index_elements=["handover_id"])
    )
    return result.rowcount == 1


# ---- reading --------------------------------------------------------------


@dataclass(frozen=True)
class PeripheralState:
    """A peripheral as the node's latest health reported it."""

    id: str
    kind: str
    state: str
    detail: str | None
    since: datetime


@dataclass(frozen=True)
class HandoverRow:
    handover_id: str
    technician: str | None
    started_at: datetime
    finished_at: datetime
    received_at: datetime
    passed: bool
    results: list[dict[str, Any]]
    """As sent: ``peripheral``, ``kind``, ``passed``, ``seen`` and maybe ``note``."""


@dataclass(frozen=True)
class Enrollment:
    """The newest enrollment code made for the node, and its newest certificate."""

    code_by: str | None = None
    code_made_at: datetime | None = None
    code_used_at: datetime | None = None
    code_used_from: str | None = None
    certificate_issued_at: datetime | None = None
    certificate_how: str | None = None
    certificate_revoked_at: datetime | None = None


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    counter: str | None
    state: str | None
    """Presence as the server shows it; None for a node the server has never heard from."""
    last_seen: datetime | None
    peripherals: list[PeripheralState] = field(default_factory=list)
    handover: HandoverRow | None = None
    """The newest handover by when it finished."""
    handovers: int = 0
    enrollment: Enrollment = Enrollment()


@dataclass(frozen=True)
class SiteRecord:
    site_id: str
    name: str
    kind: str
    address: str | None
    nodes: list[NodeRecord]


def site_record(conn: sa.Connection, site_id: str) -> SiteRecord | None:
    """What the site is made of: its nodes (placed at the site, or with an enrollment code
    for it), each with its peripherals, newest handover and enrollment. None: no such site."""
    site = conn.execute(sa.select(sites).where(sites.c.id == site_id)).first()
    if site is None:
        return None
    placed = {
        row.id: row
        for row in conn.execute(sa.select(nodes).where(nodes.c.site_id == site_id))
    }
    codes = _newest_by_node(
        conn.execute(
            sa.select(enrollment_codes)
            .where(enrollment_codes.c.site_id == site_id)
            .order_by(enrollment_codes.c.created_at, enrollment_codes.c.id)
        )
    )
    ids = sorted(set(placed) | set(codes))
    # A node placed here may have enrolled with a code of another site (it moved).
    codes.update(_newest_by_node(conn.execute(
        sa.select(enrollment_codes)
        .where(enrollment_codes.c.node_id.in_([i for i in ids if i not in codes]))
        .order_by(enrollment_codes.c.created_at, enrollment_codes.c.id)
    )))
    certificates = _newest_by_node(conn.execute(
        sa.select(node_certificates)
        .where(node_certificates.c.node_id.in_(ids))
        .order_by(node_certificates.c.issued_at, node_certificates.c.serial)
    ))
    latest: dict[str, sa.Row] = {}
    counted: dict[str, int] = {}
    for row in conn.execute(
        sa.select(handovers)
        .where(handovers.c.node_id.in_(ids))
        .order_by(handovers.c.finished_at, handovers.c.id)
    ):
        latest[row.node_id] = row
        counted[row.node_id] = counted.get(row.node_id, 0) + 1
    states: dict[str, list[PeripheralState]] = {}
    for row in conn.execute(
        sa.select(peripherals).where(peripherals.c.node_id.in_(ids)).order_by(peripherals.c.id)
    ):
        states.setdefault(row.node_id, []).append(
            PeripheralState(row.id, row.kind, row.state, row.detail, as_utc(row.updated_at))
        )

    records = []
    for node_id in sorted(ids, key=lambda i: (_counter(placed, codes, i) or "", i)):
        node = placed.get(node_id)
        code, cert, last = codes.get(node_id), certificates.get(node_id), latest.get(node_id)
        records.append(NodeRecord(
            node_id=node_id,
            counter=_counter(placed, codes, node_id),
            state=node.state if node is not None else None,
            last_seen=as_utc(node.last_seen) if node is not None else None,
            peripherals=states.get(node_id, []),
            handover=None if last is None else HandoverRow(
                handover_id=last.handover_id,
                technician=last.technician,
                started_at=as_utc(last.started_at),
                finished_at=as_utc(last.finished_at),
                received_at=as_utc(last.received_at),
                passed=bool(last.passed),
                results=list(last.results),
            ),
            handovers=counted.get(node_id, 0),
            enrollment=Enrollment(
                code_by=code.created_by if code is not None else None,
                code_made_at=as_utc(code.created_at) if code is not None else None,
                code_used_at=as_utc(code.used_at) if code is not None else None,
                code_used_from=code.used_from if code is not None else None,
                certificate_issued_at=as_utc(cert.issued_at) if cert is not None else None,
                certificate_how=cert.how if cert is not None else None,
                certificate_revoked_at=as_utc(cert.revoked_at) if cert is not None else None,
            ),
        ))
    return SiteRecord(site.id, site.name, site.kind, site.address, records)


def _newest_by_node(rows: Any) -> dict[str, sa.Row]:
    """Rows ordered oldest first -> the newest row per ``node_id``."""
    return {row.node_id: row for row in rows}


def _counter(placed: dict[str, sa.Row], codes: dict[str, sa.Row], node_id: str) -> str | None:
    if node_id in placed and placed[node_id].counter is not None:
        return placed[node_id].counter
    code = codes.get(node_id)
    return code.counter if code is not None else None
