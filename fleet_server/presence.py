"""Presence: whether a node is online, decided from what the server receives.

Pure rules over one node's `Presence` (the ``state``, ``state_at`` and
``last_seen`` columns of ``nodes``); `fleet_server.presence_store` applies the
same rules as conditional SQL, and a test checks that both agree.

Three signals
-------------
- **Retained status with a Last Will.** The node publishes ``online`` on every
  connect; the broker publishes its Will ``offline`` when the connection dies
  without a DISCONNECT; a clean shutdown publishes ``offline`` itself.
- **Anything else the node sends** (health, events, ...) proves it is there:
  it sets ``last_seen`` and brings an ``unknown`` or ``offline`` node back
  online. So a node is never left offline while it talks, whatever went wrong
  with its statuses.
- **A health timeout** (`is_silent`, run by the presence sweep): an online
  node not heard from for ``timeout`` is marked offline.

Timing (agent defaults: keepalive K = 30 s, health every H = 30 s)
------------------------------------------------------------------
A node whose cable is pulled leaves its socket open: the broker notices only
when nothing has arrived for 1.5 K (Mosquitto counts in whole seconds, so 45
to 46 s), and the node's last packet is a health or a PINGREQ, which the
server never sees. So the Will comes 0.5 K to 1.5 K after the cut (15 to 46 s,
p95 about 44.5 s) but up to 2.5 K after the last message the server saw. A
crash, kill -9 or a reset connection gets the Will at once.

The health timeout T is measured from the last message the server saw, so a
vanished node shows offline T - a + s after the cut, where a (uniform 0..H)
is the age of its last message at the cut and s (uniform 0..2 s, the sweep
period) the sweep's delay: p95 = T - 0.05 H + 1 s = T - 0.5 s. Two limits:

- T must exceed the longest gap between two messages of a node that talks,
  H plus delivery jitter (TCP retransmits on a poor link, a busy server), or
  talking nodes flap offline;
- T = 45 s (1.5 H, MQTT's own keepalive rule) gives p95 = 44.5 s: the 45 s
  target met with nothing to spare (measured over 24 cut nodes: p95 43.9 and
  44.5 s, max 45.0 and 45.7 s; docs/benchmarks.md, "presence"). The sweep,
  not the Will, shows nearly every cut node offline first: the Will lags by
  the PINGREQs the server cannot see.

T = 40 s (H + 10 s) keeps a third of an interval for jitter and brings the
p95 to about 39.5 s (measured: 39.1 s, max 40.3 s). The timeout also catches what the Will cannot see: a
broker that restarted and lost its sessions (no Will, yet the retained
``online`` stays), a Will the server never received, an agent that hangs
while paho's thread still answers pings, a node without a Will. Nodes must
keep H <= 30 s (the agent caps its keepalive at 30 s; keep health there too).
Tests run with K = H = 5 s and T = 7.5 s (scaled down), and once with the
production values.

Ordering (several server workers, redeliveries, replays)
--------------------------------------------------------
Statuses are ordered by the time the server *received* them (``state_at``),
never by the node's clock: node clocks can be wrong (``clock_synced``), and a
Will's payload is frozen at connect time, so no ``at`` in it could say when
the node vanished. A status applies only if it was received no earlier than
the one the row holds, so a Will that one worker commits after another worker
stored the node's newer ``online`` is ignored. A Will received *after* the new
``online`` (brokers that publish it on session takeover, or a slow worker) is
still corrected by the node's next message, which is newer (the agent sends
health at every connect). With these rules the outcome does not depend on the
order in which workers commit (`tests/fleet_server/test_presence.py` checks
every order).

Retained statuses replayed when the server (re)subscribes are not news: they
do not set ``last_seen``, and a replayed ``online`` only fills in a node the
server knows nothing about (otherwise a node that vanished while the broker
kept its ``online`` would come back online on every server restart). A
replayed ``offline`` is the broker's latest word and applies like a live one.

``state_at`` is when the last status was received; for a node the sweep
found silent it is when the node was last heard. A node brought back by
talking keeps it, so that the Will of its current connection, received
later, still applies.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

UNKNOWN = "unknown"
ONLINE = "online"
OFFLINE = "offline"
RETIRED = "retired"

REVIVABLE = (UNKNOWN, OFFLINE)
"""States that a message from the node turns into online (a retired node stays retired)."""


@dataclass(frozen=True)
class Presence:
    """One node's presence as stored: received times on the server's clock."""

    state: str = UNKNOWN
    state_at: datetime | None = None
    last_seen: datetime | None = None

    @property
    def reference(self) -> datetime | None:
        """The newest evidence that the node was there (a status or any message)."""
        known = [t for t in (self.state_at, self.last_seen) if t is not None]
        return max(known) if known else None

    def heard(self, at: datetime) -> "Presence":
        """A message other than a status, received at ``at``: the node is there."""
        last_seen = at if self.last_seen is None or self.last_seen < at else self.last_seen
        revived = self.state in REVIVABLE and (self.state_at is None or at > self.state_at)
        return replace(self, state=ONLINE if revived else self.state, last_seen=last_seen)

    def status(self, state: str, at: datetime, *, retained: bool = False) -> "Presence":
        """A status (``online``, ``offline`` or ``retired``) received at ``at``.

        ``retained``: replayed by the broker on subscribe, not published just now.
        """
        after = self.heard(at) if state == ONLINE and not retained else self
        if retained and state == ONLINE:
            accepted = after.state_at is None
        else:
            accepted = after.state_at is None or after.state_at <= at
        if not accepted:
            return after
        talked_since = after.last_seen is not None and after.last_seen > at
        shown = ONLINE if state == OFFLINE and talked_since else state
        return replace(after, state=shown, state_at=at)

    def silent(self, now: datetime, timeout: timedelta) -> "Presence":
        """The sweep at ``now``: an online node not heard from for ``timeout`` goes offline."""
        if not is_silent(self, now, timeout):
            return self
        return replace(self, state=OFFLINE, state_at=self.reference)


def is_silent(presence: Presence, now: datetime, timeout: timedelta) -> bool:
    """True when the node shows online but nothing came from it for longer than ``timeout``."""
    reference = presence.reference
    return presence.state == ONLINE and reference is not None and reference < now - timeout


def may_sweep(link_up_since: float | None, now: float, timeout: float) -> bool:
    """Whether silence means anything: only after the broker link has been up for ``timeout``.

    While the server itself hears nothing (link down, just reconnected), every
    node would look silent. Times are monotonic seconds.
    """
    return link_up_since is not None and now - link_up_since >= timeout
