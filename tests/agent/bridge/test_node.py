"""The agent's side of the bridge: what it records reaches local listeners, and its kiosk
browsers get the bridge's address and this boot's token before they start."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

import pytest

from agent.bridge.settings import BridgeSettings
from agent.node import NodeAgent
from rpfleet.protocol.messages import PeripheralHealth, Scan

AT = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


class KioskBrowser:
    """Stands in for the kiosk browser driver: only its ``page_globals`` matter here."""

    kind = "kiosk-browser"

    def __init__(self, config) -> None:
        self.config = config
        self.id = config.id
        self.page_globals = {"heartbeat_every_s": 5}

    async def run(self) -> None:
        await asyncio.Event().wait()

    def health(self) -> PeripheralHealth:
        return PeripheralHealth(id=self.id, kind=self.kind, state="ok")


@pytest.fixture
def node(agent_settings, new_node):
    def make(**extra) -> NodeAgent:
        extra.setdefault("peripherals", [])
        agent = NodeAgent(agent_settings(new_node(), **extra))
        agent.outbox.open()
        made.append(agent)
        return agent

    made: list[NodeAgent] = []
    yield make
    for agent in made:
        agent.outbox.close()
        if agent.bridge is not None:
            agent.bridge.close()


async def test_a_recorded_event_reaches_local_listeners_after_it_is_stored(node):
    agent = node()
    listener = agent.local_events.subscribe()
    scan = Scan(scanner="qr-kiosk", code="IHN-20261125-000123", code_kind="ihanoi-booking")

    await agent.record(scan, AT)
    listener.close()

    heard = [item async for item in listener]
    assert [(e.detail, e.at) for e in heard] == [(scan, AT)]
    assert agent.outbox.pending() == 1  # stored as well


async def test_kiosk_browsers_get_the_bridge_url_and_token_before_they_start(node, tokens,
                                                                             monkeypatch):
    monkeypatch.setattr("agent.node.build_driver", lambda config, record: KioskBrowser(config))
    pad = {"kind": "rating-pad", "id": "browser-1", "source": "fake"}
    agent = node(bridge=BridgeSettings(port=0), peripherals=[pad])
    tokens.append(agent.bridge.token)
    before = agent.drivers[0]
    assert before.page_globals == {"heartbeat_every_s": 5}  # built before the bridge is bound

    serving = agent._open_bridge()
    try:
        expected = {"heartbeat_every_s": 5, "bridge": agent.bridge.url,
                    "token": agent.bridge.token}
        assert before.page_globals == expected
        assert agent.bridge.url.startswith("http://127.0.0.1:")
        # A browser the desired config adds later gets them as it is built.
        await agent.drivers.apply([*agent.settings.peripherals,
                                   agent.settings.peripherals[0].model_copy(update={"id": "b-2"})])
        assert agent.drivers.get("b-2").page_globals == expected
    finally:
        await agent.drivers.stop()
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


async def test_a_port_already_taken_raises_an_alarm_and_the_node_serves_on(node, tokens):
    first = node(bridge=BridgeSettings(port=0))
    first.bridge.bind()
    second = node(bridge=BridgeSettings(port=first.bridge.port))
    tokens.extend([first.bridge.token, second.bridge.token])

    assert second._open_bridge() is None
    assert "bridge-failed" in second.alarms
    assert "in use" in second.alarms["bridge-failed"]


def test_without_a_bridge_section_the_agent_has_none(node):
    assert node().bridge is None
