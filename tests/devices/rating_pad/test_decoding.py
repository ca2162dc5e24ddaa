"""TapDecoder and MisuseWatch: the edges the golden cases do not spell out."""

from datetime import datetime, timezone

import pytest

from devices.rating_pad.config import DEFAULT_KEYS
from devices.rating_pad.decoding import KEY_DOWN, KeyEvent, TapDecoder
from devices.rating_pad.misuse import MisuseLimits, MisuseWatch

T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
LIMITS = MisuseLimits(burst_taps=5, burst_window=10, hammer_presses=4, hammer_window=10)


def down(code: str, mono: float) -> KeyEvent:
    return KeyEvent(code, KEY_DOWN, T0, mono)


def test_tap_keeps_the_time_and_stamp_of_the_key_down():
    decoder = TapDecoder(DEFAULT_KEYS, bounce_s=0.25)
    tap = decoder.feed(down("KEY_KP5", 10.0))
    assert tap is not None and (tap.rating, tap.at, tap.mono, tap.suspect) == (5, T0, 10.0, None)


@pytest.mark.parametrize(
    "second_press_after, is_a_new_tap",
    [(0.0, False), (0.249, False), (0.25, True), (-3600.0, True)],
    ids=["same-instant", "just-inside-bounce", "bounce-has-passed", "clock-went-back"],
)
def test_bounce_window_is_measured_from_the_last_tap(second_press_after, is_a_new_tap):
    decoder = TapDecoder(DEFAULT_KEYS, bounce_s=0.25)
    decoder.feed(down("KEY_KP5", 100.0))
    assert (decoder.feed(down("KEY_KP4", 100.0 + second_press_after)) is not None) is is_a_new_tap


def test_a_bounced_press_does_not_count_towards_misuse():
    decoder = TapDecoder(DEFAULT_KEYS, bounce_s=0.25, limits=LIMITS)
    taps = []
    for n in range(4):  # four taps of 1, each followed by a contact bounce
        taps.append(decoder.feed(down("KEY_KP1", n * 2.0)))
        assert decoder.feed(down("KEY_KP1", n * 2.0 + 0.01)) is None
    assert [t.suspect for t in taps] == [None, None, None, "hammered: rating 1 pressed 4 times in 10s"]


def judge_all(watch: MisuseWatch, taps: list[tuple[float, int]]) -> list[str | None]:
    return [watch.judge(rating, mono) for mono, rating in taps]


def test_a_burst_flags_the_tap_that_exceeds_the_limit_and_the_ones_after():
    verdicts = judge_all(MisuseWatch(LIMITS), [(t * 0.5, 1 + t % 5) for t in range(7)])
    assert verdicts == [None] * 5 + ["burst: 6 taps in 10s", "burst: 7 taps in 10s"]


def test_a_burst_ends_when_the_window_has_passed():
    verdicts = judge_all(MisuseWatch(LIMITS), [(t, 1 + t % 5) for t in range(6)] + [(15.5, 2)])
    assert verdicts[5] == "burst: 6 taps in 10s"
    assert verdicts[6] is None  # taps at 6..15.5 s: only 5 within the last 10 s


def test_hammering_needs_the_same_rating_in_a_row():
    no_bursts = MisuseLimits(burst_taps=100, burst_window=10, hammer_presses=4, hammer_window=10)
    ones_then_a_three = [(0, 1), (2, 1), (4, 1), (5, 3), (6, 1), (7, 1), (8, 1), (9, 1)]
    verdicts = judge_all(MisuseWatch(no_bursts), ones_then_a_three)
    assert verdicts == [None] * 7 + ["hammered: rating 1 pressed 4 times in 10s"]


def test_a_hammered_button_inside_a_burst_gets_both_reasons():
    limits = MisuseLimits(burst_taps=3, burst_window=60, hammer_presses=3, hammer_window=30)
    verdicts = judge_all(MisuseWatch(limits), [(0, 5), (1, 2), (2, 2), (3, 2)])
    assert verdicts == [
        None, None, None, "burst: 4 taps in 1m; hammered: rating 2 pressed 3 times in 30s"
    ]


def test_a_clock_that_went_back_starts_the_windows_afresh():
    watch = MisuseWatch(LIMITS)
    judge_all(watch, [(1000.0 + t, 1) for t in range(3)])
    assert watch.judge(1, 5.0) is None
