"""The HTTP API's routes over a seeded store, on SQLite and PostgreSQL: the token
check in front of every route, what each returns, filters, pages and 404s."""

from __future__ import annotations

import logging

import pytest

from fleet_server.api import tokens
from fleet_server.api.app import create_app
from tests.fleet_server.api.conftest import bearer
from tests.fleet_server.api.fleet_data import seed

# One concrete URL per route, each of which answers 200 on the seeded fleet.
ROUTES = {
    "/api/v1/nodes": "/api/v1/nodes",
    "/api/v1/nodes/{node_id}": "/api/v1/nodes/hk-01-c1",
    "/api/v1/sites": "/api/v1/sites",
    "/api/v1/sites/{site_id}": "/api/v1/sites/hk-01",
    "/api/v1/alerts": "/api/v1/alerts",
    "/api/v1/events/summary": "/api/v1/events/summary",
    "/api/v1/reports": "/api/v1/reports",
    "/api/v1/sites/{site_id}/services": "/api/v1/sites/hk-01/services",
    "/api/v1/config/layers": "/api/v1/config/layers",
    "/api/v1/config/drift": "/api/v1/config/drift",
    "/api/v1/nodes/{node_id}/config": "/api/v1/nodes/hk-01-c1/config",
    "/api/v1/jobs": "/api/v1/jobs",
    "/api/v1/nodes/{node_id}/commands": "/api/v1/nodes/hk-01-c1/commands",
    "/api/v1/nodes/{node_id}/events": "/api/v1/nodes/hk-01-c1/events",
    "/api/v1/releases": "/api/v1/releases",
    "/api/v1/rollouts": "/api/v1/rollouts",
    "/healthz": "/healthz",
    "/metrics": "/metrics",
}


@pytest.fixture
def fleet(engine):
    with engine.begin() as conn:
        seed(conn)


@pytest.fixture
def get(client, token, fleet):
    """GET with a good token; returns the response."""

    def fetch(url: str, **params):
        return client.get(url, params=params, headers=bearer(token))

    return fetch


# The routes integrations POST to (tests/fleet_server/api/test_announcements.py).
ANNOUNCE_ROUTES = {"/api/v1/sites/{site_id}/calls", "/api/v1/sites/{site_id}/payments"}

# Routes that read what the seeded fleet lacks, and the methods that change something;
# their token checks are tested beside them (tests/fleet_server/config, .../jobs).
OTHER_ROUTES = {
    "/api/v1/config/layers/{scope}/{target}": {"get", "put", "delete"},
    "/api/v1/jobs/{job_id}": {"get"},
    "/api/v1/nodes/{node_id}/revoke": {"post"},  # tests/fleet_server/api/test_node_routes.py
    "/api/v1/rollouts/{rollout_id}": {"get"},  # tests/fleet_server/rollouts/test_rollout_api.py
}
WRITES = {"/api/v1/jobs": {"get", "post"}}


def test_every_route_of_the_app_is_listed_here(engine) -> None:
    described = create_app(engine).openapi()["paths"]

    assert set(described) == set(ROUTES) | ANNOUNCE_ROUTES | set(OTHER_ROUTES), (
        "a new route needs a URL in ROUTES (for its auth tests)"
    )
    assert all(set(methods) == {"get"} for path, methods in described.items()
               if path not in ANNOUNCE_ROUTES | set(OTHER_ROUTES) | set(WRITES))
    assert all(set(described[path]) == {"post"} for path in ANNOUNCE_ROUTES)
    assert {path: set(described[path]) for path in OTHER_ROUTES} == OTHER_ROUTES
    assert {path: set(described[path]) for path in WRITES} == WRITES


# ---- the token check ---------------------------------------------------------


def revoked_token(engine, make_token) -> str:
    token = make_token("old-dashboard")
    with engine.begin() as conn:
        tokens.revoke(conn, "old-dashboard")
    return token


REFUSED = {
    "no-header": lambda engine, make_token: {},
    "empty-bearer": lambda engine, make_token: {"Authorization": "Bearer "},
    "basic-scheme": lambda engine, make_token: {"Authorization": f"Basic {make_token('basic')}"},
    "unknown-token": lambda engine, make_token: bearer(tokens.new_token()),
    "changed-character": lambda engine, make_token: bearer(make_token("typo")[:-1] + "#"),
    "revoked-token": lambda engine, make_token: bearer(revoked_token(engine, make_token)),
}


