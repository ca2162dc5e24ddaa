"""The ticket printer's config: defaults, refusals naming the field, the sample file, the
registry, and what hot-plug reads of it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from pydantic import TypeAdapter, ValidationError

from devices.hotplug.matcher import peripheral_from_config
from devices.printer import TicketPrinter, TicketPrinterConfig
from devices.registry import PeripheralConfig, build_driver

SAMPLE = Path(__file__).resolve().parents[3] / "devices" / "printer" / "sample.toml"


async def nowhere(detail, at) -> None:
    raise AssertionError("nothing is recorded here")


def test_defaults():
    config = TicketPrinterConfig(id="in", device="/dev/usb/lp0")

    assert (config.kind, config.port, config.paper_width, config.vietnamese_code_page) == (
        "ticket-printer", "usblp", 80, None)
    assert (config.status_every, config.answer_timeout, config.print_timeout) == (10, 1, 30)


def test_durations_read_as_people_write_them():
    config = TicketPrinterConfig(id="in", port="fake", status_every="2m", answer_timeout="500ms")

    assert (config.status_every, config.answer_timeout) == (120, 0.5)


@pytest.mark.parametrize("fields, message", [
    ({"device": "/dev/ttyUSB0", "port": "serial"}, "kernel name"),
    ({"port": "serial"}, "device or match is required"),
    ({"device": "/dev/serial/by-id/usb-X-if00"}, "a USB printer is /dev/usb/lpN"),
    ({"device": "/dev/usb/lp0", "port": "serial"}, "use port = \"usblp\""),
    ({"port": "fake", "paper_width": 76}, "paper_width"),
    ({"port": "fake", "vietnamese_code_page": 300}, "vietnamese_code_page"),
    ({"port": "fake", "status_every": "soon"}, "status_every"),
    ({"port": "fake", "baudrate": 4800}, "baudrate"),
    ({"port": "fake", "colour": "red"}, "colour"),
], ids=["kernel-name", "nothing", "usblp-not-lp", "serial-lp", "width", "code-page", "duration",
        "baudrate", "unknown-key"])
def test_bad_config_is_refused_naming_the_field(fields, message):
    with pytest.raises(ValidationError, match=message):
        TicketPrinterConfig(id="in", **fields)


def test_hot_plug_looks_for_a_usb_printer_node_or_a_tty():
    usb = peripheral_from_config(TicketPrinterConfig(id="in", match={"vendor_id": "0416"}))
    tty = peripheral_from_config(TicketPrinterConfig(
        id="in", port="serial", device="/dev/serial/by-id/usb-Prolific-if00-port0"))

    assert (usb.subsystem, usb.vendor_id) == ("usbmisc", "0416")
    assert (tty.subsystem, tty.links) == ("tty", ("/dev/serial/by-id/usb-Prolific-if00-port0",))


def test_the_sample_config_is_valid_and_builds_drivers():
    tables = tomllib.loads(SAMPLE.read_text(encoding="utf-8"))["peripherals"]
    configs = [TypeAdapter(PeripheralConfig).validate_python(table) for table in tables]

    assert [type(c) for c in configs] == [TicketPrinterConfig] * 2
    assert [c.port for c in configs] == ["usblp", "serial"]
    drivers = [build_driver(c, nowhere) for c in configs]
    assert all(isinstance(d, TicketPrinter) and d.kind == "ticket-printer" for d in drivers)
    assert drivers[0].health().state == "missing", "nothing is opened before run()"
