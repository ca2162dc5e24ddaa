"""Scanner configs as hot-plug reads them: recorded udev property sets resolve to
the node the driver should open."""

from __future__ import annotations

from pathlib import Path

from devices.hotplug.matcher import peripheral_from_config, resolve
from devices.hotplug.nodes import device_nodes
from devices.hotplug.udevadm import parse_udevadm_info
from devices.scanner import DocumentScannerConfig, ScannerConfig

HERE = Path(__file__).parent
ZEBRA = HERE.parent / "hotplug" / "testcases" / "zebra-wedge-scanner" / "input"


def attached(config, udevadm_text: str) -> dict[str, str]:
    peripheral = peripheral_from_config(config)
    assert peripheral is not None
    resolution = resolve([peripheral], device_nodes(parse_udevadm_info(udevadm_text)))
    return {pid: device.devnode for pid, device in resolution.chosen.items()}


def test_a_wedge_reader_is_found_by_its_usb_identity_at_its_keyboard_node():
    config = ScannerConfig(id="qr-1", source="evdev", match={"vendor_id": "05e0", "product_id": "1200"})
    assert attached(config, ZEBRA.read_text(encoding="utf-8")) == {"qr-1": "/dev/input/event3"}


def test_a_desk_scanner_is_found_at_its_usb_device_node():
    config = DocumentScannerConfig(id="desk-1", match={"vendor_id": "04c5", "product_id": "132e"})
    text = (HERE / "udev" / "fujitsu-fi-7160.txt").read_text(encoding="utf-8")
    assert attached(config, text) == {"desk-1": "/dev/bus/usb/001/004"}
