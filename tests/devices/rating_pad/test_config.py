"""RatingPadConfig: defaults that fit the pad, and errors that name the field."""

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.rating_pad import RatingPadConfig
from devices.rating_pad.misuse import MisuseLimits
from rpfleet.validation import error_lines

SAMPLE = Path(__file__).resolve().parents[3] / "devices" / "rating_pad" / "sample.toml"


def test_the_sample_config_is_valid():
    pads = [RatingPadConfig(**entry) for entry in tomllib.loads(SAMPLE.read_text())["peripherals"]]
    assert [(p.id, p.source, p.scale) for p in pads] == [
        ("pad-1", "evdev", 5), ("exit-pad", "serial", 5), ("pad-2", "evdev", 3)
    ]


@pytest.mark.parametrize(
    "settings, keys",
    [
        ({"source": "evdev", "device": "/dev/input/by-id/x"}, {f"KEY_KP{n}": n for n in range(1, 6)}),
        ({"source": "evdev", "device": "/dev/input/by-id/x", "scale": 3}, {"KEY_KP1": 1, "KEY_KP2": 2, "KEY_KP3": 3}),
        ({"source": "serial", "device": "/dev/serial/by-id/x"}, {f"BUTTON_{n}": n for n in range(1, 6)}),
        ({"source": "serial", "device": "/dev/serial/by-id/x", "scale": 4}, {f"BUTTON_{n}": n for n in range(1, 5)}),
    ],
    ids=["numpad", "numpad-3-buttons", "serial", "serial-4-buttons"],
)
def test_default_keys_fit_the_source_and_the_scale(settings, keys):
    assert RatingPadConfig(id="pad", **settings).keys == keys


def test_misuse_limits_default_and_parse_durations():
    assert RatingPadConfig(id="pad", source="fake").misuse_limits() == MisuseLimits(5, 10.0, 4, 10.0)
    config = RatingPadConfig(id="pad", source="fake", burst_window="2m", hammer_window="30s")
    assert (config.burst_window, config.hammer_window) == (120.0, 30.0)


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"keys": {"KEY_KP9": 9}}, "outside 1..5"),
        ({"scale": 3, "keys": {"KEY_KP4": 4}}, "outside 1..3"),
        ({"source": "evdev"}, "device or match is required when source is 'evdev'"),
        ({"source": "serial"}, "device or match is required when source is 'serial'"),
        ({"colour": "red"}, "colour"),
        ({"source": "evdev", "device": "/dev/input/event3"}, "device\n.*kernel name that changes on replug"),
        ({"source": "serial", "device": "/dev/ttyUSB0"}, "device\n.*/dev/serial/by-id/"),
        ({"baudrate": 9601}, "baudrate\n"),
        ({"burst_taps": 0}, "burst_taps\n"),
        ({"hammer_presses": 1}, "hammer_presses\n"),
        ({"burst_window": "soon"}, "burst_window\n.*'soon' is not a valid duration"),
        ({"bounce": "1s", "hammer_window": "500ms"}, "hammer_window\n.*500ms is not longer than bounce \\(1s\\)"),
    ],
    ids=[
        "rating-above-5", "rating-above-scale", "evdev-without-device", "serial-without-device",
        "unknown-key", "evdev-kernel-name", "serial-kernel-name", "odd-baudrate", "no-burst-taps",
        "hammer-of-one", "bad-duration", "window-inside-bounce",
    ],
)
def test_bad_pad_config_is_refused_naming_the_problem(overrides, message):
    with pytest.raises(ValidationError, match=message):
        RatingPadConfig(id="pad", source=overrides.pop("source", "fake"), **overrides)


def test_errors_read_as_field_and_reason():
    with pytest.raises(ValidationError) as refused:
        RatingPadConfig(id="pad", source="fake", hammer_presses=1, burst_window="soon")
    assert error_lines(refused.value) == [
        "burst_window: 'soon' is not a valid duration (use 30s, 5m, 1h or seconds)",
        "hammer_presses: 1: Input should be greater than or equal to 2",
    ]
