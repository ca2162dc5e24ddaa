"""The soundbox's announcement queue: what to say next, what to merge, what to drop. Pure code.

The rules (README.md, "Playback"):

- **One at a time, never cut.** `take` hands out the next announcement only when nothing is
  playing; the caller says it in full and then calls `finished`. Nothing that arrives
  meanwhile interrupts it, however urgent.
- **Queue calls in order.** Within a class, first come first said.
- **A payment is not starved by a run of calls.** Three classes: *service* (test, identify:
  a technician is standing there) goes first; *desk* (payment, thank-you: said to the citizen
  at the desk) and *hall* (queue calls, free text) take turns while both wait. So a payment
  confirmation waits for the announcement being said and at most one call more, and a run of
  payments cannot hold up the calls either.
- **A repeat is merged.** The same announcement (same kind and words: a call of the same
  ticket to the same counter) offered while it is waiting, being said, or within
  ``merge_window_s`` after it was said in full, is merged into that one and not said again.
  Payments are never merged: two citizens may pay the same fee in the same minute. A call
  repeated after the window (the citizen did not come) is said again.
- **Expired is dropped, never said.** An announcement is dropped, and reported, when it
  arrives after its ``expires_at`` or is still waiting then. One that started in time is
  said to its end.
- **Redelivery is no repeat.** An id seen before (MQTT QoS 1 may deliver a message twice) is
  a `Duplicate`: ignored and not reported again.
- **Bounded.** Beyond ``max_pending`` waiting announcements a new one is `Refused`.

No I/O and no clock of its own: ``clock`` returns the current time (timezone-aware).
"""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, Callable, Generic, Protocol, TypeVar

SERVICE, DESK, HALL = "service", "desk", "hall"
CLASS_BY_KIND = {
    "test": SERVICE,
    "identify": SERVICE,
    "payment": DESK,
    "thank-you": DESK,
    "queue-call": HALL,
    "text": HALL,
}
NEVER_MERGED = frozenset({"payment"})
REMEMBERED_IDS = 1000
"""How many announcement ids the queue remembers to recognise a redelivery."""


class AnnounceLike(Protocol):
    """What the queue reads of an announcement (`rpfleet.protocol.messages.Announce`)."""

    id: str
    kind: str
    ticket: str | None
    counter: str | None
    amount_vnd: int | None
    text: str | None
    expires_at: datetime


A = TypeVar("A", bound=AnnounceLike)


@dataclass(frozen=True)
class Entry(Generic[A]):
    """An announcement in the queue: when it came, and the repeats merged into it."""

    announce: A
    arrived_at: datetime
    expires_at: datetime
    seq: int = 0
    """Arrival order (clocks can tie)."""
    merged: tuple[str, ...] = ()

    @property
    def id(self) -> str:
        return self.announce.id


@dataclass(frozen=True)
class Queued:
    id: str


@dataclass(frozen=True)
class Merged:
    """``id`` is a repeat of ``into``: not said again. ``ago_s``: how long ago ``into`` was
    said in full (None: it is waiting or being said now)."""

    id: str
    into: str
    ago_s: float | None = None

    @property
    def reason(self) -> str:
        if self.ago_s is None:
            return f"a repeat of {self.into}, which is waiting or being said"
        return f"a repeat of {self.into}, said {self.ago_s:.1f}s ago"


@dataclass(frozen=True)
class Expired:
    """``id`` was dropped unsaid: it expired ``late_s`` seconds before it could be said
    (``on_arrival``: it had expired before it reached the soundbox). ``announce`` is it."""

    id: str
    late_s: float
    on_arrival: bool
    announce: Any = field(default=None, compare=False, repr=False)

    @property
    def reason(self) -> str:
        when = "arrived" if self.on_arrival else "was still waiting"
        return f"{when} {self.late_s:.1f}s after it expired"


@dataclass(frozen=True)
class Duplicate:
    """``id`` was offered before (a redelivery): ignored, and not reported again."""

    id: str


@dataclass(frozen=True)
class Refused:
    id: str
    reason: str


Offered = Queued | Merged | Expired | Duplicate | Refused


@dataclass(frozen=True)
class Taken(Generic[A]):
    """What `take` gives: the entry to say now (None: nothing), and what expired meanwhile."""

    entry: Entry[A] | None
    expired: tuple[Expired, ...] = ()


def words_key(announce: AnnounceLike) -> tuple:
    """What makes two announcements the same to a listener: kind and what is said."""
    return (announce.kind, announce.ticket, announce.counter, announce.amount_vnd, announce.text)


