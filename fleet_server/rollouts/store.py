"""The release and rollout tables (fleet_server.schema ``releases``, ``rollouts``,
``rollout_targets``, ``node_updates``): SQL only, both backends.

Every change that several server workers might make at once is conditional
(a rollout moves from wave *k* only if it is still at *k*; a publication is
claimed only if nobody published it meanwhile; a target is inserted only if
absent), so a second worker doing the same step changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from fleet_server.rollouts.gates import BASELINE, NodeFacts, OpeningHours
from fleet_server.schema import (
    events, node_updates, nodes, peripherals, releases, rollout_targets, rollouts,
)
from fleet_server.store import as_utc
from rpfleet.protocol.messages import UpdateProgress

ACTIVE = ("running", "paused", "halted")


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    return (postgresql.insert(table) if conn.dialect.name == "postgresql"
            else sqlite.insert(table))


# ---- releases -----------------------------------------------------------


@dataclass(frozen=True)
class Release:
    version: str
    architecture: str
    size: int
    sha256: str
    signature: str
    manifest: dict
    path: str
    download_key: str
    added_at: datetime
    added_by: str


def _release(row: Any) -> Release:
    return Release(row.version, row.architecture, row.size, row.sha256, row.signature,
                   row.manifest, row.path, row.download_key, as_utc(row.added_at), row.added_by)


def insert_release(conn: sa.Connection, release: Release) -> None:
    conn.execute(releases.insert().values(**release.__dict__))


def get_release(conn: sa.Connection, version: str) -> Release | None:
    row = conn.execute(sa.select(releases).where(releases.c.version == version)).first()
    return None if row is None else _release(row)


def list_releases(conn: sa.Connection) -> list[Release]:
    return [_release(r) for r in conn.execute(sa.select(releases).order_by(releases.c.added_at))]


# ---- rollouts -----------------------------------------------------------


def get_rollout(conn: sa.Connection, rollout_id: int) -> Any:
    return conn.execute(sa.select(rollouts).where(rollouts.c.id == rollout_id)).first()


def list_rollouts(conn: sa.Connection, *, limit: int = 100, offset: int = 0) -> tuple[int, list[Any]]:
    total = conn.execute(sa.select(sa.func.count()).select_from(rollouts)).scalar_one()
    rows = conn.execute(sa.select(rollouts).order_by(rollouts.c.id.desc())
                        .limit(limit).offset(offset)).all()
    return total, rows


def active_rollout(conn: sa.Connection) -> Any:
    return conn.execute(sa.select(rollouts).where(rollouts.c.state.in_(ACTIVE))
                        .order_by(rollouts.c.id.desc())).first()


def newest_completed(conn: sa.Connection) -> Any:
    """The newest rollout if it completed (nodes joining later get its version)."""
    row = conn.execute(sa.select(rollouts).order_by(rollouts.c.id.desc()).limit(1)).first()
    return row if row is not None and row.state == "completed" else None


def insert_rollout(conn: sa.Connection, **values: Any) -> int:
    return conn.execute(rollouts.insert().values(**values).returning(rollouts.c.id)).scalar_one()


def move_state(conn: sa.Connection, rollout_id: int, from_states: Iterable[str], to: str,
               now: datetime, **values: Any) -> bool:
    """Change the state if it is one of ``from_states``; False when it was not."""
    result = conn.execute(rollouts.update()
                          .where(rollouts.c.id == rollout_id, rollouts.c.state.in_(tuple(from_states)))
                          .values(state=to, updated_at=now, **values))
    return result.rowcount == 1


def move_wave(conn: sa.Connection, rollout_id: int, wave: int, now: datetime) -> bool:
    """Open wave ``wave + 1`` if the rollout is running at ``wave``; False otherwise."""
    result = conn.execute(rollouts.update()
                          .where(rollouts.c.id == rollout_id, rollouts.c.state == "running",
                                 rollouts.c.wave == wave)
                          .values(wave=wave + 1, wave_opened_at=now, updated_at=now))
    return result.rowcount == 1


def save_gates(conn: sa.Connection, rollout_id: int, gates: dict, now: datetime) -> None:
    conn.execute(rollouts.update().where(rollouts.c.id == rollout_id)
                 .values(gates=gates, updated_at=now))


# ---- targets ------------------------------------------------------------


def eligible_nodes(conn: sa.Connection, sites: list[str] | None) -> dict[str, str | None]:
    """Node id -> agent version, for every node that is not retired (at ``sites``)."""
    query = sa.select(nodes.c.id, nodes.c.agent_version).where(nodes.c.state != "retired")
    if sites is not None:
        query = query.where(nodes.c.site_id.in_(sites))
    return dict(conn.execute(query).all())


def target_ids(conn: sa.Connection, rollout_id: int) -> set[str]:
    return set(conn.execute(sa.select(rollout_targets.c.node_id)
                            .where(rollout_targets.c.rollout_id == rollout_id)).scalars())


def add_targets(conn: sa.Connection, rollout_id: int, waves: dict[str, int],
                versions: dict[str, str | None], now: datetime) -> None:
    rows = [{"rollout_id": rollout_id, "node_id": node, "wave": wave,
             "from_version": versions.get(node), "joined_at": now}
            for node, wave in waves.items()]
    for start in range(0, len(rows), 1000):
        conn.execute(_insert(conn, rollout_targets).on_conflict_do_nothing(), rows[start:start + 1000])


def _readiness(conn: sa.Connection, node_ids: list[str]) -> dict[str, float]:
    ok = sa.func.sum(sa.case((peripherals.c.state == "ok", 1), else_=0))
    rows = conn.execute(sa.select(peripherals.c.node_id, ok, sa.func.count())
                        .where(peripherals.c.node_id.in_(node_ids))
                        .group_by(peripherals.c.node_id))
    return {node: float(good or 0) / count for node, good, count in rows if count}


def _taps_since(conn: sa.Connection, since: datetime, until: datetime,
                node_ids: list[str]) -> dict[str, int]:
    rows = conn.execute(sa.select(events.c.node_id, sa.func.count())
                        .where(events.c.kind == "rating-tap", events.c.at >= since,
                               events.c.at < until, events.c.node_id.in_(node_ids))
                        .group_by(events.c.node_id))
    return dict(rows.all())


def send_wave(conn: sa.Connection, rollout: Any, up_to_wave: int, now: datetime,
              hours: OpeningHours | None = None) -> list[str]:
    """Give the rollout's version to every target of waves up to ``up_to_wave`` not sent it
    yet: note its baseline (peripherals ok, taps per open hour over the week before) and
    make the version its desired update. Returns the nodes sent it now."""
    hours = hours or OpeningHours()
    fresh = list(conn.execute(
        sa.select(rollout_targets.c.node_id)
        .where(rollout_targets.c.rollout_id == rollout.id, rollout_targets.c.wave <= up_to_wave,
               rollout_targets.c.sent_at.is_(None))).scalars())
    if not fresh:
        return []
    open_before = hours.open_hours(now - BASELINE, now)
    for start in range(0, len(fresh), 500):
        chunk = fresh[start:start + 500]
        ready = _readiness(conn, chunk)
        taps = _taps_since(conn, now - BASELINE, now, chunk)
        for node in chunk:
            conn.execute(rollout_targets.update()
                         .where(rollout_targets.c.rollout_id == rollout.id,
                                rollout_targets.c.node_id == node,
                                rollout_targets.c.sent_at.is_(None))
                         .values(sent_at=now, ready_before=ready.get(node),
                                 taps_before=taps.get(node, 0) / open_before if open_before else None))
    set_desired(conn, fresh, rollout.version, rollback=False, rollout_id=rollout.id, now=now)
    return fresh




def facts(conn: sa.Connection, rollout: Any, now: datetime) -> list[NodeFacts]:
    """What is known of every node sent the rollout's version."""
    t, n, u = rollout_targets, nodes, node_updates
    rows = conn.execute(
        sa.select(t.c.node_id, t.c.wave, t.c.sent_at, t.c.ready_before, t.c.taps_before,
                  n.c.state, n.c.last_health, n.c.last_health_at, u.c.reported_version,
                  u.c.reported_state, u.c.reported_reason, u.c.done_at)
        .select_from(t.outerjoin(n, n.c.id == t.c.node_id).outerjoin(u, u.c.node_id == t.c.node_id))
        .where(t.c.rollout_id == rollout.id, t.c.sent_at.is_not(None))
        .order_by(t.c.node_id)).all()
    ids = [r.node_id for r in rows]
    ready: dict[str, float] = {}
    for start in range(0, len(ids), 500):
        ready.update(_readiness(conn, ids[start:start + 500]))
    since = sa.case((sa.and_(u.c.reported_version == rollout.version, u.c.done_at.is_not(None)),
                     u.c.done_at), else_=t.c.sent_at)
    taps = dict(conn.execute(
        sa.select(t.c.node_id, sa.func.count(events.c.pk))
        .select_from(t.join(events, events.c.node_id == t.c.node_id)
                     .outerjoin(u, u.c.node_id == t.c.node_id))
        .where(t.c.rollout_id == rollout.id, t.c.sent_at.is_not(None),
               events.c.kind == "rating-tap", events.c.at >= since, events.c.at < now)
        .group_by(t.c.node_id)).all())
    out = []
    for r in rows:
        health = r.last_health or {}
        out.append(NodeFacts(
            node_id=r.node_id, wave=r.wave, sent_at=as_utc(r.sent_at), online=r.state == "online",
            reported_version=r.reported_version, reported_state=r.reported_state,
            reported_reason=r.reported_reason, done_at=as_utc(r.done_at),
            health_version=health.get("agent_version"), health_at=as_utc(r.last_health_at),
            ready_before=r.ready_before, ready_now=ready.get(r.node_id),
            taps_before=r.taps_before, taps_after=taps.get(r.node_id, 0),
        ))
    return out


