"""Voice packs: the manifest's checks, composing each kind, coverage, and rendering real clips.

Composing and coverage need only the default pack's source. Rendering needs its clips, built
once per module with the real espeak-ng (installed by scripts/bootstrap).
"""

from __future__ import annotations

import array
import copy
import datetime as dt
import shutil
import tomllib
import wave
from itertools import pairwise
from typing import get_args

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.soundbox import numbers
from devices.soundbox.numbers import MAX_NUMBER, NORTHERN, SOUTHERN
from devices.soundbox.voice_pack import (
    DEFAULT_PACK_SOURCE,
    KINDS,
    MANIFEST,
    Announcement,
    ComposeError,
    MissingClips,
    VoicePack,
    VoicePackError,
    compose,
    coverage,
    gap_samples,
    load_pack,
    manifest_from_data,
    measure,
    missing_files,
    number_vocabulary,
    read_clip,
    read_wav,
    render,
    write_wav,
)
from rpfleet.protocol.messages import Announce

needs_espeak = pytest.mark.skipif(
    shutil.which("espeak-ng") is None,
    reason="espeak-ng is not installed (scripts/bootstrap installs the Debian package espeak-ng)",
)
SOURCE_DATA = tomllib.loads((DEFAULT_PACK_SOURCE / MANIFEST).read_text(encoding="utf-8"))
SOURCE = load_pack(DEFAULT_PACK_SOURCE)
RATE = SOURCE.info.sample_rate


def pack_with(change) -> VoicePack:
    """The default pack's source with ``change(data)`` applied to its manifest data."""
    data = copy.deepcopy(SOURCE_DATA)
    change(data)
    return VoicePack(DEFAULT_PACK_SOURCE, manifest_from_data(data))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> VoicePack:
    """The default pack, built with the real espeak-ng into a temporary folder."""
    if shutil.which("espeak-ng") is None:
        pytest.skip(
            "espeak-ng is not installed (scripts/bootstrap installs the Debian package espeak-ng)"
        )
    from provisioning.voice_pack_build import build_default_pack

    return load_pack(build_default_pack(tmp_path_factory.mktemp("vi-default")))


# -- the manifest ----------------------------------------------------------------------------


def test_kinds_are_the_wire_messages_kinds():
    assert KINDS == get_args(Announce.model_fields["kind"].annotation)


def test_the_default_source_loads_says_everything_and_has_no_audio():
    assert SOURCE.label == "vi-default 1.0.0"
    assert set(SOURCE.manifest.templates) == set(KINDS)
    assert SOURCE.info.styles == ("northern", "southern")
    assert coverage(SOURCE) == {}
    assert missing_files(SOURCE) == list(SOURCE.manifest.clips), "the source ships no WAVs"


def _set(path: str, value):
    def change(data):
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _drop(path: str):
    def change(data):
        *parents, last = path.split(".")
        node = data
        for key in parents:
            node = node[key]
        del node[last]

    return change


BAD_MANIFESTS = [
    ("unknown-top-key", _set("colour", "red"), r"colour: unknown key \(got 'red'\)"),
    ("unknown-clip-key", _set("clips.n1.volume", 3), r"clips\.n1\.volume: unknown key"),
    ("unknown-pack-key", _set("pack.speaker", "Lan"), r"pack\.speaker: unknown key"),
    ("24-bit", _set("pack.sample_bits", 24), r"pack\.sample_bits: Input should be 16 \(got 24\)"),
    ("stereo", _set("pack.channels", 2), r"pack\.channels: Input should be 1 \(got 2\)"),
    ("english", _set("pack.language", "en"), r"pack\.language: Input should be 'vi'"),
    ("odd-rate", _set("pack.sample_rate", 11111), r"pack\.sample_rate: Input should be 8000"),
    ("too-loud", _set("pack.loudness_dbfs", -3.0), r"pack\.loudness_dbfs: .*less than or equal"),
    ("no-rate", _drop("pack.sample_rate"), r"pack\.sample_rate: missing"),
    ("bad-version", _set("pack.version", "1.0"), r"pack\.version: String should match"),
    ("bad-style", _set("pack.styles", ["central"]), r"pack\.styles\[0\]: Input should be"),
    (
        "punctuation",
        _set("clips.n1.text", "một!"),
        r"clips\.n1\.text: 'một!': only letters and spaces",
    ),
    ("outside", _set("clips.n1.file", "clips/../../n1.wav"), r"clips\.n1\.file: .*inside the pack"),
    ("not-wav", _set("clips.n1.file", "clips/n1.mp3"), r"clips\.n1\.file: String should match"),
    ("clip-id", _set("clips.N 1", {"file": "x.wav", "text": "x"}), r"clips\.N 1"),
    (
        "said-twice",
        _set("clips.n2.text", "một"),
        r"clips\.n2\.text: 'một' is said by clip n1 already",
    ),
    (
        "one-file-twice",
        _set("clips.n2.file", "clips/n1.wav"),
        r"clips\.n2\.file: 'clips/n1\.wav' is clip n1's file already",
    ),
    (
        "free-text-in-payment",
        _set("templates.payment.default", ["đã nhận", "{text}"]),
        r"templates\.payment\.default\[1\]: \{text\} is not a slot of payment",
    ),
    (
        "name-slot",
        _set("templates.queue-call.default", ["mời", "{name}"]),
        r"\{name\} is not a slot of queue-call .*no slot ever reads a citizen's name",
    ),
    ("no-identify", _drop("templates.identify"), r"templates\.identify: missing"),
    (
        "no-default",
        _set("templates.test", {"loud": ["kiểm tra loa"]}),
        r"templates\.test: no 'default'",
    ),
    (
        "bad-phrase",
        _set("templates.thank-you.short", ["xin cảm ơn!"]),
        r"templates\.thank-you\.short: 'xin cảm ơn!': only letters",
    ),
    (
        "empty-wording",
        _set("templates.thank-you.short", []),
        r"templates\.thank-you\.short: an empty",
    ),
    ("bad-engine", _set("engine.rate_wpm", 20), r"engine\.rate_wpm: .*greater than or equal to 80"),
]


