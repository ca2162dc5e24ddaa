"""Golden cases for the keyboard-wedge decoder: testcases/<scenario>/input (evtest
layout) and expected (one JSON read per line), fed through real evdev.InputEvent
objects and the evdev adapter's translation."""

from __future__ import annotations

import json
import string
import tomllib
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from devices.scanner.config import ScannerConfig
from devices.scanner.evdev_adapter import EvdevReader, key_event_from, key_name
from devices.scanner.reads import KEY_DOWN, KEY_REPEAT, KEY_UP, KeyEvent
from devices.scanner.wedge import WedgeDecoder
from tests.devices.scanner.evtest import read_evtest

CASES = Path(__file__).parent / "testcases"
SCENARIOS = sorted(p.name for p in CASES.iterdir() if (p / "input").is_file())
T0 = datetime(2026, 11, 25, 1, 0, tzinfo=timezone.utc)


def decoder_for(scenario: str) -> WedgeDecoder:
    path = CASES / scenario / "config.toml"
    overrides = tomllib.loads(path.read_text()) if path.is_file() else {}
    config = ScannerConfig(id="qr-1", source="fake", **overrides)
    return WedgeDecoder(config.terminator, config.timeout, config.max_length)  # type: ignore[arg-type]


def decode(scenario: str):
    decoder = decoder_for(scenario)
    reads = []
    for raw in read_evtest(CASES / scenario / "input"):
        event = key_event_from(raw, wall_minus_mono=0.0)
        if event is not None:
            reads += decoder.feed(event)
    return reads + decoder.expire(float("inf"))  # the reader falls silent after the capture


def test_every_scenario_has_an_expected_file():
    assert len(SCENARIOS) >= 9
    assert all((CASES / s / "expected").is_file() for s in SCENARIOS)


@pytest.mark.parametrize("scenario", SCENARIOS, ids=str)
def test_golden_case(scenario):
    expected = [json.loads(line) for line in (CASES / scenario / "expected").read_text().splitlines()]
    assert [{"code": r.code, "partial": r.partial} for r in decode(scenario)] == expected


def test_a_read_is_stamped_with_the_wall_time_of_its_first_key():
    partial, whole = decode("timeout-partial")
    assert partial.at == datetime(2024, 11, 25, 5, 20, tzinfo=timezone.utc)
    assert whole.at == datetime(2024, 11, 25, 5, 20, 1, 532000, tzinfo=timezone.utc)


# ---- typed in memory -------------------------------------------------------------------

SHIFTED = dict(zip('~!@#$%^&*()_+{}|:"<>?', "`1234567890-=[]\\;',./"))
KEYS = {
    **{c: f"KEY_{c.upper()}" for c in string.ascii_lowercase}, **{d: f"KEY_{d}" for d in string.digits},
    " ": "KEY_SPACE", "-": "KEY_MINUS", "=": "KEY_EQUAL", "[": "KEY_LEFTBRACE", "]": "KEY_RIGHTBRACE",
    "\\": "KEY_BACKSLASH", ";": "KEY_SEMICOLON", "'": "KEY_APOSTROPHE", "`": "KEY_GRAVE",
    ",": "KEY_COMMA", ".": "KEY_DOT", "/": "KEY_SLASH",
}


class Typist:
    """Types text as a reader would: key-down and key-up, Shift around shifted characters."""

    def __init__(self, start: float = 100.0, gap: float = 0.003) -> None:
        self.mono = start
        self.gap = gap
        self.events: list[KeyEvent] = []

    def key(self, code: str, value: int = KEY_DOWN) -> "Typist":
        self.events.append(KeyEvent(code, value, T0, self.mono))
        self.mono += self.gap
        return self

    def tap(self, code: str) -> "Typist":
        return self.key(code, KEY_DOWN).key(code, KEY_UP)

    def type(self, text: str) -> "Typist":
        for char in text:
            if char.isupper() or char in SHIFTED:
                self.key("KEY_LEFTSHIFT").tap(KEYS[char.lower()] if char.isalpha() else KEYS[SHIFTED[char]])
                self.key("KEY_LEFTSHIFT", KEY_UP)
            else:
                self.tap(KEYS[char])
        return self

    def pause(self, seconds: float) -> "Typist":
        self.mono += seconds
        return self


def feed_all(decoder: WedgeDecoder, events: list[KeyEvent]):
    return [read for event in events for read in decoder.feed(event)]


@given(st.text(alphabet=[chr(c) for c in range(0x20, 0x7F)], min_size=1, max_size=200))
def test_any_printable_ascii_code_comes_out_exactly(code):
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    reads = feed_all(decoder, Typist().type(code).tap("KEY_ENTER").events)
    assert [(r.code, r.partial) for r in reads] == [(code, False)]


