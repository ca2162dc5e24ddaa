"""Fleet-wide duties (presence sweep, alert rules) with N server workers.

Ingest scales out: MQTT 5 shared subscriptions split messages among workers,
and each stores what it gets. The sweep and the alert rules look at the whole
fleet instead, so they must not run once per worker. Two layers keep them
right:

1. **Correct even when two run at once.** Every change is a conditional
   statement that is a no-op when already done: a node goes offline only if
   it is still online and still silent (`presence_store.sweep`); an alert
   opens only if none of its kind and subject is open and closes only if open
   (`alert_store.apply`, serialised on PostgreSQL by a transaction lock). A
   worker that lost the duty in the middle of a round does no harm.
2. **Done by one worker.** A `DutyLock` is held by at most one worker and
   released by the database or the kernel when that worker dies: on
   PostgreSQL a session advisory lock on a connection kept open (server-side
   TCP keepalives set, so a vanished machine lets go within about 30 s), on
   SQLite an ``flock`` on a file beside the database (SQLite means one
   machine). Every worker runs the loop; the others try to take the lock each
   round and take over at once when the holder stops. No clocks are compared
   and no table is needed: a lease *row* would need a schema change and an
   expiry judged by clocks.

A worker whose broker link is down lets go of the duty, and the sweep waits
until the holder's link has been up for a full presence timeout
(`presence.may_sweep`): while the server hears nothing, every node would look
silent.

Limits: a worker whose duty thread hangs (process alive, session open) keeps
the duty until it is restarted; on PostgreSQL the lock needs a real session,
so the workers must not reach the database through a transaction-pooling
PgBouncer.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

import sqlalchemy as sa

from fleet_server import presence_store
from fleet_server.alert_store import AlertEvaluator
from fleet_server.presence import may_sweep
from fleet_server.settings import AlertSettings, PresenceSettings
from fleet_server.store import utc_now

log = logging.getLogger(__name__)

DUTY_LOCK_NAME = "rpfleet fleet duties"


class DutyLock:
    """Held by at most one worker at a time. `acquire` never blocks."""

    def acquire(self) -> bool:
        """Try to hold the lock (again); True while this worker holds it."""
        raise NotImplementedError

    def release(self) -> None:
        """Let go; safe to call twice."""
        raise NotImplementedError

    @staticmethod
    def for_engine(engine: sa.Engine, name: str = DUTY_LOCK_NAME) -> "DutyLock":
        if engine.dialect.name == "postgresql":
            return PostgresDutyLock(engine, name)
        database = engine.url.database
        if engine.dialect.name == "sqlite" and database and database != ":memory:":
            return FileDutyLock(f"{database}.duty-lock")
        return SoleDutyLock()


class PostgresDutyLock(DutyLock):
    """A session-level advisory lock on a connection this worker keeps open."""

    def __init__(self, engine: sa.Engine, name: str) -> None:
        self._engine = engine
        self._key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
        self._conn: sa.Connection | None = None

    def acquire(self) -> bool:
        if self._conn is not None:
            try:  # the session alive means the lock is still ours
                self._conn.execute(sa.text("SELECT 1"))
                self._conn.commit()
                return True
            except sa.exc.DBAPIError:
                log.warning("lost the connection holding the duty lock")
                self._drop()
        conn = self._engine.connect()
        try:
            for setting, value in (("tcp_keepalives_idle", 10), ("tcp_keepalives_interval", 5),
                                   ("tcp_keepalives_count", 3)):
                conn.execute(sa.text(f"SET {setting} = {value}"))
            held = conn.execute(sa.select(sa.func.pg_try_advisory_lock(self._key))).scalar()
            conn.commit()
        except Exception:
            conn.close()
            raise
        if held:
            self._conn = conn
            return True
        conn.close()
        return False

    def release(self) -> None:
        if self._conn is not None:
            try:
                self._conn.execute(sa.select(sa.func.pg_advisory_unlock(self._key)))
                self._conn.commit()
            except sa.exc.DBAPIError:
                pass  # the session is gone, and the lock with it
            self._drop()

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.invalidate()  # never hand a session holding the lock back to the pool
            conn.close()


class FileDutyLock(DutyLock):
    """An exclusive ``flock`` on a file beside the SQLite database."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._fd: int | None = None

    def acquire(self) -> bool:
        if self._fd is not None:
            return True
        fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)  # closing drops the flock


