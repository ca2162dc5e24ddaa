"""Who may call the bridge, over real HTTP and WebSocket: the allowed page with this boot's token
gets through; every other caller gets a JSON refusal, and the refusal is logged (no token)."""

from __future__ import annotations

import json
import logging
import socket

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agent.bridge.server import DeviceBridge
from agent.bridge.settings import BridgeSettings
from agent.local_events import LocalEvents
from rpfleet.protocol.messages import PeripheralHealth
from tests.agent.bridge.conftest import ORIGIN

PADS = [PeripheralHealth(id="qr-kiosk", kind="scanner", state="ok", detail="fake reader")]


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "agent.bridge" and "refused" in r.getMessage()]


async def test_the_allowed_page_with_the_token_reads_the_status(start_bridge):
    running = start_bridge(peripherals=lambda: PADS)

    async with running.client() as client:
        answer = await client.get("/v1/status")

    assert answer.status_code == 200, answer.text
    assert answer.json() == {"peripherals": [p.model_dump(exclude_none=True) for p in PADS],
                             "printers": []}
    assert answer.headers["access-control-allow-origin"] == ORIGIN
    assert answer.headers["vary"] == "Origin"


@pytest.mark.parametrize(
    "origin, token, status, error",
    [
        ("https://evil.example", "right", 403, "origin-not-allowed"),
        (None, "right", 403, "origin-missing"),
        (ORIGIN, None, 401, "token-missing"),
        (ORIGIN, "wrong", 401, "token-invalid"),
    ],
    ids=["wrong origin", "no origin", "no token", "wrong token"],
)
async def test_a_refused_call_gets_a_json_error_and_is_logged(start_bridge, caplog, origin,
                                                               token, status, error):
    running = start_bridge(peripherals=lambda: PADS)
    presented = {"right": running.token, "wrong": running.token[::-1], None: None}[token]

    async with running.client(origin=origin, token=presented) as client:
        answer = await client.post("/v1/announcements", json={"kind": "test"})

    assert answer.status_code == status
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"] == error
    assert answer.json()["message"]
    logged = refusals(caplog)
    assert len(logged) == 1 and error in logged[0] and "POST /v1/announcements" in logged[0]
    # An allowed page may read why it was refused; another page may not.
    assert answer.headers.get("access-control-allow-origin") == (
        ORIGIN if origin == ORIGIN else None)


async def test_a_request_naming_another_host_is_refused(start_bridge, caplog):
    """A page that rebinds its own DNS name to 127.0.0.1 still sends its name as Host."""
    running = start_bridge()

    async with running.client(host="xephang.hcc.hanoi.gov.vn") as client:
        answer = await client.get("/v1/status")

    assert (answer.status_code, answer.json()["error"]) == (403, "host-not-allowed")
    assert refusals(caplog)


async def test_cors_preflight_is_answered_only_for_allowed_origins(start_bridge, caplog):
    running = start_bridge()
    asking = {"access-control-request-method": "POST",
              "access-control-request-headers": "authorization, content-type",
              "access-control-request-private-network": "true"}

    async with running.client(token=None) as allowed, \
            running.client(origin="https://evil.example", token=None) as other:
        yes = await allowed.options("/v1/tickets", headers=asking)
        no = await other.options("/v1/tickets", headers=asking)

    assert yes.status_code == 204
    assert yes.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in yes.headers["access-control-allow-methods"]
    assert "authorization" in yes.headers["access-control-allow-headers"]
    assert yes.headers["access-control-allow-private-network"] == "true"
    assert (no.status_code, no.json()["error"]) == (403, "origin-not-allowed")
    assert "access-control-allow-origin" not in no.headers
    assert len(refusals(caplog)) == 1


async def test_the_websocket_wants_an_allowed_origin_then_the_token_first(start_bridge, caplog):
    running = start_bridge()

    with pytest.raises(InvalidStatus) as refused:
        await websockets.connect(running.ws_url, origin="https://evil.example")
    assert refused.value.response.status_code == 403
    assert json.loads(refused.value.response.body)["error"] == "origin-not-allowed"

    async with websockets.connect(running.ws_url, origin=ORIGIN) as page:
        await page.send(json.dumps({"type": "hello", "token": running.token[::-1]}))
        said = json.loads(await page.recv())
        with pytest.raises(ConnectionClosed) as closed:
            await page.recv()
    assert said["type"] == "error" and said["error"] == "token-invalid"
    assert closed.value.rcvd.code == 4401

    async with websockets.connect(running.ws_url, origin=ORIGIN) as page:
        await page.send("not a hello")
        said = json.loads(await page.recv())
    assert said["error"] == "hello-expected"

    async with websockets.connect(running.ws_url, origin=ORIGIN) as page:
        await page.send(json.dumps({"type": "hello", "token": running.token}))
        ready = json.loads(await page.recv())
    assert ready == {"type": "ready", "status": {"peripherals": [], "printers": []}}
    logged = refusals(caplog)
    assert [line.split(": ")[-1] for line in logged] == [
        "origin-not-allowed", "token-invalid", "hello-expected"]


def test_the_bridge_refuses_to_listen_beyond_loopback():
    with pytest.raises(ValueError, match="not a loopback address"):
        BridgeSettings(host="0.0.0.0")
    settings = BridgeSettings.model_construct(host="192.168.1.20", port=0, allowed_origins=(),
                                              sample_page=False)
    bridge = DeviceBridge(settings, [], LocalEvents(), list)
    with pytest.raises(ValueError, match="only on loopback"):
        bridge.bind()


