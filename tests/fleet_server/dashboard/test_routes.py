"""The dashboard's routes on a real uvicorn, spoken to over HTTP: the public page,
the per-site dashboard token that reads that site's dashboard and nothing
else, and the event stream with calls made through the real announcement route."""

from __future__ import annotations

import re
from contextlib import closing
from typing import Iterator

import httpx
import pytest

from fleet_server.api import tokens
from fleet_server.api.serving import HttpService
from fleet_server.cli import main
from tests.conftest import eventually
from tests.fleet_server.api.test_endpoints import ROUTES
from tests.fleet_server.dashboard import hall
from tests.fleet_server.dashboard.conftest import make_token
from tests.fleet_server.dashboard.streams import bearer, read_stream, serve, until_called

PAGE = f"/sites/{hall.SITE}/dashboard"
API = f"/api/v1/sites/{hall.SITE}/dashboard"


@pytest.fixture
def db_url(tmp_path) -> str:
    """SQLite only: the routes do not depend on the backend, which test_snapshot.py and
    test_workers.py cover on both."""
    return f"sqlite:///{tmp_path / 'fleet.sqlite'}"


@pytest.fixture
def server(today) -> Iterator[HttpService]:
    service = serve(today)
    yield service
    service.stop()


@pytest.fixture
def http(server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=10) as client:
        yield client


@pytest.fixture
def tv_token(today) -> str:
    return make_token(today, "tv-hk", tokens.DASHBOARD, hall.SITE)


@pytest.fixture
def queue_token(today) -> str:
    return make_token(today, "queue-hk", tokens.QUEUE, hall.SITE)


# ---- the page ----------------------------------------------------------------------


def test_the_page_and_its_files_need_no_token_and_hold_no_data(http) -> None:
    page = http.get(PAGE)
    css = http.get(f"{PAGE}/static/dashboard.css")
    js = http.get(f"{PAGE}/static/dashboard.js")

    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '<html lang="vi">' in page.text and "Đang kết nối lại…" in page.text
    assert hall.SITE_NAME not in page.text  # the data comes with the token, from the stream
    assert (css.status_code, css.headers["content-type"]) == (200, "text/css; charset=utf-8")
    assert js.status_code == 200 and "Authorization" in js.text
    assert not re.search(r"https?://", page.text + css.text)  # nothing from a CDN
    assert http.get(f"{PAGE}/static/..%2F__init__.py").status_code == 404
    assert http.get(f"{PAGE}/static/snapshot.py").status_code == 404


# ---- who may read it ----------------------------------------------------------------


def test_a_dashboard_token_reads_its_sites_dashboard_and_nothing_else(http, server, tv_token,
                                                                      queue_token) -> None:
    own = http.get(API, headers=bearer(tv_token))
    other = http.get(f"/api/v1/sites/{hall.OTHER_SITE}/dashboard", headers=bearer(tv_token))
    elsewhere = {url: http.get(url, headers=bearer(tv_token)).status_code
                 for url in ROUTES.values()}
    call = http.post(f"/api/v1/sites/{hall.SITE}/calls", json={"ticket": "1", "counter": "1"},
                     headers=bearer(tv_token))
    other_stream = httpx.get(f"{server.url}/sites/{hall.OTHER_SITE}/dashboard/events",
                             headers=bearer(tv_token))

    assert own.status_code == 200 and own.json()["site_name"] == hall.SITE_NAME
    assert other.status_code == 403
    assert other.json()["detail"] == (f"token 'tv-hk' shows the dashboard of site "
                                      f"{hall.SITE!r}, not of {hall.OTHER_SITE!r}")
    assert elsewhere == dict.fromkeys(ROUTES.values(), 403)
    assert http.get("/api/v1/nodes", headers=bearer(tv_token)).json()["detail"] == (
        "token 'tv-hk' is a dashboard token: it may only call "
        "GET /api/v1/sites/{site}/dashboard (and its stream)")
    assert call.status_code == 403
    assert other_stream.status_code == 403


