"""The node's local fan-out: events the agent has recorded, handed to listeners on the node.

`NodeAgent.record` publishes each event here once it is held in the outbox; the device bridge
(agent/bridge) listens for scans and passes them to the kiosk page. Publishing never waits:
each listener has a bounded queue of its own, and a listener that falls behind loses its
oldest events (and is told how many) rather than slowing down recording.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import datetime
from typing import AsyncIterator, Callable

from rpfleet.protocol.messages import EventDetail

log = logging.getLogger(__name__)

DEFAULT_BACKLOG = 100


@dataclass(frozen=True)
class LocalEvent:
    """One recorded event as a listener sees it."""

    detail: EventDetail
    at: datetime


@dataclass(frozen=True)
class Missed:
    """In a listener's stream: ``count`` events were dropped here because it fell behind."""

    count: int


class Subscription:
    """One listener: iterate it (``async for``) to get `LocalEvent` and `Missed` in order.

    ``close()`` ends the iteration; it is safe to call twice.
    """

    def __init__(self, events: LocalEvents, wants: Callable[[EventDetail], bool],
                 backlog: int) -> None:
        self._events = events
        self._wants = wants
        self._queue: asyncio.Queue[LocalEvent | Missed | None] = asyncio.Queue()
        self._backlog = backlog
        self._missed = 0
        self.closed = False

    def offer(self, event: LocalEvent) -> None:
        """Queue ``event`` if this listener wants it; drop the oldest when the queue is full."""
        if self.closed or not self._wants(event.detail):
            return
        if self._queue.qsize() >= self._backlog:
            self._queue.get_nowait()
            self._missed += 1
        self._queue.put_nowait(event)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._events.unsubscribe(self)
            self._queue.put_nowait(None)

    def __aiter__(self) -> AsyncIterator[LocalEvent | Missed]:
        return self._iterate()

    async def _iterate(self) -> AsyncIterator[LocalEvent | Missed]:
        while True:
            item = await self._queue.get()
            if item is None:
                return
            if self._missed:
                missed, self._missed = self._missed, 0
                yield Missed(missed)
            yield item


class LocalEvents:
    """Hands every published event to the current subscriptions (on the agent's loop)."""

    def __init__(self) -> None:
        self._subscriptions: list[Subscription] = []

    def subscribe(self, wants: Callable[[EventDetail], bool] = lambda detail: True, *,
                  backlog: int = DEFAULT_BACKLOG) -> Subscription:
        """A new listener for the events ``wants`` accepts, keeping at most ``backlog`` unread."""
        subscription = Subscription(self, wants, backlog)
        self._subscriptions.append(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if subscription in self._subscriptions:
            self._subscriptions.remove(subscription)

    @property
    def listeners(self) -> int:
        return len(self._subscriptions)

    def publish(self, detail: EventDetail, at: datetime) -> None:
        """Give ``detail`` to every listener; returns at once and never raises."""
        event = LocalEvent(detail, at)
        for subscription in list(self._subscriptions):
            try:
                subscription.offer(event)
            except Exception:  # noqa: BLE001 - a listener's fault never reaches record()
                log.exception("a local listener failed to take %s", detail.kind)
