"""Live dashboards: `DashboardFeed` keeps the latest snapshot of each site that a
screen watches, in this process, and tells the screens when it changes.

The store is the source of truth, so that it works with several server
processes on one PostgreSQL: each watched site is re-read every `poll_s`
(one task per site, shared by all its screens, stopped when the last one
goes), and at once when `poke` says something changed here. A call made
through this process's HTTP API pokes its site, so its screens have it within
one store read; a call made through another process shows within `poll_s`.
So do taps and presence changes, which arrive through the ingest. Screens
receive a snapshot only when it differs from the one before.

Everything but `poke` runs on the HTTP server's event loop; `poke` may be
called from any thread (routes run in the thread pool).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import AsyncIterator, Callable

import sqlalchemy as sa

from fleet_server.dashboard.snapshot import SiteDashboard, site_dashboard

log = logging.getLogger(__name__)

POLL_S = 1.0
"""How often a watched site is re-read: the most a change made elsewhere waits."""

Reader = Callable[[str], SiteDashboard | None]


@dataclass
class _Watch:
    """One watched site: its latest snapshot, numbered, and its reader task."""

    screens: int = 0
    latest: SiteDashboard | None = None
    version: int = 0
    changed: asyncio.Condition = field(default_factory=asyncio.Condition)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task | None = None


class DashboardFeed:
    """Snapshots of the watched sites of one process (see the module docstring)."""

    def __init__(self, engine: sa.Engine, *, poll_s: float = POLL_S,
                 now: Callable[[], datetime] | None = None) -> None:
        self._engine = engine
        self.poll_s = poll_s
        self.clock = now
        """Gives the moment whose local day is shown; None: the real time."""
        self._watches: dict[str, _Watch] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._closed = False

    def read(self, site_id: str) -> SiteDashboard | None:
        """The site's dashboard from the store now (blocking); None for an unknown site."""
        with self._engine.connect() as conn:
            return site_dashboard(conn, site_id, self.clock() if self.clock else None)

    def watched_sites(self) -> list[str]:
        """The sites a screen watches through this process now, sorted."""
        return sorted(self._watches)

    def poke(self, site_id: str) -> None:
        """Something changed at ``site_id``: re-read it now if a screen watches it.
        Safe from any thread; does nothing when no screen watches the site."""
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            loop.call_soon_threadsafe(self._wake, site_id)
        except RuntimeError:  # the loop closed meanwhile: no screen left to tell
            pass

    def close(self, timeout: float = 2) -> None:
        """End every screen's watch, and any later one at once; safe from any thread.

        For a server that stops: the streams end, so the HTTP server need not wait
        out its graceful-shutdown timeout for them, and the pages reconnect (to
        another worker, or to this one once restarted).
        """
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        if _running_loop() is loop:  # on the loop itself: waiting for it would block it
            loop.create_task(self._wake_all())
            return
        try:
            asyncio.run_coroutine_threadsafe(self._wake_all(), loop).result(timeout)
        except (RuntimeError, TimeoutError, concurrent.futures.TimeoutError):
            pass  # the loop is gone or stuck: nothing left to tell

    async def _wake_all(self) -> None:
        for watch in list(self._watches.values()):
            async with watch.changed:
                watch.changed.notify_all()

    def _wake(self, site_id: str) -> None:
        watch = self._watches.get(site_id)
        if watch is not None:
            watch.wake.set()

    async def watch(self, site_id: str, *, keepalive_s: float
                    ) -> AsyncIterator[SiteDashboard | None]:
        """The site's snapshot once read, then each changed one; None after each
        ``keepalive_s`` without a change (so that the stream can say it is alive).
        Runs until the caller stops or the feed is closed. A site that is not (or
        no longer) registered gives only Nones."""
        self._loop = asyncio.get_running_loop()
        watch = self._watches.get(site_id)
        if watch is None:
            watch = self._watches[site_id] = _Watch()
            watch.task = asyncio.create_task(self._follow(site_id, watch),
                                             name=f"dashboard {site_id}")
        watch.screens += 1
        seen = 0
        try:
            while not self._closed:
                latest = None
                async with watch.changed:  # not held across the yield: the reader needs it
                    try:
                        await asyncio.wait_for(watch.changed.wait_for(
                            lambda: watch.version != seen or self._closed), keepalive_s)
                    except TimeoutError:
                        pass
                    else:
                        seen, latest = watch.version, watch.latest
                if not self._closed:
                    yield latest
        finally:
            watch.screens -= 1
            if watch.screens == 0 and self._watches.get(site_id) is watch:
                del self._watches[site_id]
                if watch.task is not None:
                    watch.task.cancel()

    async def _follow(self, site_id: str, watch: _Watch) -> None:
        """Re-read the site on every poke and every ``poll_s``; publish what changed."""
        while True:
            watch.wake.clear()  # before reading: a poke during the read reads again
            try:
                found = await asyncio.to_thread(self.read, site_id)
            except sa.exc.SQLAlchemyError as exc:
                # The screens keep their last state; the next round tries again.
                log.warning("dashboard of %s not read: %s", site_id, exc)
            except Exception:  # a bug must not end the site's updates for the day
                log.exception("dashboard of %s not read", site_id)
            else:
                if found is not None and found != watch.latest:
                    async with watch.changed:
                        watch.latest = found
                        watch.version += 1
                        watch.changed.notify_all()
            try:
                await asyncio.wait_for(watch.wake.wait(), self.poll_s)
            except TimeoutError:
                pass


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
