from datetime import datetime, timezone

import pytest

from agent.outbox import Outbox
from agent.sender import Sender
from rpfleet.protocol.messages import Ack, EventBatch, RatingTap

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=timezone.utc)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Broker:
    """Stands in for the link: records batches, or refuses while 'disconnected'."""

    def __init__(self) -> None:
        self.batches: list[EventBatch] = []
        self.connected = True

    def publish(self, batch: EventBatch) -> bool:
        if self.connected:
            self.batches.append(batch)
        return self.connected


@pytest.fixture
def parts(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        broker, clock = Broker(), Clock()
        sender = Sender(
            "n1", outbox, broker.publish, batch_size=2, live_slots=1, ack_timeout_s=10, clock=clock
        )
        yield outbox, broker, clock, sender


def record(outbox, n):
    return [outbox.record(RatingTap(pad="p", rating=5, scale=5), NOW) for _ in range(n)]


def ids(batch):
    return [e.id for e in batch.events]


def test_sends_oldest_first_one_batch_at_a_time(parts):
    outbox, broker, _, sender = parts
    events = record(outbox, 3)
    sender.pump()
    sender.pump()
    assert len(broker.batches) == 1
    assert ids(broker.batches[0]) == [e.id for e in events[:2]]
    assert broker.batches[0].node == "n1"


def test_ack_forgets_the_batch_and_sends_the_next(parts):
    outbox, broker, _, sender = parts
    events = record(outbox, 3)
    sender.pump()
    sender.acked(Ack(ids=ids(broker.batches[0])))
    assert ids(broker.batches[1]) == [events[2].id]
    assert outbox.pending() == 1


def test_partial_ack_keeps_waiting_for_the_rest(parts):
    outbox, broker, _, sender = parts
    events = record(outbox, 2)
    sender.pump()
    sender.acked(Ack(ids=[events[0].id]))
    assert len(broker.batches) == 1
    assert sender.in_flight == {events[1].id}


def test_unacked_batch_is_sent_again_after_the_timeout(parts):
    outbox, broker, clock, sender = parts
    record(outbox, 1)
    sender.pump()
    clock.now += 9.9
    sender.pump()
    assert len(broker.batches) == 1
    clock.now += 0.2
    sender.pump()
    assert len(broker.batches) == 2
    assert ids(broker.batches[0]) == ids(broker.batches[1])


def test_reconnect_sends_the_in_flight_batch_again_at_once(parts):
    outbox, broker, _, sender = parts
    record(outbox, 1)
    sender.pump()
    sender.reconnected()
    assert len(broker.batches) == 2


def test_nothing_is_lost_while_disconnected(parts):
    outbox, broker, _, sender = parts
    broker.connected = False
    record(outbox, 2)
    sender.pump()
    assert broker.batches == [] and sender.in_flight == frozenset()
    broker.connected = True
    sender.reconnected()
    assert len(broker.batches[0].events) == 2


def test_empty_outbox_sends_nothing(parts):
    _, broker, _, sender = parts
    sender.pump()
    assert broker.batches == []


def test_live_taps_ride_along_while_a_backlog_drains(tmp_path):
    with Outbox(tmp_path / "outbox.sqlite") as outbox:
        broker = Broker()
        sender = Sender("n1", outbox, broker.publish, batch_size=4, live_slots=1,
                        ack_timeout_s=10, clock=Clock())
        broker.connected = False
        backlog = record(outbox, 10)
        broker.connected = True
        sender.reconnected()
        live = record(outbox, 1)
        sender.acked(Ack(ids=ids(broker.batches[0])))
        assert ids(broker.batches[0]) == [e.id for e in backlog[:4]]
        assert ids(broker.batches[1]) == [e.id for e in backlog[4:7]] + [live[0].id]
        sender.acked(Ack(ids=ids(broker.batches[1])))
        sender.acked(Ack(ids=ids(broker.batches[2])))
        assert outbox.pending() == 0
        stored = [i for b in broker.batches for i in ids(b)]
        assert sorted(stored) == sorted(e.id for e in backlog + live)
