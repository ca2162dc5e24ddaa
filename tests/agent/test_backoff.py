"""agent.backoff: exponential back-off with full jitter."""

import random
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agent.backoff import Backoff


def ceilings(first: float, cap: float, count: int) -> list[float]:
    return [min(cap, first * 2**n) for n in range(count)]


def test_the_ceiling_doubles_until_the_cap():
    # With the rng pinned to its top, each wait is its ceiling.
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    backoff = Backoff(1, 20, rng=Top())
    assert [backoff.next() for _ in range(8)] == [1, 2, 4, 8, 16, 20, 20, 20]


def test_waits_are_jittered_and_stay_between_half_the_first_and_the_ceiling():
    first, cap = 2.0, 60.0
    runs = []
    for seed in range(50):
        backoff = Backoff(first, cap, rng=random.Random(seed))
        runs.append([backoff.next() for _ in range(10)])
    for run in runs:
        for wait, ceiling in zip(run, ceilings(first, cap, 10)):
            assert first / 2 <= wait <= ceiling
    # Same attempt number, different nodes: the waits differ.
    for attempt in range(1, 10):
        assert len({run[attempt] for run in runs}) == len(runs)


def test_a_seeded_rng_gives_the_same_waits_again():
    one, two = Backoff(1, 120, random.Random(42)), Backoff(1, 120, random.Random(42))
    assert [one.next() for _ in range(12)] == [two.next() for _ in range(12)]


def test_reset_starts_over_from_the_first_delay():
    class Top(random.Random):
        def uniform(self, a: float, b: float) -> float:
            return b

    backoff = Backoff(1, 120, rng=Top())
    for _ in range(6):
        backoff.next()
    assert backoff.next() == 64
    backoff.reset()
    assert [backoff.next() for _ in range(3)] == [1, 2, 4]


def test_waits_after_reset_are_bounded_by_the_first_ceiling_again():
    backoff = Backoff(1, 120, rng=random.Random(3))
    for _ in range(10):
        backoff.next()
    backoff.reset()
    assert 0.5 <= backoff.next() <= 1


@pytest.mark.parametrize(
    ("first", "cap", "lowest"),
    [(10, 1, 1), (4, 4, 2), (0.1, 0.15, 0.05)],
    ids=["cap-below-first-wins", "cap-equal-to-first", "cap-just-above-first"],
)
def test_the_cap_is_never_exceeded(first, cap, lowest):
    backoff = Backoff(first, cap, rng=random.Random(0))
    waits = [backoff.next() for _ in range(20)]
    assert all(lowest <= w <= cap for w in waits)
    assert max(waits[5:]) > (lowest + cap) / 2 or lowest == cap  # still jittered up to the cap


def test_attempts_far_beyond_the_cap_do_not_overflow():
    backoff = Backoff(1, 120, rng=random.Random(1))
    waits = [backoff.next() for _ in range(5000)]
    assert all(0.5 <= w <= 120 for w in waits)


@settings(database=None, deadline=None, max_examples=300)
@given(
    first=st.floats(min_value=0.01, max_value=1000, allow_nan=False, allow_infinity=False),
    factor=st.floats(min_value=1, max_value=10_000, allow_nan=False, allow_infinity=False),
    seed=st.integers(min_value=0, max_value=2**32),
    attempts=st.integers(min_value=1, max_value=60),
    reset_at=st.one_of(st.none(), st.integers(min_value=0, max_value=60)),
)
def test_every_wait_is_within_its_bounds(first, factor, seed, attempts, reset_at):
    cap = first * factor
    backoff = Backoff(first, cap, rng=random.Random(seed))
    since_reset = 0
    for n in range(attempts):
        if n == reset_at:
            backoff.reset()
            since_reset = 0
        ceiling = min(cap, first * 2**since_reset)
        wait = backoff.next()
        assert first / 2 <= wait <= ceiling, (n, wait, ceiling)
        since_reset += 1


def test_a_city_wide_outage_spreads_the_first_retries():
    """2000 nodes failed 7 times together; when the broker returns, their next
    attempts must not arrive in the same second."""
    nodes = 2000
    waits = []
    for node in range(nodes):
        backoff = Backoff(1, 120, rng=random.Random(node))
        for _ in range(7):
            backoff.next()
        waits.append(backoff.next())
    per_second = Counter(int(w) for w in waits)
    busiest_second, busiest = per_second.most_common(1)[0]
    assert busiest <= 0.05 * nodes, f"{busiest} nodes retry in second {busiest_second}"
    assert len(per_second) >= 100  # the retries cover most of the 0.5..120 s window
