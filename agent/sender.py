"""Drains the outbox to the server: oldest first, one batch in flight at a time.

A batch is forgotten only when the server's ack names its events; it is sent
again after a reconnect or when no ack came within the timeout. Sending twice
is safe because the server stores each event id once. While a backlog drains
after an outage, every batch keeps a few places for events recorded since the
link came back, so a citizen's tap is not stuck behind hours of backlog.
"""

from __future__ import annotations

import time
from typing import Callable

from agent.outbox import Outbox
from rpfleet.protocol.messages import Ack, EventBatch


class Sender:
    def __init__(
        self,
        node_id: str,
        outbox: Outbox,
        publish: Callable[[EventBatch], bool],
        *,
        batch_size: int,
        live_slots: int,
        ack_timeout_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._node_id = node_id
        self._outbox = outbox
        self._publish = publish
        self._batch_size = batch_size
        self._live_slots = live_slots
        self._live_from = outbox.next_seq
        self._ack_timeout_s = ack_timeout_s
        self._clock = clock
        self._in_flight: set[str] = set()
        self._sent_at = 0.0
        self.batches_sent = 0

    @property
    def in_flight(self) -> frozenset[str]:
        return frozenset(self._in_flight)

    def pump(self) -> None:
        """Send the next batch unless one is still waiting for its ack."""
        if self._in_flight and self._clock() - self._sent_at < self._ack_timeout_s:
            return
        self._in_flight.clear()
        events = self._outbox.batch(
            self._batch_size, live_from=self._live_from, live_slots=self._live_slots
        )
        if events and self._publish(EventBatch(node=self._node_id, events=events)):
            self._in_flight = {event.id for event in events}
            self._sent_at = self._clock()
            self.batches_sent += 1

    def acked(self, ack: Ack) -> None:
        self._outbox.ack(ack.ids)
        self._in_flight.difference_update(ack.ids)
        if not self._in_flight:
            self.pump()

    def reconnected(self) -> None:
        """Resend what was in flight; what is recorded from now on is live."""
        self._in_flight.clear()
        self._live_from = self._outbox.next_seq
        self.pump()
