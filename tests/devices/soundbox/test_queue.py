"""The soundbox queue's rules, with a clock the test turns: order, no starvation, merging,
expiry, nothing cut, redeliveries."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devices.soundbox.queue import (
    AnnouncementQueue,
    Duplicate,
    Expired,
    Merged,
    Queued,
    Refused,
)
from rpfleet.protocol.messages import Announce

T0 = datetime(2025, 3, 14, 8, 0, tzinfo=timezone.utc)
_ids = itertools.count(1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


def call(ticket: str, counter: str = "5", *, ttl: float = 120, id: str | None = None,
         clock: Clock | None = None) -> Announce:
    now = clock.now if clock else T0
    return Announce(id=id or f"call-{next(_ids)}", kind="queue-call", ticket=ticket, counter=counter,
                    expires_at=now + timedelta(seconds=ttl))


def payment(amount: int, counter: str = "2", *, ttl: float = 120, clock: Clock | None = None) -> Announce:
    now = clock.now if clock else T0
    return Announce(id=f"pay-{next(_ids)}", kind="payment", amount_vnd=amount, counter=counter,
                    expires_at=now + timedelta(seconds=ttl))


def other(kind: str, *, clock: Clock | None = None, **fields) -> Announce:
    now = clock.now if clock else T0
    return Announce(id=f"{kind}-{next(_ids)}", kind=kind, expires_at=now + timedelta(seconds=120),
                    **fields)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def queue(clock: Clock) -> AnnouncementQueue:
    return AnnouncementQueue(clock, merge_window_s=10, max_pending=20)


def say_all(queue: AnnouncementQueue) -> list[str]:
    """Take and finish everything waiting; the ids in the order they were said."""
    said = []
    while (entry := queue.take().entry) is not None:
        said.append(entry.id)
        queue.finished()
    return said


# -- order and turns ---------------------------------------------------------------------


def test_queue_calls_are_said_in_the_order_they_came(queue):
    calls = [call(str(t), counter) for t, counter in ((1021, "5"), (1022, "3"), (1023, "5"), (7, "1"))]
    for announce in calls:
        assert queue.offer(announce) == Queued(announce.id)

    assert say_all(queue) == [a.id for a in calls]


def test_nothing_is_handed_out_while_one_is_playing_however_urgent(queue, clock):
    first = call("1021")
    queue.offer(first)
    assert queue.take().entry.id == first.id

    urgent = [payment(50_000), other("identify", counter="5"), call("1022")]
    for announce in urgent:
        queue.offer(announce)
    clock.advance(30)
    assert queue.take().entry is None, "the call being said is never cut"
    assert queue.playing.id == first.id

    assert queue.finished().id == first.id
    assert queue.take().entry.id == urgent[1].id, "then the technician's identify"


def test_a_payment_waits_for_at_most_one_call_of_a_long_run(queue, clock):
    calls = [call(str(1000 + n)) for n in range(6)]
    for announce in calls[:4]:
        queue.offer(announce)
    said = [queue.take().entry.id]  # the first call is being said when the payment comes
    paid = payment(150_000)
    queue.offer(paid)
    for announce in calls[4:]:
        queue.offer(announce)
    queue.finished()

    said += say_all(queue)

    assert said == [calls[0].id, paid.id, *[c.id for c in calls[1:]]]


def test_calls_and_payments_take_turns_while_both_wait(queue):
    calls = [call(str(n)) for n in range(1, 4)]
    payments = [payment(10_000 * n) for n in range(1, 4)]
    queue.offer(calls[0])
    for announce in (*payments, *calls[1:]):
        queue.offer(announce)

    assert say_all(queue) == [calls[0].id, payments[0].id, calls[1].id, payments[1].id,
                              calls[2].id, payments[2].id]


def test_a_run_of_payments_does_not_hold_up_the_calls(queue):
    payments = [payment(5_000 * n) for n in range(1, 6)]
    late_call = call("1024")
    for announce in (*payments[:3], late_call, *payments[3:]):
        queue.offer(announce)

    said = say_all(queue)

    assert said.index(late_call.id) == 1, said


def test_thank_you_goes_with_the_desk_and_text_with_the_hall(queue):
    thanks = other("thank-you", counter="5")
    text = other("text", text="xin mời quý vị giữ trật tự")
    first = call("1")
    for announce in (first, text, thanks):
        queue.offer(announce)

    assert say_all(queue) == [first.id, thanks.id, text.id]


def test_test_and_identify_go_before_everything_waiting(queue):
    waiting = [call("1"), payment(20_000), call("2")]
    for announce in waiting:
        queue.offer(announce)
    identify, test = other("identify", counter="5"), other("test")
    queue.offer(identify)
    queue.offer(test)

    said = say_all(queue)

    assert said[:2] == [identify.id, test.id]


ops = st.lists(st.sampled_from(["call", "payment", "take", "finish"]), max_size=60)


@settings(max_examples=300)
@given(ops)
def test_property_calls_keep_their_order_and_payments_take_turns_with_them(steps):
    clock = Clock()
    queue: AnnouncementQueue = AnnouncementQueue(clock, merge_window_s=0, max_pending=1000)
    said: list[Announce] = []
    by_id: dict[str, Announce] = {}
    arrived: dict[str, int] = {}
    for n, step in enumerate(steps + ["finish", "take"] * 70):
        clock.advance(0.5)
        if step in ("call", "payment"):
            announce = call(str(n), clock=clock) if step == "call" else payment(1000 + n, clock=clock)
            by_id[announce.id] = announce
            arrived[announce.id] = len(said) + (queue.playing is not None)
            assert queue.offer(announce) == Queued(announce.id)
        elif step == "take":
            entry = queue.take().entry
            if entry is not None:
                said.append(by_id[entry.id])
        elif queue.playing is not None:
            queue.finished()
    assert len(said) == len(by_id), "everything offered is said once"
    tickets = [int(a.ticket) for a in said if a.kind == "queue-call"]
    assert tickets == sorted(tickets), "calls in the order they came"
    for place, announce in enumerate(said):
        # What began after it came and before it: calls and payments take turns.
        passed_by = [a.kind for a in said[arrived[announce.id]:place]]
        own, others = announce.kind, {"payment": "queue-call", "queue-call": "payment"}[announce.kind]
        assert passed_by.count(others) <= passed_by.count(own) + 1, (announce.id, [a.id for a in said])


# -- merging repeats ------------------------------------------------------------------------


def test_a_repeat_while_waiting_is_merged_into_the_first_and_keeps_its_place(queue, clock):
    first, between = call("1023"), call("1024")
    queue.offer(first)
    queue.offer(between)
    clock.advance(3)
    repeat = call("1023", ttl=300, clock=clock)

    assert queue.offer(repeat) == Merged(repeat.id, first.id)
    assert queue.pending_count() == 2
    assert say_all(queue) == [first.id, between.id]


def test_a_merged_repeat_keeps_the_first_alive_until_the_later_expiry(queue, clock):
    blocking, first = call("1"), call("1023", ttl=10)
    queue.offer(blocking)
    queue.take()
    queue.offer(first)
    clock.advance(5)
    queue.offer(call("1023", ttl=60, clock=clock))
    clock.advance(20)  # past the first's own expiry
    queue.finished()

    assert queue.take().entry.id == first.id


def test_a_repeat_while_it_is_being_said_is_merged(queue, clock):
    first = call("1023")
    queue.offer(first)
    queue.take()
    clock.advance(2)
    repeat = call("1023", clock=clock)

    assert queue.offer(repeat) == Merged(repeat.id, first.id, None)
    assert "waiting or being said" in queue.offer(call("1023", clock=clock)).reason


def test_a_repeat_within_the_window_after_it_was_said_is_merged(queue, clock):
    first = call("1023")
    queue.offer(first)
    queue.take()
    clock.advance(6)
    queue.finished()
    clock.advance(4)
    repeat = call("1023", clock=clock)

    merged = queue.offer(repeat)

    assert merged == Merged(repeat.id, first.id, 4.0)
    assert merged.reason == f"a repeat of {first.id}, said 4.0s ago"


def test_a_repeat_after_the_window_is_said_again(queue, clock):
    first = call("1023")
    queue.offer(first)
    queue.take()
    queue.finished()
    clock.advance(10)
    again = call("1023", clock=clock)

    assert queue.offer(again) == Queued(again.id)


def test_a_repeat_of_one_that_was_not_said_is_said(queue, clock):
    first = call("1023")
    queue.offer(first)
    queue.take()
    queue.finished(said=False)  # the speaker was gone
    again = call("1023", clock=clock)

    assert queue.offer(again) == Queued(again.id)


@pytest.mark.parametrize("second", [
    pytest.param(lambda: call("1023", "6"), id="other counter"),
    pytest.param(lambda: call("1032", "5"), id="other ticket"),
    pytest.param(lambda: payment(1023, "5"), id="other kind"),
])
def test_only_the_same_words_are_a_repeat(queue, second):
    queue.offer(call("1023", "5"))
    other_one = second()

    assert queue.offer(other_one) == Queued(other_one.id)


def test_payments_are_never_merged_two_citizens_may_pay_the_same_fee(queue, clock):
    first, second = payment(50_000), payment(50_000)
    queue.offer(first)
    assert queue.offer(second) == Queued(second.id)
    assert say_all(queue) == [first.id, second.id]


def test_a_repeated_thank_you_is_merged(queue, clock):
    first = other("thank-you", counter="5")
    queue.offer(first)
    again = other("thank-you", counter="5")

    assert queue.offer(again) == Merged(again.id, first.id)


# -- expiry ----------------------------------------------------------------------------------


def test_an_announcement_expired_on_arrival_is_dropped_and_says_how_late(queue, clock):
    clock.advance(600)
    stale = call("1023")  # made at T0 with two minutes to live: the node was offline

    dropped = queue.offer(stale)

    assert dropped == Expired(stale.id, 480.0, True)
    assert dropped.announce is stale
    assert dropped.reason == "arrived 480.0s after it expired"
    assert queue.pending_count() == 0 and queue.take().entry is None


def test_expiry_is_exact_at_the_instant(queue, clock):
    clock.advance(120)
    assert isinstance(queue.offer(call("1023")), Expired)


def test_an_announcement_that_expires_while_waiting_is_dropped_and_reported_not_said(queue, clock):
    long_one, short_lived, fine = call("1"), call("2", ttl=5), call("3", ttl=60)
    for announce in (long_one, short_lived, fine):
        queue.offer(announce)
    assert queue.take().entry.id == long_one.id
    clock.advance(8)
    queue.finished()

    taken = queue.take()

    assert taken.entry.id == fine.id
    assert [(e.id, e.late_s, e.on_arrival) for e in taken.expired] == [(short_lived.id, 3.0, False)]
    assert taken.expired[0].reason == "was still waiting 3.0s after it expired"
    assert taken.expired[0].announce is short_lived


def test_an_announcement_that_expires_while_being_said_is_not_cut(queue, clock):
    short = call("1023", ttl=3)
    queue.offer(short)
    queue.take()
    clock.advance(7)

    assert queue.take() .expired == ()
    assert queue.finished().id == short.id


def test_next_expiry_and_drop_expired(queue, clock):
    assert queue.next_expiry() is None
    queue.offer(call("1", ttl=30))
    queue.offer(payment(1000, ttl=10))
    assert queue.next_expiry() == T0 + timedelta(seconds=10)
    clock.advance(15)
    assert [e.late_s for e in queue.drop_expired()] == [5.0]
    assert queue.pending_count() == 1


# -- redelivery, bounds, draining ----------------------------------------------------------


def test_a_redelivered_id_is_a_duplicate_before_and_after_it_was_said(queue, clock):
    first = call("1023", id="ann-1")
    assert queue.offer(first) == Queued("ann-1")
    assert queue.offer(first) == Duplicate("ann-1")
    queue.take()
    queue.finished()
    clock.advance(3600)
    assert queue.offer(call("1023", id="ann-1", clock=clock)) == Duplicate("ann-1")


def test_beyond_max_pending_a_new_one_is_refused(clock):
    queue: AnnouncementQueue = AnnouncementQueue(clock, max_pending=2)
    queue.offer(call("1"))
    queue.offer(call("2"))
    refused = queue.offer(call("3"))

    assert isinstance(refused, Refused)
    assert refused.reason == "2 announcements are waiting already"


def test_drain_empties_the_queue_in_the_order_it_would_be_said(queue):
    announces = [call("1"), call("2"), payment(1000), other("test")]
    for announce in announces:
        queue.offer(announce)

    drained = [entry.id for entry in queue.drain()]

    assert drained == [announces[3].id, announces[0].id, announces[2].id, announces[1].id]
    assert queue.pending_count() == 0