@pytest.mark.parametrize(
    "change, message", [case[1:] for case in BAD_MANIFESTS], ids=[case[0] for case in BAD_MANIFESTS]
)
def test_a_bad_manifest_is_refused_naming_the_field(change, message):
    with pytest.raises(VoicePackError, match=message):
        pack_with(change)


def test_every_problem_is_named_at_once():
    def change(data):
        data["pack"]["channels"] = 2
        data["clips"]["n1"]["peak"] = 0

    with pytest.raises(VoicePackError, match=r"pack\.channels: .*; clips\.n1\.peak: unknown key"):
        pack_with(change)


def test_the_manifest_model_is_frozen():
    with pytest.raises(Exception, match="frozen"):
        SOURCE.manifest.pack.id = "other"  # type: ignore[misc]


def test_a_broken_or_absent_manifest_names_the_file(tmp_path):
    with pytest.raises(VoicePackError, match=r"manifest\.toml: cannot read the manifest"):
        load_pack(tmp_path)
    (tmp_path / MANIFEST).write_text("[pack]\nid = = 'x'\n", encoding="utf-8")
    with pytest.raises(VoicePackError, match=rf"{tmp_path}/manifest\.toml: not valid TOML.*line 2"):
        load_pack(tmp_path)


def test_texts_are_matched_in_nfc_lowercase():
    pack = pack_with(_set("clips.n1.text", "  MO\u0323\u0302T "))  # decomposed, upper case
    assert pack.manifest.clips["n1"].text == "một"


# -- composing -------------------------------------------------------------------------------