class AnnouncementQueue(Generic[A]):
    """The queue of one soundbox (rules in the module docstring)."""

    def __init__(
        self,
        clock: Callable[[], datetime],
        *,
        merge_window_s: float = 10.0,
        max_pending: int = 50,
    ) -> None:
        self._clock = clock
        self._merge_window_s = merge_window_s
        self._max_pending = max_pending
        self._waiting: dict[str, deque[Entry[A]]] = {SERVICE: deque(), DESK: deque(), HALL: deque()}
        self._playing: Entry[A] | None = None
        self._last_turn: str | None = None
        self._said: dict[tuple, tuple[str, datetime]] = {}
        """words_key -> (id, when it was said in full), for merging repeats."""
        self._seen: OrderedDict[str, None] = OrderedDict()
        self._arrivals = 0

    # -- what the driver calls ---------------------------------------------------------------

    def offer(self, announce: A) -> Offered:
        """Take in ``announce``; the outcome says whether it waits to be said, and if not why."""
        now = self._clock()
        if announce.id in self._seen:
            return Duplicate(announce.id)
        self._remember(announce.id)
        if announce.expires_at <= now:
            return Expired(announce.id, (now - announce.expires_at).total_seconds(), True, announce)
        if announce.kind not in NEVER_MERGED:
            merged = self._merge(announce, now)
            if merged is not None:
                return merged
        if self.pending_count() >= self._max_pending:
            return Refused(announce.id, f"{self._max_pending} announcements are waiting already")
        self._arrivals += 1
        self._waiting[CLASS_BY_KIND.get(announce.kind, HALL)].append(
            Entry(announce, arrived_at=now, expires_at=announce.expires_at, seq=self._arrivals)
        )
        return Queued(announce.id)

    def take(self) -> Taken[A]:
        """The announcement to say now, or None while one is playing or none waits.

        Whatever expired while waiting is dropped on the way and returned in ``expired``.
        The entry returned is `playing` until `finished` is called.
        """
        expired = self.drop_expired()
        if self._playing is not None:
            return Taken(None, expired)
        turn = self._next_class()
        if turn is None:
            return Taken(None, expired)
        self._playing = self._waiting[turn].popleft()
        if turn != SERVICE:
            self._last_turn = turn
        return Taken(self._playing, expired)

    def finished(self, said: bool = True) -> Entry[A] | None:
        """The playing announcement is over; ``said``: it was said in full (repeats within
        the merge window are merged into it). Returns it (None if nothing was playing)."""
        entry, self._playing = self._playing, None
        if entry is not None and said:
            self._said[words_key(entry.announce)] = (entry.id, self._clock())
        return entry

    def drop_expired(self) -> tuple[Expired, ...]:
        """Drop every waiting announcement past its expiry; they are returned, oldest first."""
        now = self._clock()
        dropped = []
        for queue in self._waiting.values():
            kept = [entry for entry in queue if entry.expires_at > now]
            dropped += [entry for entry in queue if entry.expires_at <= now]
            queue.clear()
            queue.extend(kept)
        dropped.sort(key=lambda entry: entry.seq)
        return tuple(Expired(e.id, (now - e.expires_at).total_seconds(), False, e.announce)
                     for e in dropped)

    def drain(self) -> list[Entry[A]]:
        """Remove and return every waiting announcement in the order `take` would give them
        (the driver reports them when the soundbox cannot say anything)."""
        order = []
        while (turn := self._next_class()) is not None:
            order.append(self._waiting[turn].popleft())
            if turn != SERVICE:
                self._last_turn = turn
        return order

    # -- what is there ---------------------------------------------------------------------

    @property
    def playing(self) -> Entry[A] | None:
        return self._playing

    def pending_count(self) -> int:
        return sum(len(queue) for queue in self._waiting.values())

    def next_expiry(self) -> datetime | None:
        """When the first waiting announcement expires (None: nothing waits)."""
        return min((e.expires_at for q in self._waiting.values() for e in q), default=None)

    # -- the rules ---------------------------------------------------------------------------

    def _next_class(self) -> str | None:
        if self._waiting[SERVICE]:
            return SERVICE
        desk, hall = self._waiting[DESK], self._waiting[HALL]
        if desk and hall:
            if self._last_turn is None:  # nothing said yet: the one that came first
                return DESK if desk[0].seq < hall[0].seq else HALL
            return HALL if self._last_turn == DESK else DESK
        if desk:
            return DESK
        if hall:
            return HALL
        return None

    def _merge(self, announce: A, now: datetime) -> Merged | None:
        key = words_key(announce)
        if self._playing is not None and words_key(self._playing.announce) == key:
            return Merged(announce.id, self._playing.id)
        for queue in self._waiting.values():
            for index, entry in enumerate(queue):
                if words_key(entry.announce) == key:
                    # It waits in the first one's place, until the later of the two expiries.
                    queue[index] = replace(
                        entry,
                        expires_at=max(entry.expires_at, announce.expires_at),
                        merged=(*entry.merged, announce.id),
                    )
                    return Merged(announce.id, entry.id)
        said = self._said.get(key)
        if said is not None:
            ago = (now - said[1]).total_seconds()
            if 0 <= ago < self._merge_window_s:
                return Merged(announce.id, said[0], ago)
            del self._said[key]
        return None

    def _remember(self, announce_id: str) -> None:
        self._seen[announce_id] = None
        while len(self._seen) > REMEMBERED_IDS:
            self._seen.popitem(last=False)
        # Forget what was said long ago, so that the table stays small.
        now = self._clock()
        stale = [k for k, (_, at) in self._said.items()
                 if (now - at).total_seconds() >= self._merge_window_s]
        for key in stale:
            del self._said[key]