@pytest.mark.parametrize("case", list(REFUSED), ids=list(REFUSED))
def test_every_route_refuses_without_a_valid_token(client, engine, make_token, fleet, case) -> None:
    headers = REFUSED[case](engine, make_token)
    answers = {url: client.get(url, headers=headers) for url in ROUTES.values()}

    assert {url: r.status_code for url, r in answers.items()} == dict.fromkeys(ROUTES.values(), 401)
    for url, response in answers.items():
        assert response.headers["WWW-Authenticate"] == "Bearer", url
        assert "token" in response.json()["detail"], url
        assert "hk-01" not in response.text, url


def test_every_route_answers_with_a_valid_token(get) -> None:
    statuses = {url: get(url).status_code for url in ROUTES.values()}

    assert statuses == dict.fromkeys(ROUTES.values(), 200)


def test_a_token_revoked_while_in_use_is_refused_from_the_next_request(client, engine, fleet):
    with engine.begin() as conn:
        token = tokens.create(conn, "console")
    assert client.get("/api/v1/nodes", headers=bearer(token)).status_code == 200

    with engine.begin() as conn:
        tokens.revoke(conn, "console")

    assert client.get("/api/v1/nodes", headers=bearer(token)).status_code == 401


def test_no_token_reaches_the_logs(client, engine, make_token, fleet, caplog) -> None:
    good, revoked = make_token("good"), revoked_token(engine, make_token)
    unknown = tokens.new_token()
    caplog.set_level(logging.DEBUG)

    for token in (good, revoked, unknown):
        client.get("/api/v1/nodes", headers=bearer(token))

    assert "refused '/api/v1/nodes': revoked token 'old-dashboard'" in caplog.text
    assert "refused '/api/v1/nodes': unknown token" in caplog.text
    for token in (good, revoked, unknown):
        assert token not in caplog.text
        assert token[4:20] not in caplog.text


def test_the_interactive_docs_are_not_served(client, token) -> None:
    for url in ("/docs", "/redoc", "/openapi.json"):
        assert client.get(url, headers=bearer(token)).status_code == 404


# ---- nodes -------------------------------------------------------------------


def ids(page: dict) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_nodes_are_listed_by_id_with_their_outbox_depth(get) -> None:
    page = get("/api/v1/nodes").json()

    assert ids(page) == ["hk-01-c1", "hk-01-c2", "hk-02-c1", "n-free", "n-gone"]
    assert page["total"] == 5 and page["limit"] == 100 and page["offset"] == 0
    first = page["items"][0]
    assert first["site_id"] == "hk-01" and first["counter"] == "1" and first["state"] == "online"
    assert first["outbox_pending"] == 2
    assert first["last_seen"] == "2025-03-03T08:00:00Z"
    assert page["items"][2]["outbox_pending"] is None, "no health report yet"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"site": "hk-01"}, ["hk-01-c1", "hk-01-c2"]),
        ({"state": "online"}, ["hk-01-c1", "hk-02-c1"]),
        ({"site": "hk-01", "state": "offline"}, ["hk-01-c2"]),
        ({"site": "bd-01"}, []),
        ({"state": "retired"}, ["n-gone"]),
    ],
    ids=["site", "state", "site-and-state", "site-without-nodes", "retired"],
)
def test_nodes_filter_by_site_and_state(get, params, expected) -> None:
    page = get("/api/v1/nodes", **params).json()

    assert ids(page) == expected
    assert page["total"] == len(expected)


def test_nodes_come_in_pages(get) -> None:
    first = get("/api/v1/nodes", limit=2).json()
    second = get("/api/v1/nodes", limit=2, offset=2).json()
    last = get("/api/v1/nodes", limit=2, offset=4).json()

    assert ids(first) + ids(second) + ids(last) == ids(get("/api/v1/nodes").json())
    assert [p["total"] for p in (first, second, last)] == [5, 5, 5]
    assert len(ids(last)) == 1


@pytest.mark.parametrize("params", [{"limit": 1001}, {"limit": 0}, {"offset": -1}],
                         ids=["limit-too-large", "limit-zero", "negative-offset"])
def test_page_bounds_are_enforced(get, params) -> None:
    response = get("/api/v1/nodes", **params)

    assert response.status_code == 422
    assert list(params) == [response.json()["detail"][0]["loc"][-1]]


def test_a_node_comes_with_peripherals_last_health_and_open_alerts(get) -> None:
    node = get("/api/v1/nodes/hk-01-c1").json()

    assert node["id"] == "hk-01-c1" and node["site_id"] == "hk-01"
    assert [(p["id"], p["kind"], p["state"], p["detail"]) for p in node["peripherals"]] == [
        ("usb-pad-A1", "rating-pad", "ok", None),
        ("usb-printer-P", "ticket-printer", "faulty", "paper out"),
    ]
    assert node["last_health"]["outbox_pending"] == 2 and node["last_health"]["node"] == "hk-01-c1"
    assert [a["id"] for a in node["open_alerts"]] == [2], "alert 3 about it is closed"


