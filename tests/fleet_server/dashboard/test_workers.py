"""Several server processes on one store (SQLite, then PostgreSQL): a screen
watching one sees a call made through another, by the feed's poll."""

from __future__ import annotations

from contextlib import closing

import httpx

from fleet_server.api import tokens
from fleet_server.store import connect
from tests.fleet_server.dashboard import hall
from tests.fleet_server.dashboard.conftest import make_token
from tests.fleet_server.dashboard.streams import bearer, read_stream, serve, until_called

PAGE = f"/sites/{hall.SITE}/dashboard"


def test_a_call_made_through_another_server_process_shows_too(today) -> None:
    # Two HTTP servers, each with its own engine, on one store: what two worker
    # processes are. The screen watches one; the queue system calls through the other.
    tv_token = make_token(today, "tv-hk", tokens.DASHBOARD, hall.SITE)
    queue_token = make_token(today, "queue-hk", tokens.QUEUE, hall.SITE)
    other_engine = connect(today.url.render_as_string(hide_password=False))
    watched, called = serve(today), serve(other_engine)
    try:
        with closing(read_stream(f"{watched.url}{PAGE}/events", tv_token)) as stream:
            assert next(stream)[0] == "hello" and next(stream)[0] == "dashboard"
            answer = httpx.post(f"{called.url}/api/v1/sites/{hall.SITE}/calls",
                                json={"ticket": "5151", "counter": "3"},
                                headers=bearer(queue_token))
            assert answer.status_code == 202, answer.text

            assert until_called(stream, "5151")["calls"][0]["counter"] == "3"
    finally:
        watched.stop()
        called.stop()
        other_engine.dispose()