def test_a_read_is_not_over_until_its_terminator_or_the_timeout():
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    typist = Typist(start=100.0).type("IHN-1")
    assert feed_all(decoder, typist.events) == []
    last_key = typist.events[-1].mono
    assert decoder.deadline() == pytest.approx(last_key + 0.5)
    assert decoder.expire(last_key + 0.49) == []
    [read] = decoder.expire(last_key + 0.5)
    assert (read.code, read.partial) == ("IHN-1", True)
    assert decoder.deadline() is None


def test_without_a_terminator_silence_ends_a_whole_read():
    decoder = WedgeDecoder("none", timeout_s=0.3)
    typist = Typist().type("8935049500018")
    feed_all(decoder, typist.events)
    [read] = decoder.expire(typist.mono + 1)
    assert (read.code, read.partial) == ("8935049500018", False)


def test_repeats_type_nothing_and_keep_a_held_key_from_ending_the_read():
    decoder = WedgeDecoder("enter", timeout_s=0.3)
    typist = Typist().key("KEY_A").pause(0.25).key("KEY_A", KEY_REPEAT).pause(0.2)
    typist.key("KEY_A", KEY_REPEAT).key("KEY_A", KEY_UP).type("b").tap("KEY_ENTER")
    assert [(r.code, r.partial) for r in feed_all(decoder, typist.events)] == [("ab", False)]


def test_keys_with_no_character_and_chords_show_as_damage_not_as_nothing():
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    typist = Typist().type("a").tap("KEY_F5").key("KEY_LEFTCTRL").tap("KEY_RIGHTBRACE")
    typist.key("KEY_LEFTCTRL", KEY_UP).type("b").tap("KEY_ENTER")
    [read] = feed_all(decoder, typist.events)
    assert read.code == "a\ufffd\ufffdb"


def test_a_key_pressed_twice_without_its_key_up_types_twice():
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    typist = Typist().key("KEY_7").key("KEY_7").key("KEY_7", KEY_UP).tap("KEY_ENTER")
    assert [r.code for r in feed_all(decoder, typist.events)] == ["77"]


def test_a_modifier_held_through_a_silence_no_longer_counts():
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    typist = Typist().key("KEY_LEFTSHIFT").pause(2.0).type("abc").tap("KEY_ENTER")
    assert [r.code for r in feed_all(decoder, typist.events)] == ["abc"]


def test_an_overlong_read_comes_in_partial_pieces_that_lose_nothing():
    decoder = WedgeDecoder("enter", timeout_s=0.5, max_length=16)
    code = "A1b2" * 10
    reads = feed_all(decoder, Typist().type(code).tap("KEY_ENTER").events)
    assert [len(r.code) for r in reads] == [16, 16, 8]
    assert "".join(r.code for r in reads) == code
    assert all(r.partial for r in reads)


def test_a_reader_that_goes_away_leaves_nothing_behind():
    decoder = WedgeDecoder("enter", timeout_s=0.5)
    feed_all(decoder, Typist().key("KEY_LEFTSHIFT").type("half").events)
    assert decoder.discard() == 4
    assert decoder.deadline() is None
    assert [r.code for r in feed_all(decoder, Typist(start=200).type("new").tap("KEY_ENTER").events)] == ["new"]


# ---- the evdev adapter's thin part -----------------------------------------------------

def test_only_key_events_and_sync_markers_reach_the_decoder():
    import evdev
    from evdev import ecodes

    scan = evdev.InputEvent(1732512000, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x70004)
    key = evdev.InputEvent(1732512000, 250000, ecodes.EV_KEY, ecodes.KEY_A, 1)
    dropped = evdev.InputEvent(1732512000, 0, ecodes.EV_SYN, ecodes.SYN_DROPPED, 0)
    assert key_event_from(scan, wall_minus_mono=0.0) is None
    event = key_event_from(key, wall_minus_mono=1732500000.0)
    assert (event.code, event.value, event.mono) == ("KEY_A", 1, pytest.approx(12000.25))
    assert event.at == datetime(2024, 11, 25, 5, 20, 0, 250000, tzinfo=timezone.utc)
    assert key_event_from(dropped, wall_minus_mono=0.0).code == "SYN_DROPPED"


def test_a_code_with_several_names_gets_the_one_that_is_a_key():
    from evdev import ecodes

    assert key_name(ecodes.KEY_MUTE) == "KEY_MUTE"
    assert key_name(ecodes.KEY_A) == "KEY_A"


@pytest.mark.parametrize("path", [None, "/dev/input/by-id/usb-no-such-reader-event-kbd"])
async def test_opening_a_reader_that_is_not_there_is_an_os_error(path):
    with pytest.raises(OSError):
        await EvdevReader().open(path)