async def test_a_peer_off_loopback_is_refused_even_when_the_socket_is_reached(start_bridge,
                                                                               caplog):
    """Belt and braces: the app itself checks the peer (a proxy in front, a bad NAT rule)."""
    running = start_bridge()
    peer_scope = {"type": "http", "method": "GET", "path": "/v1/status", "client": ("10.0.0.7", 5),
                  "headers": [(b"host", f"127.0.0.1:{running.bridge.port}".encode()),
                              (b"origin", ORIGIN.encode()),
                              (b"authorization", f"Bearer {running.token}".encode())]}
    await _wait_until_serving(running)
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b""}

    async def send(message):
        sent.append(message)

    await running.bridge.guarded(peer_scope, receive, send)

    assert sent[0]["status"] == 403
    assert json.loads(sent[1]["body"])["error"] == "peer-not-loopback"
    assert "10.0.0.7" in refusals(caplog)[0]


async def _wait_until_serving(running) -> None:
    async with running.client() as client:
        assert (await client.get("/v1/status")).status_code == 200


def test_the_token_differs_at_each_start_and_is_not_in_repr():
    first = DeviceBridge(BridgeSettings(port=0), [], LocalEvents(), list)
    second = DeviceBridge(BridgeSettings(port=0), [], LocalEvents(), list)
    first.bind()
    try:
        assert first.token != second.token and len(first.token) >= 40
        assert first.token not in repr(first) and first.url in repr(first)
        assert first.page_globals() == {"bridge": first.url, "token": first.token}
        with socket.create_connection(("127.0.0.1", first.port), timeout=5):
            pass  # bound and listening on loopback before serve() runs
    finally:
        first.close()


async def test_unknown_paths_and_methods_are_json_errors(start_bridge):
    running = start_bridge()

    async with running.client() as client:
        missing = await client.get("/v1/nothing")
        wrong = await client.get("/v1/tickets")
        not_json = await client.post("/v1/tickets", content=b"{", headers={
            "content-type": "application/json"})

    assert (missing.status_code, missing.json()["error"]) == (404, "not-found")
    assert (wrong.status_code, wrong.json()["error"]) == (405, "method-not-allowed")
    assert (not_json.status_code, not_json.json()["error"]) == (400, "invalid-json")


async def test_logs_hold_no_token_even_when_a_page_sends_it_where_it_should_not(start_bridge,
                                                                                caplog):
    """A page that puts the token in the query string or a bad hello: still not logged."""
    running = start_bridge()

    async with running.client(origin="https://evil.example") as client:
        await client.get(f"/v1/status?token={running.token}")
    async with websockets.connect(running.ws_url, origin=ORIGIN) as page:
        await page.send(running.token)  # the token alone, not in a hello
        await page.recv()
    async with websockets.connect(f"{running.ws_url}?token={running.token}",
                                  origin=ORIGIN) as page:
        await page.send(json.dumps({"type": "hello", "token": running.token}))
        assert json.loads(await page.recv())["type"] == "ready"

    assert len(refusals(caplog)) == 2  # and the autouse fixture finds no token in any record
    assert any('"WebSocket /v1/events" [accepted]' in r.getMessage() for r in caplog.records)


async def test_the_sample_page_is_public_only_when_served_and_only_to_this_host(start_bridge):
    served = start_bridge(sample_page=True)
    hidden = start_bridge()

    async with httpx.AsyncClient(base_url=served.url) as browser:
        home = await browser.get("/")
        page = await browser.get("/kiosk/")
        script = await browser.get("/kiosk/kiosk.js")
        rebound = await browser.get("/kiosk/", headers={"host": "kiosk.example"})
    async with httpx.AsyncClient(base_url=hidden.url) as browser:
        absent = await browser.get("/kiosk/")

    assert (home.status_code, home.headers["location"]) == (307, "/kiosk/")
    assert page.status_code == 200 and "<title>Lấy số thứ tự</title>" in page.text
    assert script.status_code == 200 and "Vui lòng lấy số tại quầy hướng dẫn" in script.text
    assert (rebound.status_code, rebound.json()["error"]) == (403, "host-not-allowed")
    assert (absent.status_code, absent.json()["error"]) == (403, "origin-missing")


async def test_a_same_origin_fetch_of_the_sample_page_counts_as_its_own_origin(start_bridge):
    """Browsers send no Origin on a same-origin GET; Sec-Fetch-Site says where it comes from."""
    served = start_bridge(sample_page=True)
    hidden = start_bridge()

    answers = []
    for running in (served, hidden):
        async with running.client(origin=None, **{"sec-fetch-site": "same-origin"}) as client:
            answers.append(await client.get("/v1/status"))

    assert answers[0].status_code == 200
    assert (answers[1].status_code, answers[1].json()["error"]) == (403, "origin-missing")


async def test_the_bridge_logs_no_request_lines_and_leaves_uvicorns_logger_alone(start_bridge,
                                                                                  caplog):
    """Another uvicorn server in the same process (a test's fleet server) keeps its access log."""
    caplog.set_level(logging.DEBUG)
    running = start_bridge(peripherals=lambda: PADS)

    async with running.client() as client:
        assert (await client.get("/v1/status")).status_code == 200

    access = logging.getLogger("uvicorn.access")
    assert access.propagate
    assert [r for r in caplog.records if r.name == "uvicorn.access"] == []
