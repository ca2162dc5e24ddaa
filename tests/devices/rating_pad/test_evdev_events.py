"""key_event: real evdev.InputEvent objects -> KeyEvent."""

from datetime import datetime, timezone

import pytest
from evdev import InputEvent, ecodes

from devices.rating_pad.decoding import KEY_DOWN, KEY_REPEAT, KeyEvent
from devices.rating_pad.evdev_adapter import EvdevKeypad, key_event

NUMPAD = {"KEY_KP1", "KEY_KP5"}


@pytest.mark.parametrize(
    "raw",
    [
        InputEvent(1732512000, 0, ecodes.EV_SYN, ecodes.SYN_REPORT, 0),
        InputEvent(1732512000, 0, ecodes.EV_MSC, ecodes.MSC_SCAN, 0x7005D),
        InputEvent(1732512000, 0, ecodes.EV_LED, ecodes.LED_NUML, 1),
    ],
    ids=["syn-report", "msc-scan", "numlock-led"],
)
def test_only_key_events_become_key_events(raw):
    assert key_event(raw, NUMPAD) is None


def test_a_key_event_keeps_code_value_and_the_kernel_stamp():
    raw = InputEvent(1732512000, 123456, ecodes.EV_KEY, ecodes.KEY_KP5, KEY_REPEAT)
    assert key_event(raw, NUMPAD) == KeyEvent(
        "KEY_KP5", KEY_REPEAT, datetime(2024, 11, 25, 5, 20, 0, 123456, timezone.utc), 1732512000.123456
    )


def test_the_monotonic_stamp_is_the_kernel_stamp_moved_by_the_offset():
    raw = InputEvent(1732512000, 500000, ecodes.EV_KEY, ecodes.KEY_KP1, KEY_DOWN)
    event = key_event(raw, NUMPAD, mono_offset_s=-1732500000.0)
    assert event.mono == pytest.approx(12000.5)
    assert event.at == datetime(2024, 11, 25, 5, 20, 0, 500000, timezone.utc)


@pytest.mark.parametrize(
    "key_map, name",
    [({"BTN_MISC"}, "BTN_MISC"), ({"BTN_0"}, "BTN_0"), (set(), "BTN_0")],
    ids=["map-says-BTN_MISC", "map-says-BTN_0", "unmapped-first-name"],
)
def test_a_code_with_two_names_is_named_as_the_key_map_names_it(key_map, name):
    raw = InputEvent(1732512000, 0, ecodes.EV_KEY, ecodes.BTN_0, KEY_DOWN)
    assert key_event(raw, key_map).code == name


def test_a_code_evdev_has_no_name_for_is_named_by_number():
    assert key_event(InputEvent(0, 0, ecodes.EV_KEY, 0x2FF, KEY_DOWN), NUMPAD).code == "KEY_767"


async def test_opening_a_pad_that_is_not_plugged_in_is_an_os_error(tmp_path):
    pad = EvdevKeypad(NUMPAD)
    with pytest.raises(OSError, match="not plugged in"):
        await pad.open(None)
    with pytest.raises(FileNotFoundError):
        await pad.open(str(tmp_path / "usb-Acme_Keypad-event-kbd"))
    await pad.close()
    await pad.close()
