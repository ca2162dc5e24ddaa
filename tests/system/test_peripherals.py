"""A node's health over MQTT keeps the server's peripherals table in step."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa

from fleet_server.schema import peripherals
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Health, PeripheralHealth
from tests.conftest import eventually
from tests.system.helpers import node_row


def health(node: str, *states: tuple[str, str, str]) -> bytes:
    return Health(
        node=node, at=datetime.now(timezone.utc), uptime_s=1, outbox_pending=0,
        peripherals=[PeripheralHealth(id=i, kind=k, state=s) for i, k, s in states],
    ).to_json()


def peripheral_states(server, node: str) -> dict[str, str]:
    with server.engine.connect() as conn:
        rows = conn.execute(sa.select(peripherals.c.id, peripherals.c.state)
                            .where(peripherals.c.node_id == node))
        return dict(rows.all())


def test_peripherals_follow_the_nodes_health(server, probe, new_node):
    node = new_node()
    device = probe(node)
    device.publish(topic(node, Channel.HEALTH),
                   health(node, ("pad-1", "rating-pad", "ok"), ("scanner-1", "scanner", "missing")))
    eventually(lambda: peripheral_states(server, node) == {"pad-1": "ok", "scanner-1": "missing"})
    first_health_at = node_row(server, node).last_health_at

    device.publish(topic(node, Channel.HEALTH), health(node, ("pad-1", "rating-pad", "failed")))
    eventually(lambda: peripheral_states(server, node) == {"pad-1": "failed"})
    assert node_row(server, node).last_health_at > first_health_at
