"""The soundbox's config model: defaults, refusals naming the field, the sample file, and what
hot-plug reads of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import ValidationError

from devices.hotplug.matcher import peripheral_from_config
from devices.soundbox import SoundboxConfig
from devices.soundbox.config import DEFAULT_VOICE_PACK

SAMPLE = Path(__file__).resolve().parents[3] / "devices" / "soundbox" / "sample.toml"


def test_defaults_are_the_nodes_default_output_and_the_default_pack():
    config = SoundboxConfig(id="loa-1")

    assert (config.kind, config.output, config.device, config.output_name, config.counters) == (
        "soundbox", "sounddevice", None, None, ())
    assert config.voice_pack == DEFAULT_VOICE_PACK
    assert (config.style, config.ticket_reading, config.volume) == ("northern", "number", 1.0)
    assert (config.merge_window, config.lead_in, config.tail) == (10, 0.1, 0.25)


def test_durations_and_a_single_counter_read_as_people_write_them():
    config = SoundboxConfig(id="loa-1", counters="5", merge_window="30s", lead_in="150ms")

    assert (config.counters, config.merge_window, config.lead_in) == (("5",), 30, 0.15)


@pytest.mark.parametrize("counters, counter, serves", [
    ((), "7", True), ((), None, True), (("5",), "5", True), (("5",), "7", False),
    (("5", "6"), "6", True), (("5",), None, True),
], ids=["hall", "hall-no-counter", "own", "other", "one-of-two", "no-counter"])
def test_which_announcements_it_says(counters, counter, serves):
    assert SoundboxConfig(id="loa", counters=counters).serves(counter) is serves


@pytest.mark.parametrize("fields, message", [
    ({"output": "serial"}, "device or match is required when output is 'serial'"),
    ({"output": "serial", "device": "/dev/ttyUSB0"}, "kernel name that changes on replug"),
    ({"device": "USB Audio"}, "to pick an output by name, use output_name"),
    ({"output": "fake", "output_name": "default"}, "output_name is for output 'sounddevice'"),
    ({"volume": 1.5}, "volume"),
    ({"style": "central"}, "style"),
    ({"wording": {"payment": "Fee!"}}, "template variant name"),
    ({"wording": {"greeting": "default"}}, "wording.greeting"),
    ({"counters": [""]}, "a counter is 1 to 128 characters"),
    ({"merge_window": "soon"}, "not a valid duration"),
    ({"speaker": "left"}, "speaker"),
], ids=["serial-without-device", "kernel-name", "name-as-device", "name-not-sounddevice",
        "volume", "style", "variant", "kind", "counter", "duration", "unknown-key"])
def test_bad_config_is_refused_naming_the_field(fields, message):
    with pytest.raises(ValidationError, match=message):
        SoundboxConfig(id="loa-1", **fields)


def test_frozen():
    config = SoundboxConfig(id="loa-1")
    with pytest.raises(ValidationError):
        config.volume = 0.5


def test_hot_plug_looks_for_a_sound_card_or_a_tty():
    card = peripheral_from_config(SoundboxConfig(id="loa", match={"vendor_id": "0d8c"}))
    serial = peripheral_from_config(SoundboxConfig(
        id="loa", output="serial", match={"by_id": "usb-Acme_Soundbox_SB-7-if00"}))

    by_id = peripheral_from_config(SoundboxConfig(id="loa", device="/dev/snd/by-id/usb-C-Media-00"))

    assert card.subsystem == "sound" and serial.subsystem == "tty"
    assert (by_id.subsystem, by_id.links) == ("sound", ("/dev/snd/by-id/usb-C-Media-00",))
    assert peripheral_from_config(SoundboxConfig(id="loa", output_name="USB Audio")) is None


def test_the_sample_config_is_valid():
    tables = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))["peripherals"]

    configs = [SoundboxConfig(**table) for table in tables]

    assert {c.output for c in configs} == {"sounddevice", "serial"}
