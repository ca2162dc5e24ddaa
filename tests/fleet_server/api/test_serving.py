"""The HTTP API on a real uvicorn, on a free loopback port, spoken to with urllib:
inside the fleet server (started and stopped with it) and as `rpfleet server run`."""

from __future__ import annotations

import json
import logging
import os
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from datetime import datetime, timezone
from pathlib import Path

import pytest

from fleet_server.api import tokens
from fleet_server.api.app import create_app
from fleet_server.api.serving import CannotListen, HttpService
from provisioning.mosquitto import SERVER_USERNAME, free_port
from rpfleet import process
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Health, Status
from tests.conftest import eventually
from tests.servers import server_broker


def call(url: str, token: str | None = None) -> tuple[int, dict | str]:
    """GET ``url``; (status, JSON body or text)."""
    request = urllib.request.Request(url)
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status, body, kind = response.status, response.read(), response.headers["content-type"]
    except urllib.error.HTTPError as refused:
        status, body, kind = refused.code, refused.read(), refused.headers["content-type"]
    text = body.decode("utf-8")
    return status, json.loads(text) if kind == "application/json" else text


def refuses_connections(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_a_real_uvicorn_answers_checks_tokens_and_stops(engine, token, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    service = HttpService(create_app(engine), "127.0.0.1", free_port())
    service.start()
    try:
        port = service.address[1]
        assert service.url == f"http://127.0.0.1:{port}"

        assert call(f"{service.url}/api/v1/nodes", token) == (
            200, {"items": [], "total": 0, "limit": 100, "offset": 0}
        )
        status, body = call(f"{service.url}/api/v1/nodes")
        assert (status, body) == (
            401, {"detail": "an API token is required: send 'Authorization: Bearer <token>'"}
        )
        assert call(f"{service.url}/metrics", tokens.new_token())[0] == 401
    finally:
        service.stop()
        service.stop()

    assert refuses_connections(port)
    access = [r.getMessage() for r in caplog.records if r.name == "uvicorn.access"]
    assert any("GET /api/v1/nodes HTTP/1.1" in line and "200" in line for line in access), access
    assert token not in caplog.text


def test_a_taken_port_fails_at_start_and_says_which(engine) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        service = HttpService(create_app(engine), "127.0.0.1", port)

        with pytest.raises(CannotListen, match=f"cannot serve the HTTP API on 127.0.0.1:{port}"):
            service.start()
    service.stop()  # nothing to stop: harmless


@pytest.fixture
def fleet_with_http(broker, tmp_path: Path, db_url: str):
    """A fleet server in process, HTTP API on a free port; stopped after the test."""
    from fleet_server.service import FleetServer
    from fleet_server.settings import ServerSettings

    fleet = FleetServer(ServerSettings(
        db_url=db_url,
        broker=server_broker(broker, client_id=f"server-http-{tmp_path.name}"),
        http_port=free_port(),
    ))
    fleet.start()
    assert fleet.link.connected.wait(10)
    yield fleet
    fleet.stop()


def test_the_fleet_server_serves_what_it_ingests_and_stops_its_api(fleet_with_http, probe,
                                                                   new_node):
    fleet = fleet_with_http
    with fleet.engine.begin() as conn:
        token = tokens.create(conn, "console")
    url, port = fleet.http.url, fleet.http.address[1]
    assert port == fleet.settings.http_port
    node = new_node()
    device = probe(node)
    device.publish(topic(node, Channel.STATUS), Status(node=node, state="online").to_json())
    device.publish(topic(node, Channel.HEALTH), Health(
        node=node, at=datetime.now(timezone.utc), uptime_s=3, outbox_pending=12,
        peripherals=[{"id": "usb-pad-A1", "kind": "rating-pad", "state": "ok"}],
    ).to_json())

    shown = eventually(lambda: (r := call(f"{url}/api/v1/nodes/{node}", token)) and r[0] == 200
                       and r[1]["outbox_pending"] == 12 and r[1])
    assert shown["state"] == "online"
    assert shown["last_health"]["uptime_s"] == 3
    status, metrics = call(f"{url}/metrics", token)
    assert status == 200 and "rpfleet_outbox_pending_events 12.0" in metrics

    fleet.stop()
    fleet.stop()

    assert fleet.http is None
    assert refuses_connections(port)


def test_rpfleet_server_run_serves_the_api_on_the_port_given(broker, tmp_path: Path, db_url: str):
    from fleet_server.cli import main

    assert main(["token", "create", "--name", "ops", "--db", db_url]) == 0  # migrates the store
    port = free_port()
    # The server's certificate comes from the environment, as a systemd EnvironmentFile gives it.
    tls = broker.tls_for(SERVER_USERNAME)
    env = {
        "RPFLEET_SERVER_BROKER__CLIENT_ID": f"server-run-{tmp_path.name}",
        "RPFLEET_SERVER_BROKER__TLS__CA_FILE": str(tls.ca_file),
        "RPFLEET_SERVER_BROKER__TLS__CERT_FILE": str(tls.cert_file),
        "RPFLEET_SERVER_BROKER__TLS__KEY_FILE": str(tls.key_file),
    }
    with open(tmp_path / "server.log", "wb") as log:
        server = process.spawn(
            [sys.executable, "-m", "rpfleet", "server", "run", "--db", db_url,
             "--broker-host", broker.host, "--broker-port", str(broker.port),
             "--http-port", str(port)],
            stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **env},
        )
    try:
        def answered():
            try:
                return call(f"http://127.0.0.1:{port}/healthz")
            except OSError:
                return None

        assert eventually(answered, timeout=30) == (
            401, {"detail": "an API token is required: send 'Authorization: Bearer <token>'"}
        )
        eventually(lambda: "subscribed to" in (tmp_path / "server.log").read_text(), timeout=30)
        server.send_signal(signal.SIGTERM)
        assert server.wait(30) == 0
    finally:
        process.stop(server)
    logged = (tmp_path / "server.log").read_text()
    assert f"HTTP API on http://127.0.0.1:{port}" in logged
    assert "GET /healthz HTTP/1.1" in logged and "401" in logged


def test_rpfleet_server_run_on_a_taken_port_exits_saying_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        done = subprocess.run(
            [sys.executable, "-m", "rpfleet", "server", "run",
             "--db", f"sqlite:///{tmp_path / 'fleet.sqlite'}", "--http-port", str(port)],
            capture_output=True, text=True, timeout=60, check=False,
        )

    assert done.returncode == 1
    assert (f"rpfleet server: cannot serve the HTTP API on 127.0.0.1:{port}: "
            "Address already in use") in done.stderr
    assert "Traceback" not in done.stderr


def test_http_port_0_means_no_http_api(tmp_path: Path) -> None:
    from fleet_server.service import FleetServer
    from fleet_server.settings import ServerBroker, ServerSettings

    fleet = FleetServer(ServerSettings(
        db_url=f"sqlite:///{tmp_path / 'fleet.sqlite'}",
        broker=ServerBroker(port=free_port()),  # nobody there: the link keeps retrying
        http_port=0,
    ))
    fleet.start()
    try:
        assert fleet.http is None
    finally:
        fleet.stop()