CALL = ["call-intro"]
TO = ["to-counter"]
COMPOSED = [
    (
        "call-1023-to-5",
        Announcement("queue-call", ticket="1023", counter="5"),
        {},
        CALL + ["n1", "thousand", "n0", "hundred", "n2", "tens", "n3"] + TO + ["n5"],
    ),
    (
        "call-1023-southern",
        Announcement("queue-call", ticket="1023", counter="24"),
        {"style": "southern"},
        CALL
        + ["n1", "thousand-south", "n0", "hundred", "n2", "tens", "n3"]
        + TO
        + ["n2", "tens", "four-after-tens"],
    ),
    (
        "call-105-to-15",
        Announcement("queue-call", ticket="105", counter="15"),
        {},
        CALL + ["n1", "hundred", "zero-tens", "n5"] + TO + ["ten", "five-after-ten"],
    ),
    (
        "call-105-southern",
        Announcement("queue-call", ticket="105", counter="21"),
        {"style": SOUTHERN},
        CALL + ["n1", "hundred", "zero-tens-south", "n5"] + TO + ["n2", "tens", "one-after-tens"],
    ),
    (
        "call-digits",
        Announcement("queue-call", ticket="0045", counter="12"),
        {"ticket_reading": "digits"},
        CALL + ["n0", "n0", "n4", "n5"] + TO + ["ten", "n2"],
    ),
    (
        "call-leading-zeros-as-number",
        Announcement("queue-call", ticket="0045", counter="1"),
        {},
        CALL + ["n4", "tens", "five-after-ten"] + TO + ["n1"],
    ),
    (
        "call-priority",
        Announcement("queue-call", ticket="7", counter="3"),
        {"variant": "priority"},
        ["call-intro-priority", "n7", "to-counter", "n3"],
    ),
    (
        "call-repeat",
        Announcement("queue-call", ticket="7", counter="3"),
        {"variant": "repeat"},
        ["call-repeat", "call-intro", "n7", "to-counter", "n3"],
    ),
    (
        "paid-50000",
        Announcement("payment", amount_vnd=50_000),
        {},
        ["received", "n5", "tens", "thousand", "dong"],
    ),
    (
        "paid-1250000",
        Announcement("payment", amount_vnd=1_250_000),
        {},
        ["received", "n1", "million", "n2", "hundred", "n5", "tens", "thousand", "dong"],
    ),
    (
        "paid-1250000-fee-southern",
        Announcement("payment", amount_vnd=1_250_000),
        {"style": "southern", "variant": "fee"},
        ["received-fee", "n1", "million", "n2", "hundred", "n5", "tens", "thousand-south", "dong"],
    ),
    (
        "paid-0-thanks",
        Announcement("payment", amount_vnd=0),
        {"variant": "thanks"},
        ["received", "n0", "dong", "thanks"],
    ),
    (
        "paid-2-billion",
        Announcement("payment", amount_vnd=2_000_000_001),
        {},
        ["received", "n2", "billion", "n0", "hundred", "zero-tens", "n1", "dong"],
    ),
    ("thank-you", Announcement("thank-you"), {}, ["thank-you-rating"]),
    ("thank-you-short", Announcement("thank-you", counter="4"), {"variant": "short"}, ["thanks"]),
    ("test", Announcement("test"), {}, ["speaker-test", "n1", "n2", "n3"]),
    ("identify", Announcement("identify", counter="30"), {}, ["identify-intro", "n3", "tens"]),
    (
        "text-phrases-first",
        Announcement("text", text="Đã nhận lệ phí 10 đồng, xin cảm ơn!"),
        {},
        ["received-fee", "ten", "dong", "thanks"],
    ),
]


@pytest.mark.parametrize(
    "announce, options, expected",
    [case[1:] for case in COMPOSED],
    ids=[case[0] for case in COMPOSED],
)
def test_composes(announce, options, expected):
    assert compose(announce, SOURCE, **options) == expected


def test_composes_the_wire_message():
    wire = Announce(
        id="a-1",
        kind="queue-call",
        ticket="1023",
        counter="5",
        expires_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
    )
    assert compose(wire, SOURCE) == compose(
        Announcement("queue-call", ticket="1023", counter="5"), SOURCE
    )


def test_the_words_of_a_number_are_its_reading():
    for amount in (50_000, 1_250_000, 999_999_999_999, 1_000_005):
        ids = compose(Announcement("payment", amount_vnd=amount), SOURCE, NORTHERN)
        said = " ".join(SOURCE.manifest.clips[clip_id].text for clip_id in ids)
        assert said == f"đã nhận {numbers.read_amount(amount)}"


def test_prefers_a_whole_phrase_and_falls_back_to_words():
    def change(data):
        data["clips"]["twenty"] = {"file": "clips/twenty.wav", "text": "hai mươi"}
        del data["clips"]["to-counter"]
        for number, word in enumerate(("đến", "quầy", "số")):
            data["clips"][f"w{number}"] = {"file": f"clips/w{number}.wav", "text": word}

    pack = pack_with(change)
    ids = compose(Announcement("queue-call", ticket="25", counter="2"), pack)
    texts = [pack.manifest.clips[clip_id].text for clip_id in ids]
    assert texts == ["mời công dân có số thứ tự", "hai mươi", "lăm", "đến", "quầy", "số", "hai"]


COMPOSE_ERRORS = [
    (
        "no-ticket",
        Announcement("queue-call", counter="5"),
        {},
        r"queue-call announcement needs its ticket",
    ),
    ("no-amount", Announcement("payment"), {}, r"payment announcement needs its amount"),
    (
        "letter-ticket",
        Announcement("queue-call", ticket="A12", counter="5"),
        {},
        r"ticket 'A12' cannot be read aloud: only digits",
    ),
    ("named-counter", Announcement("identify", counter="cashier-2"), {}, r"counter 'cashier-2'"),
    (
        "unknown-variant",
        Announcement("queue-call", ticket="1", counter="1"),
        {"variant": "vip"},
        r"has no 'vip' wording for queue-call \(it has default, priority, repeat\)",
    ),
    ("unknown-kind", Announcement("sing"), {}, r"unknown announcement kind 'sing'"),
    (
        "unknown-style",
        Announcement("test"),
        {"style": "central"},
        r"unknown reading style 'central'",
    ),
    (
        "too-much",
        Announcement("payment", amount_vnd=10**12),
        {},
        r"amount 1,000,000,000,000 is above",
    ),
    ("negative", Announcement("payment", amount_vnd=-5), {}, r"amount -5 is not a whole number"),
    ("separators", Announcement("text", text="đã nhận 50.000 đồng"), {}, r"without separators"),
    (
        "words-missing",
        Announcement("text", text="mời anh Nguyễn Văn A"),
        {},
        r"has no clip for 'mời', 'anh', 'nguyễn', 'văn', 'a'",
    ),
]