def test_a_node_without_health_or_peripherals(get) -> None:
    node = get("/api/v1/nodes/n-free").json()

    assert node["last_health"] is None and node["peripherals"] == [] and node["open_alerts"] == []
    assert node["site_id"] is None and node["state"] == "unknown"


def test_an_unknown_node_is_a_404_that_names_it(get) -> None:
    response = get("/api/v1/nodes/hk-99-c9")

    assert response.status_code == 404
    assert response.json() == {
        "detail": "no node 'hk-99-c9': it is not registered and has never reported"
    }


# ---- sites -------------------------------------------------------------------


def test_sites_are_listed_with_node_counts(get) -> None:
    page = get("/api/v1/sites").json()

    assert [(s["id"], s["kind"], s["nodes_online"], s["nodes_total"]) for s in page["items"]] == [
        ("bd-01", "commune", 0, 0),
        ("hk-01", "reception", 1, 2),
        ("hk-02", "agency", 1, 1),
    ]
    assert page["items"][1]["name"] == "Một cửa Hoàn Kiếm"
    assert page["items"][1]["address"] == "1 Lê Lai" and page["items"][1]["region_id"] == "hk"


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"region": "hk"}, ["hk-01", "hk-02"]), ({"kind": "commune"}, ["bd-01"]),
     ({"region": "bd", "kind": "agency"}, []), ({"limit": 1, "offset": 1}, ["hk-01"])],
    ids=["region", "kind", "region-and-kind", "page"],
)
def test_sites_filter_by_region_and_kind(get, params, expected) -> None:
    assert ids(get("/api/v1/sites", **params).json()) == expected


def test_a_site_comes_with_region_counters_and_nodes(get) -> None:
    site = get("/api/v1/sites/hk-01").json()

    assert site["region_name"] == "Hoàn Kiếm"
    assert site["counters"] == [{"id": "1", "name": "Quầy 1"}, {"id": "2", "name": None}]
    assert [n["id"] for n in site["nodes"]] == ["hk-01-c1", "hk-01-c2"]
    assert (site["nodes_online"], site["nodes_total"]) == (1, 2)


def test_an_unknown_site_is_a_404_that_names_it(get) -> None:
    response = get("/api/v1/sites/nowhere")

    assert response.status_code == 404
    assert response.json() == {"detail": "no site 'nowhere' is registered"}


# ---- alerts ------------------------------------------------------------------


def test_only_open_alerts_by_default_newest_first(get) -> None:
    page = get("/api/v1/alerts").json()

    assert [a["id"] for a in page["items"]] == [2, 1]
    assert all(a["closed_at"] is None for a in page["items"])
    assert page["items"][0]["subject"] == "hk-01-c1/usb-printer-P"


def test_all_alerts_include_the_closed_history(get) -> None:
    page = get("/api/v1/alerts", all="true").json()

    assert [a["id"] for a in page["items"]] == [2, 1, 3]
    assert page["items"][2]["closed_at"] == "2025-03-02T12:00:00Z"


@pytest.mark.parametrize(
    ("params", "expected"),
    [({"kind": "node-offline"}, [1]), ({"node": "hk-01-c1"}, [2]),
     ({"node": "hk-01-c1", "all": "true"}, [2, 3]), ({"site": "hk-02"}, []),
     ({"all": "true", "limit": 1, "offset": 2}, [3])],
    ids=["kind", "node", "node-history", "quiet-site", "page"],
)
def test_alerts_filter(get, params, expected) -> None:
    assert [a["id"] for a in get("/api/v1/alerts", **params).json()["items"]] == expected


# ---- satisfaction ------------------------------------------------------------


def test_events_summary_gives_taps_satisfied_and_share_per_site(get) -> None:
    summary = get("/api/v1/events/summary").json()

    rows = {s["site_id"]: (s["taps"], s["satisfied"], s["share"]) for s in summary["items"]}
    assert rows["hk-01"] == (4, 3, 0.75)
    assert rows["hk-02"] == (1, 0, 0.0)
    assert (summary["taps"], summary["satisfied"], summary["share"]) == (5, 3, 0.6)