def wave_sizes(conn: sa.Connection, rollout_id: int) -> dict[int, int]:
    return dict(conn.execute(sa.select(rollout_targets.c.wave, sa.func.count())
                             .where(rollout_targets.c.rollout_id == rollout_id)
                             .group_by(rollout_targets.c.wave)).all())


def sent_targets(conn: sa.Connection, rollout_id: int) -> list[Any]:
    return conn.execute(sa.select(rollout_targets)
                        .where(rollout_targets.c.rollout_id == rollout_id,
                               rollout_targets.c.sent_at.is_not(None))).all()


# ---- each node's desired update ------------------------------------------


def set_desired(conn: sa.Connection, node_ids: list[str], version: str | None, *, rollback: bool,
                rollout_id: int | None, now: datetime) -> None:
    """Make ``version`` (None: no update) each node's desired update, to be published.
    A node already desiring exactly this keeps its row (and its publication)."""
    for start in range(0, len(node_ids), 500):
        chunk = node_ids[start:start + 500]
        existing = {r.node_id: r for r in conn.execute(
            sa.select(node_updates.c.node_id, node_updates.c.version, node_updates.c.rollback)
            .where(node_updates.c.node_id.in_(chunk)))}
        for node in chunk:
            row = existing.get(node)
            values = {"version": version, "rollback": rollback, "rollout_id": rollout_id,
                      "issued_at": now, "published_at": None}
            if row is None:
                conn.execute(_insert(conn, node_updates).values(node_id=node, **values)
                             .on_conflict_do_nothing())
            elif (row.version, bool(row.rollback)) != (version, rollback):
                conn.execute(node_updates.update().where(node_updates.c.node_id == node)
                             .values(**values))