class SoleDutyLock(DutyLock):
    """For a database only this process can see (in-memory SQLite)."""

    def acquire(self) -> bool:
        return True

    def release(self) -> None:
        pass


@dataclass(frozen=True)
class PeriodicDuty:
    """More fleet-wide work for the duty holder: ``run(now)`` every ``every_s`` seconds,
    and at its first round (after a start or a takeover). It must be correct when two
    workers run it at once, as the sweep is."""

    name: str
    every_s: float
    run: Callable[[datetime], object]


@dataclass
class DutyStats:
    rounds: int = 0
    """Rounds done while holding the duty lock."""
    swept_offline: int = 0
    alert_rounds: int = 0
    alerts_opened: int = 0
    alerts_closed: int = 0
    failures: int = 0


class Duties:
    """The periodic fleet-wide work of one worker: sweep presence, evaluate alerts.

    ``link_up`` says whether this worker's broker link is connected now;
    ``clock`` gives the wall time (UTC) and ``monotonic`` the time for intervals.
    """

    def __init__(
        self,
        engine: sa.Engine,
        presence: PresenceSettings,
        alert_rules: AlertSettings,
        link_up: Callable[[], bool],
        *,
        lock: DutyLock | None = None,
        periodic: tuple[PeriodicDuty, ...] = (),
        clock: Callable[[], datetime] = utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._presence = presence
        self._link_up = link_up
        self._lock = lock or DutyLock.for_engine(engine)
        self._clock = clock
        self._monotonic = monotonic
        self._alerts = AlertEvaluator(engine, alert_rules)
        self._alert_every = alert_rules.every
        self._last_alert_round: float | None = None
        self._periodic = periodic
        self._last_periodic: dict[str, float] = {}
        self._link_up_since: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._holding = False
        self.stats = DutyStats()

    @property
    def holding(self) -> bool:
        """Whether this worker holds the duty (did the last round)."""
        return self._holding

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="duties", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Finish the round under way, then let go of the duty lock; safe to call twice."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        self._lock.release()
        self._holding = False

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.round()
            except Exception:
                self.stats.failures += 1
                log.exception("fleet duties failed this round; trying again")
            self._stop.wait(self._presence.sweep_every)

    def round(self) -> None:
        """One round: if this worker holds the duty, sweep, and evaluate alerts when due.

        A worker without a broker link lets go of the duty, so that one that
        hears the fleet takes it.
        """
        mono = self._monotonic()
        if not self._link_up():
            self._link_up_since = None
            if self._holding:
                self._lock.release()
                self._holding = False
            return
        if self._link_up_since is None:
            self._link_up_since = mono
        held_before = self._holding
        self._holding = self._lock.acquire()
        if not self._holding:
            return
        if not held_before:
            self._last_periodic.clear()  # a new holder catches up at once
        self.stats.rounds += 1
        now = self._clock()
        if may_sweep(self._link_up_since, mono, self._presence.timeout):
            with self._engine.begin() as conn:
                gone = presence_store.sweep(conn, now, timedelta(seconds=self._presence.timeout))
            if gone:
                self.stats.swept_offline += len(gone)
                log.info("silent for %gs, now offline: %s", self._presence.timeout, ", ".join(gone))
        if self._last_alert_round is None or mono - self._last_alert_round >= self._alert_every:
            self._last_alert_round = mono
            applied = self._alerts.run(now)
            self.stats.alert_rounds += 1
            self.stats.alerts_opened += len(applied.opened)
            self.stats.alerts_closed += len(applied.closed)
        for duty in self._periodic:
            last = self._last_periodic.get(duty.name)
            if last is None or mono - last >= duty.every_s:
                self._last_periodic[duty.name] = mono
                try:
                    duty.run(now)
                except Exception:  # noqa: BLE001 - one duty's failure must not stop the others
                    self.stats.failures += 1
                    log.exception("fleet duty %r failed; trying again in %gs", duty.name, duty.every_s)
