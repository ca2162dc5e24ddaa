"""devices.hotplug.udevadm: `udevadm info` text as it is printed, pasted and quoted."""

import pytest

from devices.hotplug.udevadm import UdevadmFormatError, parse_udevadm_info
from tests.devices.hotplug.cases import case_devices


def test_only_e_lines_are_properties_and_blank_lines_separate_devices():
    text = (
        "P: /devices/virtual/tty/tty1\nN: tty1\nS: char/4:1\nE: DEVNAME=/dev/tty1\nE: SUBSYSTEM=tty\n"
        "\n"
        "P: /devices/virtual/tty/tty2\nE: DEVNAME=/dev/tty2\nE: NAME=\"a = b\"\n"
    )

    assert parse_udevadm_info(text) == [
        {"DEVNAME": "/dev/tty1", "SUBSYSTEM": "tty"},
        {"DEVNAME": "/dev/tty2", "NAME": '"a = b"'},
    ]


def test_back_to_back_blocks_and_indented_pastes_are_read():
    text = "  P: /a\n  E: DEVPATH=/a\n  P: /b\n  E: DEVPATH=/b\n  E: EMPTY=\n"

    assert parse_udevadm_info(text) == [{"DEVPATH": "/a"}, {"DEVPATH": "/b", "EMPTY": ""}]


@pytest.mark.parametrize("text, line", [("E: DEVNAME\n", 1), ("P: /a\nnot udevadm\n", 2)])
def test_what_is_not_udevadm_output_is_refused_with_its_line(text, line):
    with pytest.raises(UdevadmFormatError, match=f"line {line}"):
        parse_udevadm_info(text)


def test_a_recorded_case_keeps_escapes_and_spaces_as_udev_printed_them():
    (scanner,) = case_devices("zebra-wedge-scanner")

    assert scanner["ID_VENDOR_ENC"] == r"Symbol\x20Technologies\x2c\x20Inc\x2c\x202008"
    assert scanner["ID_MODEL_FROM_DATABASE"] == "Bar Code Scanner"
