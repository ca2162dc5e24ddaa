"""Fleet servers for tests that need more than the `server` fixture gives: short
presence timeouts, fast alert rounds, several workers on one database."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from provisioning.mosquitto import SERVER_USERNAME, PrivateBroker


def server_broker(broker: PrivateBroker, client_id: str, **options: Any):
    """`ServerBroker` settings for ``broker``: the fleet server's own certificate over TLS.

    ``options`` go to `ServerBroker` (e.g. ``shared_group``).
    """
    from fleet_server.settings import ServerBroker, ServerTls

    return ServerBroker(
        host=broker.host,
        port=broker.port,
        tls=ServerTls(**asdict(broker.tls_for(SERVER_USERNAME))),
        client_id=client_id,
        **options,
    )


def server_settings(broker: PrivateBroker, tmp_path: Path, db_url: str, name: str, *,
                    broker_options: dict[str, Any] | None = None, **overrides: Any):
    """Settings for a worker called ``name`` (its client id) on ``db_url``; no HTTP API.

    ``broker_options`` go to `ServerBroker` (e.g. ``shared_group``), ``overrides`` to
    `ServerSettings`.
    """
    from fleet_server.settings import ServerSettings

    return ServerSettings(
        db_url=db_url,
        broker=server_broker(broker, f"{name}-{tmp_path.name}", **(broker_options or {})),
        http_port=0,
        **overrides,
    )


@pytest.fixture
def start_server(broker: PrivateBroker, tmp_path: Path):
    """Starts fleet servers with the given settings overrides; stops them after the test."""
    from fleet_server.service import FleetServer

    started: list[FleetServer] = []

    def start(db_url: str, name: str = "server", **overrides: Any) -> FleetServer:
        fleet = FleetServer(server_settings(broker, tmp_path, db_url, name, **overrides))
        fleet.start()
        started.append(fleet)
        assert fleet.link.connected.wait(10), "server did not connect to the test broker"
        return fleet

    yield start
    for fleet in started:
        fleet.stop()
