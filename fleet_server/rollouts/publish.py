"""Each node's desired update on its retained ``down/update``, and the rollout duty's
round (`step`), done by one server worker of many (fleet_server.duty).

A node's desired update is one row of ``node_updates``; it is published
retained, so a node that is offline now gets the newest one when it returns,
never an intermediate (a retained message holds only the last). It is
published again when the node comes online after the last publication, in
case the broker lost it (restarted without persistence); the node takes a
repeated desired update as a no-op. A cleared desired update (an abort before
the node got the version) is an empty retained payload, which removes the
retained message.

The artifact's URL is ``{base_url}/releases/{version}/{download_key}/artifact``:
served by the enrollment listener (fleet_server.api.rollout_routes says why).
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, Callable

import sqlalchemy as sa

from fleet_server.rollouts import store
from fleet_server.rollouts.gates import OpeningHours
from fleet_server.rollouts.progress import advance
from fleet_server.store import utc_now
from rpfleet.protocol import Channel
from rpfleet.protocol.messages import UpdateDesired

log = logging.getLogger(__name__)

class NoUpdate:
    """An empty retained payload: clears the node's desired update."""

    def to_json(self) -> bytes:
        return b""


def artifact_path(version: str, download_key: str) -> str:
    return f"/releases/{version}/{download_key}/artifact"


def desired_message(row: Any, base_url: str) -> UpdateDesired | NoUpdate:
    if row.version is None or row.sha256 is None:
        return NoUpdate()
    return UpdateDesired(version=row.version,
                         url=base_url.rstrip("/") + artifact_path(row.version, row.download_key),
                         sha256=row.sha256, size=row.size, signature=row.signature,
                         rollback=bool(row.rollback))


def publish_due(engine: sa.Engine, publish: Callable[..., Any], base_url: str,
                now: datetime | None = None) -> list[str]:
    """Publish every desired update due (see the module's docstring); the nodes published.
    ``publish(node, channel, message, retain=True)`` as fleet_server.link.ServerLink's."""
    now = now or utc_now()
    sent = []
    with engine.begin() as conn:
        for row in store.due_publications(conn):
            if not store.claim_publication(conn, row.node_id, row.published_at, now):
                continue  # another worker published it
            publish(row.node_id, Channel.UPDATE_DESIRED, desired_message(row, base_url), retain=True)
            sent.append(row.node_id)
    if sent:
        log.info("published %d desired update(s)", len(sent))
    return sent


def step(engine: sa.Engine, publish: Callable[..., Any], base_url: str, now: datetime, *,
         hours: OpeningHours = OpeningHours()) -> list[str]:
    """One round of the rollout duty (a fleet_server.duty.PeriodicDuty, run by the worker
    holding the fleet duties): `advance` every rollout, then publish the desired updates due.
    Safe when two workers run it at once: each change and each publication is claimed."""
    advance(engine, now, hours=hours)
    return publish_due(engine, publish, base_url, now)


__all__ = ["step", "publish_due", "desired_message", "artifact_path", "NoUpdate"]
