"""Ingest of every node's ``up/`` topics.

`classify` is pure: a topic and payload become either something to store or a
rejection with a reason. `Ingest` runs the writer: it drains what paho
received, stores it in one transaction (group commit), and only after the
commit acks the events to their nodes.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable

import sqlalchemy as sa

from fleet_server import config_store, handover_store, job_store, presence_store, store
from fleet_server.presence_store import StatusSeen
from fleet_server.rollouts import store as rollout_store
from fleet_server.store import Rejection, utc_now
from rpfleet.protocol import Channel, PayloadError, TopicError, decode, parse
from rpfleet.protocol.messages import (
    Ack, CommandResult, ConfigReported, EventBatch, Handover, Health, Message, RatingTap, Status,
    UpdateProgress,
)

log = logging.getLogger(__name__)


@dataclass
class Accepted:
    node: str
    channel: Channel
    message: Message


@dataclass
class Cleared:
    """A node cleared its retained status (it is being retired)."""

    node: str


def classify(topic: str, payload: bytes) -> Accepted | Cleared | Rejection:
    """Decide what a received message is, without any I/O."""
    try:
        where = parse(topic)
    except TopicError as exc:
        return Rejection(store.UNKNOWN_NODE, topic, "bad-topic", str(exc), payload)
    if not where.channel.is_up:
        return Rejection(where.node, topic, "wrong-direction", "servers do not take down/", payload)
    if where.channel is Channel.STATUS and payload == b"":
        return Cleared(where.node)
    try:
        message = decode(where.channel, payload)
    except PayloadError as exc:
        return Rejection(where.node, topic, exc.reason, exc.detail, payload)
    claimed = getattr(message, "node", where.node)
    if claimed != where.node:
        return Rejection(
            where.node, topic, "wrong-node", f"payload says node {claimed!r}", payload
        )
    return Accepted(where.node, where.channel, message)


def event_rows(batch: EventBatch, received_at: datetime) -> list[dict[str, Any]]:
    rows = []
    for event in batch.events:
        tap = event.detail if isinstance(event.detail, RatingTap) else None
        rows.append(
            {
                "node_id": batch.node,
                "event_id": event.id,
                "seq": event.seq,
                "kind": event.detail.kind,
                "at": event.at.astimezone(timezone.utc),  # SQLite would drop the offset
                "received_at": received_at,
                "clock_synced": event.clock_synced,
                "counter": getattr(event.detail, "counter", None),
                "suspect": bool(tap.suspect) if tap else None,
                "rating": tap.rating if tap else None,
                "scale": tap.scale if tap else None,
                "detail": event.detail.model_dump(mode="json", exclude_none=True),
            }
        )
    return rows


@dataclass
class Stats:
    received: int = 0
    events_new: int = 0
    events_duplicate: int = 0
    rejected: int = 0
    commits: int = 0


@dataclass
class _Quiet:
    """Logs the first rejection per (node, reason) and then at most once a minute."""

    every_s: float = 60.0
    _last: dict[tuple[str, str], float] = field(default_factory=dict)
    _suppressed: dict[tuple[str, str], int] = field(default_factory=dict)

    def warn(self, r: Rejection) -> None:
        key = (r.node, r.reason)
        now = time.monotonic()
        if now - self._last.get(key, -self.every_s) < self.every_s:
            self._suppressed[key] = self._suppressed.get(key, 0) + 1
            return
        more = self._suppressed.pop(key, 0)
        self._last[key] = now
        log.warning(
            "refused %s from %s: %s: %s%s",
            r.topic, r.node, r.reason, r.detail[:200],
            f" ({more} more like it since the last report)" if more else "",
        )


class Ingest:
    """Group-committing writer; `submit` may be called from paho's thread."""

    def __init__(
        self,
        engine: sa.Engine,
        publish_ack: Callable[[str, Ack], None],
        *,
        max_messages: int = 2000,
        max_bytes: int = 1_000_000,
        max_wait_s: float = 0.0,
    ) -> None:
        """``max_wait_s``: how long a group waits for more messages after its
        first. 0: a group is what queued up while the previous one was being
        committed, so a lone tap is stored at once and a busy server still
        commits in large groups (a fixed 50 ms wait added up to 50 ms to every
        tap at Hanoi's pace: docs/benchmarks.md).

        ``max_bytes`` of payload (about 5,000 events) also ends a group: in a
        reconnect storm 2,000 queued batches of 100 were otherwise one
        transaction of 200,000 events, every ack waiting seconds for its end,
        close to the agents' ack timeout (docs/benchmarks.md)."""
        self._engine = engine
        self._publish_ack = publish_ack
        self._max_messages = max_messages
        self._max_bytes = max_bytes
        self._max_wait_s = max_wait_s
        self._inbox: queue.Queue[tuple[str, bytes, datetime, bool] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._quiet = _Quiet()
        self.stats = Stats()

    def submit(self, topic: str, payload: bytes, retained: bool = False) -> None:
        """Queue a received message; ``retained``: replayed by the broker on subscribe."""
        self._inbox.put((topic, payload, utc_now(), retained))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ingest", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Store what was already received, then stop the writer."""
        if self._thread is not None:
            self._inbox.put(None)
            self._thread.join()
            self._thread = None

    def _run(self) -> None:
        while True:
            first = self._inbox.get()
            if first is None:
                return
            work = [first]
            size = len(first[1])
            deadline = time.monotonic() + self._max_wait_s
            stopping = False
            while len(work) < self._max_messages and size < self._max_bytes:
                try:
                    item = self._inbox.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                work.append(item)
                size += len(item[1])
            try:
                self.handle(work)
            except Exception:
                # The transaction rolled back and nothing was acked: nodes resend.
                log.exception("ingest of %d message(s) failed; nodes will resend", len(work))
                time.sleep(1)
            if stopping:
                return

    def handle(self, work: list[tuple]) -> None:
        """Store one group of received messages in one transaction, then ack.

        Each item is ``(topic, payload, received_at[, retained])``.
        """
        rows: list[dict[str, Any]] = []
        acks: list[tuple[str, Ack]] = []
        rejections: list[Rejection] = []
        node_updates: dict[str, dict[str, Any]] = {}
        statuses: list[StatusSeen] = []  # presence: ordered by receive time, see fleet_server.presence
        heard: dict[str, datetime] = {}
        handovers: list[tuple[Handover, datetime]] = []
        results: list[tuple[CommandResult, datetime]] = []  # command outcomes (fleet_server.jobs)
        config_reports: list[tuple[ConfigReported, datetime]] = []
        update_reports: list[tuple[UpdateProgress, datetime]] = []  # fleet_server.rollouts
        for topic, payload, received_at, *retained in work:
            outcome = classify(topic, payload)
            if isinstance(outcome, Rejection):
                rejections.append(outcome)
                continue
            update = node_updates.setdefault(outcome.node, {})
            if isinstance(outcome, Cleared):
                statuses.append(StatusSeen(outcome.node, "retired", received_at))
                continue
            message = outcome.message
            if not isinstance(message, Status):
                heard[outcome.node] = max(received_at, heard.get(outcome.node, received_at))
            if isinstance(message, EventBatch):
                rows.extend(event_rows(message, received_at))
                acks.append((outcome.node, Ack(ids=[e.id for e in message.events])))
            elif isinstance(message, Status):
                statuses.append(StatusSeen(outcome.node, message.state, received_at, any(retained)))
                if message.agent_version:
                    update["agent_version"] = message.agent_version
            elif isinstance(message, Health):
                update["last_health"] = message.model_dump(mode="json", exclude_none=True)
                update["last_health_at"] = received_at
            elif isinstance(message, Handover):
                handovers.append((message, received_at))
                acks.append((outcome.node, Ack(ids=[message.handover_id])))
            elif isinstance(message, CommandResult):
                results.append((message, received_at))
                if job_store.ACKABLE.match(message.id):  # ids of other forms cannot be acked
                    acks.append((outcome.node, Ack(ids=[message.id])))
            elif isinstance(message, ConfigReported):
                config_reports.append((message, received_at))
            elif isinstance(message, UpdateProgress):
                update_reports.append((message, received_at))
            else:
                log.debug("%s from %s is not handled yet", outcome.channel, outcome.node)

        with self._engine.begin() as conn:
            new = store.insert_events(conn, rows)
            store.update_nodes(conn, {node: u for node, u in node_updates.items() if u})
            presence_store.record(conn, statuses, heard)
            for node, update in node_updates.items():
                if "last_health" in update:  # the newest health of this group
                    store.sync_peripherals(conn, node, update["last_health"].get("peripherals", []),
                                           update["last_health_at"])
            for handover, received_at in handovers:  # stored once per id; acked every time
                handover_store.insert(conn, handover, received_at)
            for unknown in job_store.record_results(conn, results):
                log.warning("a command result for %s names no job sent to it", unknown)
            config_store.record_reports(conn, config_reports)
            rollout_store.record_progress(conn, update_reports)
            if rejections:
                store.record_rejections(conn, rejections, utc_now())
                store.prune_dead_letters(conn)

        self.stats.received += len(work)
        self.stats.events_new += new
        self.stats.events_duplicate += len(rows) - new
        self.stats.rejected += len(rejections)
        self.stats.commits += 1
        for r in rejections:
            self._quiet.warn(r)
        for node, ack in acks:
            self._publish_ack(node, ack)
