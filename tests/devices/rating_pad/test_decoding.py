"""Golden cases for the tap decoder: testcases/<scenario>/input and expected."""

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from devices.rating_pad.config import DEFAULT_KEYS
from devices.rating_pad.decoding import KEY_DOWN, KEY_REPEAT, KEY_UP, KeyEvent, TapDecoder

CASES = Path(__file__).parent / "testcases"
VALUES = {"down": KEY_DOWN, "up": KEY_UP, "repeat": KEY_REPEAT}
KEYMAPS = {"three-button-fkeys": {"KEY_F1": 1, "KEY_F2": 2, "KEY_F3": 3}}
T0 = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)


def read_events(path: Path) -> list[KeyEvent]:
    events = []
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        mono, code, value = line.split()
        events.append(KeyEvent(code, VALUES[value], T0 + timedelta(seconds=float(mono)), float(mono)))
    return events


@pytest.mark.parametrize("scenario", sorted(p.name for p in CASES.iterdir()), ids=str)
def test_golden_case(scenario):
    decoder = TapDecoder(KEYMAPS.get(scenario, DEFAULT_KEYS), bounce_s=0.25)
    taps = [tap for e in read_events(CASES / scenario / "input") if (tap := decoder.feed(e))]
    expected = [int(x) for x in (CASES / scenario / "expected").read_text().split()]
    assert [t.rating for t in taps] == expected


def test_tap_keeps_the_time_of_the_key_down():
    decoder = TapDecoder(DEFAULT_KEYS, bounce_s=0.25)
    tap = decoder.feed(KeyEvent("KEY_KP5", KEY_DOWN, T0, 10.0))
    assert tap is not None and tap.at == T0