@pytest.mark.parametrize(
    "announce, options, message",
    [case[1:] for case in COMPOSE_ERRORS],
    ids=[case[0] for case in COMPOSE_ERRORS],
)
def test_refuses_what_it_cannot_say(announce, options, message):
    with pytest.raises(ComposeError, match=message):
        compose(announce, SOURCE, **options)


def test_a_missing_clip_is_named():
    pack = pack_with(_drop("clips.billion"))
    with pytest.raises(
        MissingClips, match=r"voice pack vi-default 1\.0\.0 has no clip for 'tỷ'"
    ) as caught:
        compose(Announcement("payment", amount_vnd=3_000_000_000), pack)
    assert caught.value.words == ("tỷ",)
    assert compose(
        Announcement("payment", amount_vnd=3_000_000), pack
    )  # smaller amounts still work


# -- coverage --------------------------------------------------------------------------------


def test_coverage_finds_a_removed_number_word_in_the_style_that_needs_it():
    assert coverage(pack_with(_drop("clips.zero-tens-south"))) == {"lẻ": ["numbers (southern)"]}
    assert coverage(pack_with(_drop("clips.n7"))) == {
        "bảy": ["numbers (northern)", "numbers (southern)"]
    }
    northern_only = pack_with(
        lambda d: (d["pack"].update(styles=["northern"]), d["clips"].pop("zero-tens-south"))
    )
    assert coverage(northern_only) == {}


def test_coverage_finds_a_removed_phrase_word_by_word():
    missing = coverage(pack_with(_drop("clips.to-counter")))
    assert missing == {
        word: [
            "template queue-call/default",
            "template queue-call/priority",
            "template queue-call/repeat",
        ]
        for word in ("đến", "quầy", "số")
    }


def test_coverage_needs_dong_only_when_a_template_reads_an_amount():
    assert coverage(pack_with(_drop("clips.dong"))) == {
        "đồng": ["numbers (northern)", "numbers (southern)"]
    }

    def no_amounts(data):
        data["templates"]["payment"] = {"default": ["đã nhận"]}
        del data["clips"]["dong"]

    assert coverage(pack_with(no_amounts)) == {}


def test_coverage_follows_the_packs_largest_number():
    def small(data):
        data["pack"]["max_number"] = 999
        for clip_id in ("thousand", "thousand-south", "million", "billion"):
            del data["clips"][clip_id]

    assert coverage(pack_with(small)) == {}
    assert "nghìn" in coverage(pack_with(lambda d: (small(d), d["pack"].update(max_number=1000))))


@pytest.mark.parametrize("largest", [0, 9, 10, 14, 15, 20, 21, 24, 100, 101, 999, 1000, 1005, 2100])
@pytest.mark.parametrize("style", [NORTHERN, SOUTHERN], ids=["northern", "southern"])
def test_number_vocabulary_is_exactly_the_words_of_every_number_up_to_the_largest(largest, style):
    every = set(numbers.DIGIT_WORDS)
    for number in range(largest + 1):
        every.update(numbers.read_number(number, style).split())
    assert number_vocabulary(largest, style) == every


@given(st.integers(min_value=0, max_value=MAX_NUMBER), st.sampled_from([NORTHERN, SOUTHERN]))
def test_every_reading_keeps_to_the_vocabulary(number, style):
    assert set(numbers.read_number(number, style).split()) <= number_vocabulary(MAX_NUMBER, style)


def test_the_whole_vocabulary():
    assert number_vocabulary(MAX_NUMBER, NORTHERN) == {
        *numbers.DIGIT_WORDS,
        "mười",
        "mươi",
        "mốt",
        "lăm",
        "linh",
        "trăm",
        "nghìn",
        "triệu",
        "tỷ",
    }
    assert number_vocabulary(MAX_NUMBER, SOUTHERN) == {
        *numbers.DIGIT_WORDS,
        "mười",
        "mươi",
        "mốt",
        "lăm",
        "tư",
        "lẻ",
        "trăm",
        "ngàn",
        "triệu",
        "tỷ",
    }


