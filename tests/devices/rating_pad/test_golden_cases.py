"""Golden cases: evtest captures -> real evdev.InputEvent -> key_event -> TapDecoder -> taps.

Each ``testcases/<scenario>/`` holds:
- ``input``: one pad's events in the layout evtest prints, or ``input.<pad>``
  once per pad when several pads share the node (evtest reads one device at a time);
- ``expected``: one line per tap in time order, ``<rating> <suspect reason or ->``,
  with the pad first (``<pad> <rating> <suspect>``) when there are several pads;
- ``pad.toml`` (optional): the pad's config, as in the agent's ``[[peripherals]]``.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from devices.rating_pad.config import RatingPadConfig
from devices.rating_pad.decoding import TapDecoder
from devices.rating_pad.evdev_adapter import key_event
from tests.devices.rating_pad.evtest_format import read_evtest

CASES = Path(__file__).parent / "testcases"
SCENARIOS = sorted(p.name for p in CASES.iterdir() if p.is_dir())


def pad_config(scenario: Path) -> RatingPadConfig:
    settings = tomllib.loads((scenario / "pad.toml").read_text()) if (scenario / "pad.toml").exists() else {}
    return RatingPadConfig(id=scenario.name, source="fake", **settings)


def decoded(scenario: Path) -> list[tuple[str, int, str]]:
    """(pad, rating, suspect or "-") for every tap of every pad, in time order."""
    config = pad_config(scenario)
    inputs = sorted(scenario.glob("input*"))
    assert inputs, f"{scenario.name} has no input"
    taps = []
    for path in inputs:
        pad = path.suffix.lstrip(".") or "-"
        decoder = TapDecoder(config.keys, config.bounce, config.misuse_limits())
        for raw in read_evtest(path):
            event = key_event(raw, config.keys)
            if event is not None and (tap := decoder.feed(event)):
                taps.append((tap.mono, pad, tap.rating, tap.suspect or "-"))
    return [(pad, rating, suspect) for _, pad, rating, suspect in sorted(taps)]


def expected(scenario: Path) -> list[tuple[str, int, str]]:
    several = len(list(scenario.glob("input.*"))) > 1
    rows = []
    for line in (scenario / "expected").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pad, rest = line.split(maxsplit=1) if several else ("-", line)
        rating, suspect = rest.split(maxsplit=1)
        rows.append((pad, int(rating), suspect))
    return rows


@pytest.mark.parametrize("scenario", SCENARIOS, ids=SCENARIOS)
def test_golden_case(scenario):
    assert decoded(CASES / scenario) == expected(CASES / scenario)


def test_cases_hold_scan_codes_like_real_keyboards():
    """Real HID keypads send MSC_SCAN before each key; the cases must not be cleaner than that."""
    from evdev import ecodes

    for scenario in SCENARIOS:
        for path in (CASES / scenario).glob("input*"):
            types = {raw.type for raw in read_evtest(path)}
            assert {ecodes.EV_MSC, ecodes.EV_KEY, ecodes.EV_SYN} <= types, path