def test_events_summary_pages_keep_the_totals_of_all_sites(get) -> None:
    page = get("/api/v1/events/summary", limit=1).json()

    every = get("/api/v1/events/summary").json()["items"]

    assert len(page["items"]) == 1 and page["total"] == len(every) == 3
    assert page["taps"] == 5


def test_report_gives_shares_with_confidence_intervals_per_site_and_day(get) -> None:
    week = {"from": "2025-03-01", "to": "2025-03-07"}
    report = get("/api/v1/reports", **week, group="site").json()

    assert (report["first_day"], report["last_day"], report["by"]) == (*week.values(), "day")
    assert (report["total"]["ratings"], report["total"]["satisfied"]) == (5, 3)
    assert [p["period"]["label"] for p in report["trend"]] == [f"2025-03-0{d}" for d in range(1, 8)]
    assert [p["tally"]["ratings"] for p in report["trend"]] == [0, 0, 5, 0, 0, 0, 0]
    groups = {g["group"]["id"]: g["tally"] for g in report["groups"]}
    hk01 = groups["hk-01"]
    assert (hk01["ratings"], hk01["satisfied"], hk01["share"]) == (4, 3, 0.75)
    # Wilson 95 % for 3 of 4: about 0.30 to 0.95, as wide as four taps deserve.
    assert hk01["low"] == pytest.approx(0.3006, abs=1e-3)
    assert hk01["high"] == pytest.approx(0.9544, abs=1e-3)
    assert hk01["meets_target"] is False and report["target_share"] == 0.9
    assert [(c["period"]["label"], c["group"]["id"]) for c in report["cells"]] == [
        ("2025-03-03", "hk-01"), ("2025-03-03", "hk-02")
    ]


def test_report_counts_misuse_apart(get, engine) -> None:
    from fleet_server.schema import events
    from tests.fleet_server.api.fleet_data import T0

    with engine.begin() as conn:
        conn.execute(events.insert().values(
            node_id="hk-02-c1", event_id="mash", seq=99, kind="rating-tap", at=T0, received_at=T0,
            rating=1, scale=5, suspect=True, detail={},
        ))

    day = {"from": "2025-03-03", "to": "2025-03-03"}
    total = get("/api/v1/reports", **day, site="hk-02").json()

    assert total["subject"] == "Bưu điện Hàng Bài"
    assert (total["total"]["ratings"], total["total"]["misuse_flagged"]) == (1, 1)


def test_report_by_week_and_in_pages(get) -> None:
    report = get("/api/v1/reports", **{"from": "2025-03-01", "to": "2025-03-31"}, by="week",
                 group="node", limit=1, offset=1).json()

    assert [p["period"]["label"] for p in report["trend"]] == [
        "2025-W09", "2025-W10", "2025-W11", "2025-W12", "2025-W13", "2025-W14"
    ]
    assert report["trend"][1]["tally"]["ratings"] == 5
    assert (report["groups_total"], report["cells_total"]) == (3, 3)
    assert [g["group"]["id"] for g in report["groups"]] == ["hk-01-c2"]
    assert len(report["cells"]) == 1


def test_report_defaults_to_the_last_30_days_in_hanoi(get) -> None:
    from datetime import date, datetime, timedelta

    from fleet_server.reports import LOCAL_ZONE

    report = get("/api/v1/reports").json()

    last = date.fromisoformat(report["last_day"])
    today = datetime.now(LOCAL_ZONE).date()
    assert last in {today, today - timedelta(days=1)}  # the test may straddle midnight
    assert date.fromisoformat(report["first_day"]) == last - timedelta(days=29)
    assert len(report["trend"]) == 30


@pytest.mark.parametrize(
    ("params", "status", "detail"),
    [
        ({"site": "nowhere"}, 404, "site 'nowhere': no site with this id in the registry"),
        ({"region": "xx"}, 404, "region 'xx': no region with this id in the registry"),
        ({"from": "2025-03-09", "to": "2025-03-01"}, 400,
         "from '2025-03-09': is after the last day"),
        ({"from": "2020-01-01", "to": "2025-01-01"}, 400, "more than 1000 days"),
        ({"from": "yesterday"}, 422, None),
        ({"by": "hour"}, 422, None),
    ],
    ids=["unknown-site", "unknown-region", "from-after-to", "too-many-periods", "not-a-date",
         "bad-period"],
)
def test_report_refuses_what_it_cannot_answer(get, params, status, detail) -> None:
    response = get("/api/v1/reports", **params)

    assert response.status_code == status
    if detail is not None:
        assert detail in response.json()["detail"]


def test_healthz_says_ok_and_nothing_else(get) -> None:
    assert get("/healthz").json() == {"status": "ok"}
