"""The golden cases (testcases/<case>/input, expected) and the node config they are read against."""

from __future__ import annotations

from pathlib import Path

from devices.hotplug.match import DeviceMatch
from devices.hotplug.matcher import ConfiguredPeripheral, configured_peripheral
from devices.hotplug.udevadm import parse_udevadm_info

CASES = Path(__file__).parent / "testcases"

# One node with everything plugged into it that the cases need, configured the
# ways a technician would: by-id link (full or name only), serial, vendor:product.
NODE_CONFIG: list[tuple[str, str, str | None, DeviceMatch | None, str | None]] = [
    ("pad-counter-5", "rating-pad", None, DeviceMatch(vendor_id="0c45", product_id="760f"), "evdev"),
    ("pad-exit", "rating-pad", "/dev/input/by-id/usb-RDing_FootSwitch1F1.-event-mouse", None, "evdev"),
    ("pad-by-kernel-name", "rating-pad", "/dev/input/event4", None, "evdev"),
    ("scanner-desk", "scanner", None, DeviceMatch(id_serial="21043010559656"), "evdev"),
    ("scanner-kiosk", "scanner", None,
     DeviceMatch(by_id="usb-Honeywell_Imaging___Mobility_1900_12054B0617-event-kbd"), "evdev"),
    ("scanner-counter", "scanner", None, DeviceMatch(id_serial="12054B0617"), "evdev"),
    ("serial-pad", "rating-pad", "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A105GKV2-if00-port0",
     None, "serial"),
    ("serial-reader", "scanner", None, DeviceMatch(vendor_id="1a86", product_id="7523"), "serial"),
    ("ticket-printer", "printer", None,
     DeviceMatch(vendor_id="0416", product_id="5011", subsystem="usbmisc"), None),
    ("soundbox-1", "soundbox", None, DeviceMatch(vendor_id="0d8c", product_id="000c"), None),
]


def node_peripherals() -> list[ConfiguredPeripheral]:
    found = (configured_peripheral(*entry) for entry in NODE_CONFIG)
    return [peripheral for peripheral in found if peripheral is not None]


def case_names() -> list[str]:
    return sorted(path.name for path in CASES.iterdir() if (path / "input").exists())


def case_devices(name: str) -> list[dict[str, str]]:
    return parse_udevadm_info((CASES / name / "input").read_text(encoding="utf-8"))


def case_expected(name: str) -> list[str]:
    lines = (CASES / name / "expected").read_text(encoding="utf-8").splitlines()
    return [] if lines == ["none"] else lines
