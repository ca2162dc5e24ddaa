"""One rating tap, end to end: fake pad -> outbox -> MQTT -> server -> store -> ack."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest

from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Ack, Event, EventBatch, RatingTap
from tests.conftest import eventually
from tests.system.helpers import dead_letter_payloads, errors, node_row, stored_events


def press(runner, code: str) -> None:
    runner.call(lambda: runner.agent.drivers[0].adapter.press(code))


def pad_is_open(runner) -> bool:
    return runner.call(lambda: runner.agent.drivers[0].health().state) == "ok"


@pytest.mark.parametrize("protocol", ["3.1.1", "5"], ids=["mqtt311", "mqtt5"])
def test_a_tap_is_stored_once_acked_and_forgotten_by_the_node(server, running_agent, new_node, protocol):
    node = new_node()
    runner = running_agent(node, protocol=protocol)
    eventually(lambda: pad_is_open(runner))
    press(runner, "KEY_KP5")
    press(runner, "KEY_KP2")

    rows = eventually(lambda: (r := stored_events(server, node)) and len(r) == 2 and r)
    assert [(r.rating, r.scale, r.kind) for r in rows] == [(5, 5, "rating-tap"), (2, 5, "rating-tap")]
    assert rows[0].detail["counter"] == "5" and rows[0].detail["pad"] == "pad-1"
    assert rows[0].seq < rows[1].seq
    synced = runner.call(lambda: runner.agent.clock_synced)
    assert [r.clock_synced for r in rows] == [synced, synced]  # the kernel's word, not a guess
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 0)
    assert eventually(lambda: node_row(server, node).state == "online")


def batch_of(node: str, *ratings: int) -> EventBatch:
    return EventBatch(
        node=node,
        events=[
            Event(id=uuid.uuid4().hex, seq=i + 1, at=datetime.now(timezone.utc),
                  detail=RatingTap(pad="p", rating=r, scale=5))
            for i, r in enumerate(ratings)
        ],
    )


def test_a_duplicate_delivery_is_stored_once_and_acked_each_time(server, probe, new_node):
    node = new_node()
    device = probe(node)
    device.subscribe(topic(node, Channel.ACK))
    batch = batch_of(node, 4, 5)
    for _ in range(3):
        device.publish(topic(node, Channel.EVENTS), batch.to_json())
    acks = [Ack.model_validate_json(device.next().payload) for _ in range(3)]
    assert all(set(a.ids) == {e.id for e in batch.events} for a in acks)
    assert len(stored_events(server, node)) == 2
    assert server.ingest.stats.events_duplicate == 4


MALFORMED = {
    "not-json": b"{not json",
    "not-utf8": b"\xff\xfe\x00",
    "not-object": b"[1, 2]",
    "schema": b'{"v": "1.0", "node": "%s", "events": []}',
    "wrong-version": b'{"v": "2.0", "node": "%s", "events": []}',
}


def test_malformed_payloads_are_counted_kept_and_ingest_goes_on(server, probe, new_node):
    node = new_node()
    device = probe(node)
    device.subscribe(topic(node, Channel.ACK))
    for payload in MALFORMED.values():
        device.publish(topic(node, Channel.EVENTS), payload.replace(b"%s", node.encode()))
    good = batch_of(node, 5)
    device.publish(topic(node, Channel.EVENTS), good.to_json())

    ack = Ack.model_validate_json(device.next().payload)
    assert ack.ids == [good.events[0].id]
    assert [r.event_id for r in stored_events(server, node)] == [good.events[0].id]
    assert {reason: n for (n_, reason), n in errors(server).items() if n_ == node} == {
        reason: 1 for reason in MALFORMED
    }
    assert b"\xff\xfe\x00" in dead_letter_payloads(server)


def test_a_payload_naming_another_node_is_refused(server, probe, new_node):
    node, other = new_node(), new_node()
    device = probe(node)
    device.subscribe(topic(node, Channel.ACK))
    device.publish(topic(node, Channel.EVENTS), batch_of(other, 1).to_json())
    good = batch_of(node, 3)
    device.publish(topic(node, Channel.EVENTS), good.to_json())
    assert Ack.model_validate_json(device.next().payload).ids == [good.events[0].id]
    assert stored_events(server, other) == []
    assert errors(server)[(node, "wrong-node")] == 1


def test_taps_during_a_broker_outage_arrive_after_it_returns(server, running_agent, new_node, broker):
    node = new_node()
    runner = running_agent(node)
    eventually(lambda: runner.call(lambda: runner.agent.link.connected))
    broker.stop()
    eventually(lambda: not runner.call(lambda: runner.agent.link.connected))
    for code in ("KEY_KP1", "KEY_KP3", "KEY_KP5"):
        press(runner, code)
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 3)
    broker.start()
    rows = eventually(lambda: (r := stored_events(server, node)) and len(r) == 3 and r)
    assert [r.rating for r in rows] == [1, 3, 5]
    eventually(lambda: runner.call(runner.agent.outbox.pending) == 0)


def test_a_retired_node_clearing_its_status_is_not_a_refusal(server, probe, new_node):
    node = new_node()
    device = probe(node)
    device.publish(topic(node, Channel.STATUS), b'{"v": "1.0", "node": "%s", "state": "online"}' % node.encode(), retain=True)
    eventually(lambda: (row := node_row(server, node)) and row.state == "online")
    device.publish(topic(node, Channel.STATUS), b"", retain=True)
    eventually(lambda: node_row(server, node).state == "retired")
    assert not any(n == node for n, _ in errors(server))