@pytest.mark.parametrize(
    ("who", "status"),
    [("operator", 200), ("queue", 403), ("none", 401), ("unknown", 401), ("revoked", 401)],
)
def test_who_may_read_a_dashboard(http, server, today, who, status) -> None:
    headers = {
        "operator": lambda: bearer(make_token(today, "console")),
        "queue": lambda: bearer(make_token(today, "q", tokens.QUEUE, hall.SITE)),
        "none": lambda: {},
        "unknown": lambda: bearer(tokens.new_token()),
        "revoked": lambda: bearer(revoked(today)),
    }[who]()

    assert http.get(API, headers=headers).status_code == status
    with httpx.stream("GET", f"{server.url}{PAGE}/events", headers=headers) as stream:
        assert stream.status_code == status


def revoked(engine) -> str:
    token = make_token(engine, "old-tv", tokens.DASHBOARD, hall.SITE)
    with engine.begin() as conn:
        tokens.revoke(conn, "old-tv")
    return token


def test_an_unknown_site_is_a_404_for_an_operator(http, server, today) -> None:
    operator = make_token(today, "console")

    assert http.get("/api/v1/sites/nowhere/dashboard", headers=bearer(operator)).status_code == 404
    assert httpx.get(f"{server.url}/sites/nowhere/dashboard/events",
                     headers=bearer(operator)).status_code == 404


def test_a_dashboard_token_shows_exactly_one_site(today) -> None:
    with today.begin() as conn:
        with pytest.raises(tokens.TokenError, match="exactly one site"):
            tokens.create(conn, "tv-two", role=tokens.DASHBOARD,
                          sites=[hall.SITE, hall.OTHER_SITE])
        with pytest.raises(tokens.TokenError, match="at least one --site"):
            tokens.create(conn, "tv-none", role=tokens.DASHBOARD)


def test_the_token_command_makes_a_dashboard_token_and_says_where_it_goes(today, db_url,
                                                                          capsys) -> None:
    assert main(["token", "create", "--name", "tv-hall", "--role", "dashboard",
                 "--site", hall.SITE, "--db", db_url]) == 0
    out = capsys.readouterr()
    token = out.out.strip()

    assert re.fullmatch(r"rpf_[A-Za-z0-9_-]{43}", token)
    assert f"/sites/{hall.SITE}/dashboard#key={token}" in out.err
    with today.connect() as conn:
        made = tokens.identify(conn, token)
    assert (made.role, made.sites) == ("dashboard", (hall.SITE,))


# ---- the stream ---------------------------------------------------------------------


def test_the_stream_shows_a_call_made_through_the_api(server, tv_token, queue_token) -> None:
    # Without polling: only the poke of the call route can bring the call in time.
    server._app.state.dashboards.poll_s = 3600
    with closing(read_stream(f"{server.url}{PAGE}/events", tv_token)) as stream:
        assert next(stream) == ("hello", {"keepalive_s": 0.5})
        event, before = next(stream)
        assert event == "dashboard" and before["site_id"] == hall.SITE
        # The stream is open before the call is made: the call must come through it.
        answer = httpx.post(f"{server.url}/api/v1/sites/{hall.SITE}/calls",
                            json={"ticket": "4242", "counter": "2"}, headers=bearer(queue_token))
        assert answer.status_code == 202, answer.text

        shown = until_called(stream, "4242")
        feed = server._app.state.dashboards
        assert feed.watched_sites() == [hall.SITE]

    # The screen left: its site is no longer read.
    assert eventually(lambda: feed.watched_sites() == [], timeout=10) is True
    assert (shown["calls"][0]["counter"], shown["calls"][0]["counter_label"]) == ("2", "Quầy 2")
    assert {c["id"]: c["ticket"] for c in shown["counters"]}["2"] == "4242"
    assert [c["ticket"] for c in shown["calls"][1:]] == [c["ticket"] for c in before["calls"]][
        :len(shown["calls"]) - 1]


def test_a_revoked_token_loses_its_open_stream(server, today, tv_token) -> None:
    url = f"{server.url}{PAGE}/events"
    events = []
    for event, data in read_stream(url, tv_token, keepalive_s=0.3):
        events.append(event)
        if event == "dashboard":
            with today.begin() as conn:
                tokens.revoke(conn, "tv-hk")

    # The loop ended: the server closed the stream at a keepalive after the revocation.
    assert events == ["hello", "dashboard"]
    assert httpx.get(url, headers=bearer(tv_token)).status_code == 401
