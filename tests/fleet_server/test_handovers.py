"""Handover records through the real broker into the server: stored once per id,
acked every time, refused payloads kept as dead letters (SQLite and PostgreSQL)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import sqlalchemy as sa

from fleet_server import store
from fleet_server.schema import handovers
from rpfleet.protocol import Channel, decode_as, topic
from rpfleet.protocol.messages import Ack
from tests.conftest import eventually
from tests.system.helpers import dead_letter_payloads, errors

HANOI = timezone(timedelta(hours=7))
STARTED = datetime(2026, 11, 25, 8, 10, tzinfo=HANOI)


def record(node: str, handover_id: str = "4f" * 16, **changes) -> dict:
    data = {
        "v": "1.3",
        "handover_id": handover_id,
        "node": node,
        "technician": "Trần Thị Bình",
        "started_at": STARTED.isoformat(),
        "finished_at": (STARTED + timedelta(minutes=4)).isoformat(),
        "results": [
            {"peripheral": "pad-1", "kind": "rating-pad", "passed": True,
             "seen": "ratings pressed: 1, 2, 3, 4, 5"},
            {"peripheral": "qr-1", "kind": "scanner", "passed": False,
             "seen": "nothing seen in 1m", "note": "cáp USB lỏng"},
        ],
    }
    data.update(changes)
    return data


def stored(server) -> list[sa.Row]:
    with server.engine.connect() as conn:
        return list(conn.execute(sa.select(handovers).order_by(handovers.c.id)))


def acks_for(node_probe, handover_id: str, count: int) -> list[Ack]:
    found = []
    while len(found) < count:
        message = node_probe.wait_for(lambda m: m.topic.endswith("/down/ack"))
        ack = decode_as(Ack, message.payload)
        if handover_id in ack.ids:
            found.append(ack)
    return found


def test_a_handover_is_stored_once_however_often_it_comes_and_acked_each_time(server, probe, new_node):
    node = new_node()
    with server.engine.begin() as conn:
        store.add_site(conn, "phuong-hang-bac", "Phường Hàng Bạc", "commune")
        store.assign_node(conn, node, "phuong-hang-bac", "1")
    as_node = probe(node)
    as_node.subscribe(topic(node, Channel.ACK))
    payload = json.dumps(record(node), ensure_ascii=False).encode()

    as_node.publish(topic(node, Channel.HANDOVER), payload)
    as_node.publish(topic(node, Channel.HANDOVER), payload)

    assert [a.ids for a in acks_for(as_node, "4f" * 16, 2)] == [["4f" * 16], ["4f" * 16]]
    [row] = stored(server)
    assert (row.handover_id, row.node_id, row.site_id, row.technician, row.passed) == (
        "4f" * 16, node, "phuong-hang-bac", "Trần Thị Bình", False
    )
    assert row.results[1] == {"peripheral": "qr-1", "kind": "scanner", "passed": False,
                              "seen": "nothing seen in 1m", "note": "cáp USB lỏng"}
    started = row.started_at if row.started_at.tzinfo else row.started_at.replace(tzinfo=timezone.utc)
    assert started == STARTED


def test_refused_handovers_become_dead_letters_and_are_not_acked(server, probe, new_node):
    node, other = new_node(), new_node()
    as_node = probe(node)
    as_node.subscribe(topic(node, Channel.ACK))
    bad = {
        "not-json": b"{handover",
        "schema": json.dumps(record(node, results=[{"peripheral": "pad-1"}])).encode(),
        "wrong-node": json.dumps(record(other, handover_id="5e" * 16)).encode(),
    }
    for payload in bad.values():
        as_node.publish(topic(node, Channel.HANDOVER), payload)
    good = json.dumps(record(node, handover_id="6d" * 16)).encode()
    as_node.publish(topic(node, Channel.HANDOVER), good)

    acks_for(as_node, "6d" * 16, 1)  # processed in order: the bad ones are done by now
    assert [row.handover_id for row in stored(server)] == ["6d" * 16]
    assert eventually(lambda: {r for (n, r) in errors(server) if n == node} == set(bad))
    assert set(bad.values()) <= set(dead_letter_payloads(server))
    assert as_node.messages.empty(), "nothing refused was acked"


def test_a_handover_before_started_is_refused(server, probe, new_node):
    node = new_node()
    as_node = probe(node)
    backwards = record(node, finished_at=(STARTED - timedelta(minutes=1)).isoformat())

    as_node.publish(topic(node, Channel.HANDOVER), json.dumps(backwards).encode())

    assert eventually(lambda: errors(server).get((node, "schema")) == 1)
    assert stored(server) == []
