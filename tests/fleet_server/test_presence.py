"""The presence rules, pure: ordering by receive time, replays, talking, silence."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_server.presence import (
    OFFLINE,
    ONLINE,
    RETIRED,
    UNKNOWN,
    Presence,
    is_silent,
    may_sweep,
)

T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)
TIMEOUT = timedelta(seconds=45)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def test_a_will_committed_late_by_another_worker_does_not_hide_a_newer_online():
    # Worker A received the Will at 10 s, worker B the reconnect's online at 11 s; B commits first.
    p = Presence().status(ONLINE, at(11)).status(OFFLINE, at(10))
    assert p == Presence(ONLINE, at(11), at(11))


def test_a_will_received_after_the_online_takes_the_node_offline():
    p = Presence().status(ONLINE, at(0)).heard(at(30)).status(OFFLINE, at(75))
    assert p == Presence(OFFLINE, at(75), at(30))


def test_the_will_does_not_count_as_hearing_from_the_node():
    assert Presence().status(OFFLINE, at(5)).last_seen is None


def test_a_node_that_talks_after_its_will_is_online_again_and_keeps_the_will_time():
    p = Presence().status(ONLINE, at(0)).status(OFFLINE, at(20)).heard(at(21))
    assert p == Presence(ONLINE, at(20), at(21))
    # ... so the Will of the connection it talks on, received later, still applies:
    assert p.status(OFFLINE, at(90)).state == OFFLINE


def test_a_message_received_before_the_will_but_stored_after_it_revives_nothing():
    p = Presence().status(ONLINE, at(0)).status(OFFLINE, at(50)).heard(at(49))
    assert p.state == OFFLINE and p.last_seen == at(49)


def test_a_will_received_before_a_message_already_stored_leaves_the_node_online():
    p = Presence().status(ONLINE, at(0)).heard(at(21)).status(OFFLINE, at(20))
    assert p == Presence(ONLINE, at(20), at(21))


def test_a_replayed_online_fills_in_an_unknown_node_but_is_not_hearing_from_it():
    p = Presence().status(ONLINE, at(3), retained=True)
    assert p == Presence(ONLINE, at(3), None)


def test_a_replayed_online_does_not_bring_back_a_node_known_to_be_offline():
    gone = Presence().status(ONLINE, at(0)).status(OFFLINE, at(60))
    assert gone.status(ONLINE, at(500), retained=True) == gone


def test_a_replayed_offline_is_the_brokers_latest_word():
    p = Presence().status(ONLINE, at(0)).status(OFFLINE, at(500), retained=True)
    assert p == Presence(OFFLINE, at(500), at(0))


def test_a_node_heard_before_any_status_is_online():
    assert Presence().heard(at(1)) == Presence(ONLINE, None, at(1))


def test_a_retired_node_stays_retired_when_it_talks_until_it_says_online():
    retired = Presence().status(ONLINE, at(0)).status(RETIRED, at(10))
    assert retired.heard(at(11)).state == RETIRED
    assert retired.status(ONLINE, at(12)).state == ONLINE


@pytest.mark.parametrize(
    "presence, now, silent",
    [
        (Presence(ONLINE, at(0), at(30)), at(75), False),  # exactly the timeout: not yet
        (Presence(ONLINE, at(0), at(30)), at(75.001), True),
        (Presence(ONLINE, at(10), None), at(56), True),  # a replayed online, then nothing
        (Presence(OFFLINE, at(0), at(0)), at(999), False),
        (Presence(UNKNOWN), at(999), False),
        (Presence(RETIRED, at(0), at(0)), at(999), False),
    ],
    ids=["on-time", "overdue", "replay-only", "already-offline", "unknown", "retired"],
)
def test_silence(presence, now, silent):
    assert is_silent(presence, now, TIMEOUT) is silent
    swept = presence.silent(now, TIMEOUT)
    assert swept == (Presence(OFFLINE, presence.reference, presence.last_seen) if silent else presence)


def test_a_node_found_silent_is_offline_since_it_was_last_heard_and_back_when_it_talks():
    swept = Presence().status(ONLINE, at(0)).heard(at(30)).silent(at(80), TIMEOUT)
    assert swept == Presence(OFFLINE, at(30), at(30))
    assert swept.heard(at(81)).state == ONLINE
    assert swept.heard(at(30)).state == OFFLINE  # the same message delivered twice is not news


def test_silence_means_nothing_until_the_link_has_been_up_for_a_timeout():
    assert not may_sweep(None, 100.0, 45)
    assert not may_sweep(60.0, 100.0, 45)
    assert may_sweep(55.0, 100.0, 45)


# ---- any order of commits gives the same presence -------------------------

observations = st.lists(
    st.tuples(st.sampled_from(["online", "offline", "heard", "retired"]), st.integers(0, 10_000)),
    min_size=1, max_size=6, unique_by=lambda o: o[1],
)


def apply(p: Presence, observation: tuple[str, int]) -> Presence:
    what, seconds = observation
    return p.heard(at(seconds)) if what == "heard" else p.status(what, at(seconds))


@given(observations)
def test_workers_committing_in_any_order_agree(seen):
    outcomes = set()
    for order in itertools.permutations(seen):
        p = Presence()
        for o in order:
            p = apply(p, o)
        outcomes.add(p)
    assert len(outcomes) == 1


@given(observations)
def test_the_outcome_is_what_the_last_received_message_says(seen):
    p = Presence()
    for o in seen:
        p = apply(p, o)
    last_what, _ = max(seen, key=lambda o: o[1])
    statuses = [o for o in seen if o[0] != "heard"]
    if last_what in ("online", "heard") and not (statuses and max(statuses, key=lambda o: o[1])[0] == RETIRED):
        assert p.state == ONLINE
    elif last_what in ("offline", "retired"):
        assert p.state == last_what