def record_progress(conn: sa.Connection, reports: Iterable[tuple[UpdateProgress, datetime]]) -> None:
    """Store what nodes report on ``up/update``. Reports are queued on the node and may
    come late or out of order: one older (by its ``at``) than the stored one is dropped.
    The first ``done`` for a version is kept as the time the node started running it."""
    for report, received_at in reports:
        at = report.at.astimezone(timezone.utc) if report.at is not None else received_at
        row = conn.execute(sa.select(node_updates.c.reported_version, node_updates.c.done_at,
                                     node_updates.c.reported_at)
                           .where(node_updates.c.node_id == report.node)).first()
        if row is not None and row.reported_at is not None and at < as_utc(row.reported_at):
            continue
        values: dict[str, Any] = {"reported_version": report.version,
                                  "reported_state": report.state, "reported_reason": report.reason,
                                  "reported_evidence": getattr(report, "evidence", None),
                                  "reported_at": at}
        same = row is not None and row.reported_version == report.version
        if report.state == "done":
            values["done_at"] = row.done_at if same and row.done_at else at
        elif not same:
            values["done_at"] = None
        if row is None:
            # A report with no desired update on record (installed by hand): nothing to publish.
            conn.execute(_insert(conn, node_updates).values(
                node_id=report.node, version=None, rollback=False, issued_at=received_at,
                published_at=received_at, **values).on_conflict_do_nothing())
        else:
            conn.execute(node_updates.update().where(node_updates.c.node_id == report.node)
                         .values(**values))


def due_publications(conn: sa.Connection, limit: int = 1000) -> list[Any]:
    """Desired updates to publish: changed since published, or the node came online
    since (its broker may have lost the retained message)."""
    came_back = sa.and_(nodes.c.state == "online", nodes.c.state_at > node_updates.c.published_at)
    return conn.execute(
        sa.select(node_updates.c.node_id, node_updates.c.version, node_updates.c.rollback,
                  node_updates.c.published_at, releases.c.sha256, releases.c.size,
                  releases.c.signature, releases.c.download_key)
        .select_from(node_updates.outerjoin(nodes, nodes.c.id == node_updates.c.node_id)
                     .outerjoin(releases, releases.c.version == node_updates.c.version))
        .where(sa.or_(node_updates.c.published_at.is_(None), came_back),
               sa.or_(nodes.c.state.is_(None), nodes.c.state != "retired"))
        .order_by(node_updates.c.issued_at).limit(limit)).all()


def claim_publication(conn: sa.Connection, node_id: str, published_at: datetime | None,
                      now: datetime) -> bool:
    """Take this publication; False when another worker published it meanwhile."""
    condition = (node_updates.c.published_at.is_(None) if published_at is None
                 else node_updates.c.published_at == published_at)
    result = conn.execute(node_updates.update()
                          .where(node_updates.c.node_id == node_id, condition)
                          .values(published_at=now))
    return result.rowcount == 1


def node_update(conn: sa.Connection, node_id: str) -> Any:
    return conn.execute(sa.select(node_updates).where(node_updates.c.node_id == node_id)).first()
