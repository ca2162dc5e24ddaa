import pytest
from hypothesis import given
from hypothesis import strategies as st

from fleet_server.satisfaction import is_satisfied, wilson_interval


@pytest.mark.parametrize(
    "rating, scale, satisfied",
    [(5, 5, True), (4, 5, True), (3, 5, False), (1, 5, False), (3, 4, True), (2, 4, False),
     (2, 3, True), (1, 3, False)],
    ids=lambda v: str(v),
)
def test_the_top_two_buttons_are_satisfied(rating, scale, satisfied):
    assert is_satisfied(rating, scale) is satisfied


@pytest.mark.parametrize(
    "satisfied, total, low, high",
    [
        # Checked by solving Wilson's quadratic (p̂ - p)² = z² p(1 - p) / n for p, independently.
        (81, 263, 0.2553, 0.3662),
        (0, 3, 0.0, 0.5615),
        (10, 10, 0.7225, 1.0),
        (950, 1000, 0.9347, 0.9619),
    ],
    ids=["textbook", "three-unhappy", "all-happy", "busy-branch"],
)
def test_wilson_interval_matches_reference_values(satisfied, total, low, high):
    lo, hi = wilson_interval(satisfied, total)
    assert lo == pytest.approx(low, abs=1e-4) and hi == pytest.approx(high, abs=1e-4)


def test_no_ratings_means_the_share_is_unknown():
    assert wilson_interval(0, 0) == (0.0, 1.0)


def test_impossible_counts_are_refused():
    with pytest.raises(ValueError, match="satisfied <= total"):
        wilson_interval(5, 3)


@given(st.integers(0, 10_000).flatmap(lambda n: st.tuples(st.integers(0, n), st.just(n))))
def test_the_interval_holds_the_observed_share_and_stays_in_0_1(counts):
    satisfied, total = counts
    lo, hi = wilson_interval(satisfied, total)
    assert 0.0 <= lo <= hi <= 1.0
    if total:
        assert lo - 1e-12 <= satisfied / total <= hi + 1e-12
