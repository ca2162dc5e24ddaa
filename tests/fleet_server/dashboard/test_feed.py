"""The live feed on a real store: snapshots sent only on change, re-read at once on
a poke (from any thread) or by the poll, a site forgotten when its last screen goes."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from fleet_server.dashboard.feed import DashboardFeed
from fleet_server.schema import announcements
from tests.fleet_server.dashboard import hall


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the feed does not depend on the backend (test_workers.py runs
    several servers on PostgreSQL too)."""
    return f"sqlite:///{tmp_path / 'fleet.sqlite'}"


def call(engine, ticket: str, counter: str) -> None:
    at = hall.NOW - timedelta(seconds=1)  # the same day as the feed's clock
    with engine.begin() as conn:
        conn.execute(announcements.insert().values(
            id=f"call-{ticket}", site_id=hall.SITE, kind="queue-call", counter=counter,
            ticket=ticket, amount_vnd=None, request={"kind": "queue-call"}, token_name="q",
            created_at=at, expires_at=at, nodes=[]))


async def next_change(screen, within: int = 200):
    """The next snapshot on ``screen``, past at most ``within`` keepalives."""
    for _ in range(within):
        shown = await anext(screen)
        if shown is not None:
            return shown
    raise AssertionError(f"no change within {within} keepalives")


async def test_a_poke_brings_a_change_without_waiting_for_the_poll(seeded) -> None:
    feed = DashboardFeed(seeded, poll_s=3600, now=lambda: hall.NOW)  # no poll in this test
    screen = feed.watch(hall.SITE, keepalive_s=0.05)
    try:
        first = await next_change(screen)  # keepalives may come before the first read ends
        assert first.calls[0].ticket == hall.CALLS[-1][0]
        assert await anext(screen) is None  # nothing changed: a keepalive, not the same again

        call(seeded, "9999", "6")
        await asyncio.to_thread(feed.poke, hall.SITE)  # as a route in the thread pool does

        changed = await next_change(screen)
        assert changed.calls[0].ticket == "9999"
        assert {c.id: c.open for c in changed.counters}["6"] is True  # desk 6 is online
    finally:
        await screen.aclose()
    assert feed.watched_sites() == []


async def test_two_screens_of_a_site_get_what_the_poll_finds(seeded) -> None:
    feed = DashboardFeed(seeded, poll_s=0.05, now=lambda: hall.NOW)
    one, two = (feed.watch(hall.SITE, keepalive_s=0.05) for _ in range(2))
    try:
        assert (await next_change(one)) == (await next_change(two))
        assert feed.watched_sites() == [hall.SITE]

        call(seeded, "8888", "2")  # made elsewhere: no poke, the poll finds it

        assert (await next_change(one)).calls[0].ticket == "8888"
        assert (await next_change(two)).calls[0].ticket == "8888"
    finally:
        await one.aclose()
        assert feed.watched_sites() == [hall.SITE]  # the other screen still watches
        await two.aclose()
    assert feed.watched_sites() == []


def test_a_poke_with_no_screen_does_nothing(seeded) -> None:
    feed = DashboardFeed(seeded)
    feed.poke(hall.SITE)
    assert feed.watched_sites() == []


async def test_closing_the_feed_ends_every_watch(morning_feed) -> None:
    feed = morning_feed
    screen = feed.watch(hall.SITE, keepalive_s=0.05)
    await next_change(screen)

    await asyncio.to_thread(feed.close)  # as a stopping server does, from its own thread

    with pytest.raises(StopAsyncIteration):
        await next_change(screen)
    assert feed.watched_sites() == []
    later = feed.watch(hall.SITE, keepalive_s=0.05)
    with pytest.raises(StopAsyncIteration):
        await anext(later)


@pytest.fixture
def morning_feed(seeded) -> DashboardFeed:
    return DashboardFeed(seeded, poll_s=3600, now=lambda: hall.NOW)
