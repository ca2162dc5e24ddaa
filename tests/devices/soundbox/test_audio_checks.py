"""The measurements of tests/audio.py catch what they are there to catch: a lost head or tail,
a dropout, clipping, a missing gap, another sound. Checked on a real rendered call, cut and
spoilt on purpose, without a sound server."""

from __future__ import annotations

import numpy as np
import pytest

from devices.soundbox.voice_pack import Announcement, compose, render
from tests.audio import clip_joins, hear, pcm_samples


@pytest.fixture(scope="module")
def call(built_pack):
    clips = compose(Announcement("queue-call", ticket="1023", counter="5"), built_pack)
    return clips, pcm_samples(render(clips, built_pack)), built_pack.info.sample_rate


def recorded_as(expected: np.ndarray, rate: int, *, before_s=0.4, after_s=0.3, noise=3.0):
    """``expected`` inside silence, with a little noise, as a recording would have it."""
    rng = np.random.default_rng(7)
    out = np.concatenate([np.zeros(int(before_s * rate)), expected.astype(np.float64),
                          np.zeros(int(after_s * rate))])
    return np.clip(out + rng.normal(0, noise, out.size), -32768, 32767).astype(np.int16)


def test_the_whole_call_is_heard_with_its_gaps(call, built_pack):
    clips, expected, rate = call
    heard = hear(recorded_as(expected, rate), expected, rate, clip_joins(clips, built_pack))

    assert abs(heard.start_s - 0.4) < 1e-3
    assert heard.similarity > 0.999
    assert (heard.lost_head_ms, heard.lost_tail_ms, heard.lost_ms, heard.clipped) == (0, 0, 0, 0)
    assert len(heard.gap_dbfs) == len(clips) - 1 and max(heard.gap_dbfs) < -60


def test_a_joined_clip_sequence_has_its_gaps_where_render_puts_them(call, built_pack):
    clips, expected, rate = call
    for start, end in clip_joins(clips, built_pack):
        assert not expected[start:end].any(), "render leaves the joins silent"
    assert sum(end - start for start, end in clip_joins(clips, built_pack)) > 0.3 * rate


@pytest.mark.parametrize("cut_ms", [25, 37, 60])
def test_a_lost_tail_is_measured(call, cut_ms):
    _, expected, rate = call
    end = len(expected) - np.flatnonzero(expected[::-1])[0]  # the last sound
    cut = expected.copy()
    cut[end - rate * cut_ms // 1000:] = 0

    heard = hear(recorded_as(cut, rate), expected, rate)

    assert heard.lost_tail_ms >= cut_ms - 10, heard
    assert heard.lost_head_ms == 0


def test_a_lost_head_is_measured(call):
    _, expected, rate = call
    start = int(np.flatnonzero(expected)[0])
    cut = expected.copy()
    cut[: start + rate * 30 // 1000] = 0

    heard = hear(recorded_as(cut, rate), expected, rate)

    assert heard.lost_head_ms >= 20 and heard.lost_tail_ms == 0


def test_a_dropout_in_the_middle_is_measured(call):
    _, expected, rate = call
    cut = expected.copy()
    middle = len(cut) // 2 + int(np.argmax(np.abs(cut[len(cut) // 2:])))  # inside a word
    cut[middle - rate // 40:middle + rate // 40] = 0  # 50 ms of an underflow

    heard = hear(recorded_as(cut, rate), expected, rate)

    assert heard.lost_ms >= 20 and heard.lost_head_ms == heard.lost_tail_ms == 0


def test_clipping_is_counted(call):
    _, expected, rate = call
    loud = np.clip(expected.astype(np.int32) * 4, -32768, 32767).astype(np.int16)

    heard = hear(recorded_as(loud, rate, noise=0), expected, rate)

    assert heard.clipped > 100 and heard.peak_dbfs == 0.0


def test_a_filled_gap_is_seen(call, built_pack):
    clips, expected, rate = call
    joins = clip_joins(clips, built_pack)
    hum = expected.copy()
    start, end = joins[0]
    hum[start:end] = (3000 * np.sin(np.arange(end - start) / 5)).astype(np.int16)

    heard = hear(recorded_as(hum, rate), expected, rate, joins)

    assert heard.gap_dbfs[0] > -30 and max(heard.gap_dbfs[1:]) < -60


def test_another_announcement_does_not_pass_for_it(built_pack, call):
    _, expected, rate = call
    other = pcm_samples(render(compose(Announcement("queue-call", ticket="1024", counter="6"),
                                       built_pack), built_pack))

    heard = hear(recorded_as(other, rate), expected, rate)

    assert heard.similarity < 0.9
