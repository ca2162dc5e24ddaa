"""Benchmarks (`make bench`): numbers are printed and written down in
docs/benchmarks.md, never asserted against a clock."""

from __future__ import annotations

import time
import uuid
from datetime import datetime, timezone

import pytest

from agent.outbox import Outbox
from rpfleet.protocol import Channel, topic
from rpfleet.protocol.messages import Event, EventBatch, RatingTap
from tests.conftest import NODE_POOL
from tests.system.helpers import stored_events

pytestmark = pytest.mark.bench


def test_outbox_durable_record_rate(tmp_path, capsys):
    n = 2000
    with Outbox(tmp_path / "outbox.sqlite") as box:
        started = time.perf_counter()
        for _ in range(n):
            box.record(RatingTap(pad="p", rating=5, scale=5), datetime.now(timezone.utc))
        elapsed = time.perf_counter() - started
        assert box.pending() == n
    with capsys.disabled():
        print(f"\noutbox: {n} durable records in {elapsed:.2f}s = {n / elapsed:.0f}/s, "
              f"{elapsed / n * 1000:.2f} ms each (synchronous=FULL)")


def test_server_ingest_rate(server, probe, capsys):
    nodes = NODE_POOL[-10:]
    per_node_batches, batch_size = 20, 100
    clients = {node: probe(node) for node in nodes}
    for node, client in clients.items():
        client.subscribe(topic(node, Channel.ACK))
    batches = {
        node: [
            EventBatch(node=node, events=[
                Event(id=uuid.uuid4().hex, seq=b * batch_size + i + 1, at=datetime.now(timezone.utc),
                      detail=RatingTap(pad="p", rating=1 + i % 5, scale=5))
                for i in range(batch_size)
            ]).to_json()
            for b in range(per_node_batches)
        ]
        for node in nodes
    }
    total = len(nodes) * per_node_batches * batch_size
    started = time.perf_counter()
    for b in range(per_node_batches):
        for node, client in clients.items():
            client.client.publish(topic(node, Channel.EVENTS), batches[node][b], qos=1)
    for client in clients.values():
        for _ in range(per_node_batches):
            client.next(timeout=120)
    elapsed = time.perf_counter() - started
    assert sum(len(stored_events(server, n)) for n in nodes) == total
    with capsys.disabled():
        print(f"\nserver ingest: {total} events from {len(nodes)} nodes stored and acked in "
              f"{elapsed:.2f}s = {total / elapsed:.0f} events/s "
              f"({server.ingest.stats.commits} commits)")