# -- rendering (real clips) ------------------------------------------------------------------


def expected_samples(ids: list[str], pack: VoicePack) -> int:
    texts = [pack.manifest.clips[clip_id].text for clip_id in ids]
    gaps = sum(gap_samples(a, b, pack.info) for a, b in pairwise(texts))
    return sum(len(read_clip(pack, clip_id)) for clip_id in ids) + gaps


def as_samples(pcm: bytes) -> array.array:
    samples = array.array("h")
    samples.frombytes(pcm)
    return samples


@needs_espeak
def test_render_is_the_clips_and_their_gaps_without_clipping(built):
    ids = compose(Announcement("queue-call", ticket="1023", counter="5"), built)
    samples = as_samples(render(ids, built))
    word, phrase = round(RATE * 0.080), round(RATE * 0.250)
    assert len(samples) == sum(len(read_clip(built, i)) for i in ids) + 3 * phrase + 6 * word
    assert len(samples) == expected_samples(ids, built)
    assert max(map(abs, samples)) < 32767 * 10 ** (-1 / 20), "a sample above -1 dBFS"
    level = measure(samples, RATE)
    assert level.peak_dbfs <= -1.0
    assert abs(level.rms_dbfs - built.info.loudness_dbfs) <= 1.0


@needs_espeak
def test_every_join_fades_to_silence(built):
    ids = ["n1", "n2", "to-counter", "n3"]
    samples = as_samples(render(ids, built))
    position = 0
    for before, after in zip(ids, ids[1:] + [None]):
        length = len(read_clip(built, before))
        assert samples[position] == 0 and samples[position + length - 1] == 0, before
        position += length
        if after:
            gap = gap_samples(
                built.manifest.clips[before].text, built.manifest.clips[after].text, built.info
            )
            assert not any(samples[position : position + gap])
            position += gap
    assert position == len(samples)


@needs_espeak
def test_every_rendered_clip_is_at_the_target_loudness(built):
    target = built.info.loudness_dbfs
    for clip_id, clip in built.manifest.clips.items():
        level = measure(read_clip(built, clip_id), RATE)
        assert abs(level.rms_dbfs - target) <= 0.5, (clip_id, level)
        assert level.peak_dbfs <= built.info.peak_ceiling_dbfs, (clip_id, level)
        assert (clip.duration_ms, clip.peak_dbfs, clip.rms_dbfs) == (
            level.duration_ms,
            level.peak_dbfs,
            level.rms_dbfs,
        )
        assert 150 <= level.duration_ms <= 4000, (clip_id, level)


@needs_espeak
def test_render_refuses_unknown_missing_and_malformed_clips(built, tmp_path):
    with pytest.raises(VoicePackError, match="has no clip 'n10'"):
        render(["n1", "n10"], built)
    pack = load_pack(shutil.copytree(built.root, tmp_path / "pack"))
    pack.clip_path("n2").unlink()
    with pytest.raises(VoicePackError, match=r"clips/n2\.wav: missing \(build the pack"):
        render(["n1", "n2"], pack)
    with wave.open(str(pack.clip_path("n3")), "wb") as stereo:
        stereo.setnchannels(2)
        stereo.setsampwidth(2)
        stereo.setframerate(44100)
        stereo.writeframes(bytes(400))
    with pytest.raises(
        VoicePackError,
        match=r"n3\.wav: 44100 Hz, 2 channel\(s\), 16-bit; the pack takes "
        r"22050 Hz mono 16-bit",
    ):
        render(["n3"], pack)


SAMPLE_CALLS = [("1", "1"), ("15", "3"), ("105", "12"), ("1023", "5"), ("2024", "21")]


@needs_espeak
def test_five_sample_queue_calls(built, tmp_path):
    """Renders five calls to WAV; run with -s to see their durations."""
    print(
        f"\nsample queue calls ({built.label}, espeak-ng {built.manifest.engine.voice}, "
        f"{built.manifest.engine.rate_wpm} wpm, {RATE} Hz):"
    )
    for ticket, counter in SAMPLE_CALLS:
        ids = compose(Announcement("queue-call", ticket=ticket, counter=counter), built)
        path = tmp_path / f"call-{ticket}-to-{counter}.wav"
        write_wav(path, render(ids, built), RATE)
        samples, rate = read_wav(path, expect_rate=RATE)
        assert len(samples) == expected_samples(ids, built)
        words = " ".join(built.manifest.clips[i].text for i in ids)
        print(f"  {len(samples) / rate:5.2f} s  {path.name:<22} {words}")
