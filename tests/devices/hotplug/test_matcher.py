"""devices.hotplug.matcher: recorded udev property sets of real devices against one node's config."""

import pytest

from devices.hotplug.match import DeviceMatch
from devices.hotplug.matcher import ConfiguredPeripheral, Resolution, configured_peripheral, matches, resolve
from devices.hotplug.nodes import device_node, device_nodes, identity, names_kernel_node, usb_device_path
from tests.devices.hotplug.cases import case_devices, case_expected, case_names, node_peripherals


def outcome(resolution: Resolution) -> list[str]:
    lines = [f"attached {pid} {device.devnode} {identity(device)}"
             for pid, device in sorted(resolution.chosen.items())]
    lines += [f"unknown {device.devnode} {identity(device)}" for device in resolution.unknown]
    lines += [f"ambiguous {ambiguity.describe()}" for ambiguity in resolution.ambiguities]
    return lines


@pytest.mark.parametrize("case", case_names())
def test_recorded_devices_resolve_as_expected(case):
    resolution = resolve(node_peripherals(), device_nodes(case_devices(case)))

    assert outcome(resolution) == case_expected(case)


@pytest.mark.parametrize("case", case_names())
def test_the_order_udev_reports_nodes_in_does_not_matter(case):
    backwards = list(reversed(case_devices(case)))

    assert outcome(resolve(node_peripherals(), device_nodes(backwards))) == case_expected(case)


def test_every_golden_case_is_exercised():
    assert len(case_names()) >= 12


def node(case: str, devnode: str):
    return next(d for d in device_nodes(case_devices(case)) if d.devnode == devnode)


def keypad(**criteria) -> ConfiguredPeripheral:
    return ConfiguredPeripheral(id="pad", kind="rating-pad", subsystem="input", **criteria)


# -- which nodes count ---------------------------------------------------------

@pytest.mark.parametrize(
    "properties",
    [
        {"SUBSYSTEM": "input", "DEVPATH": "/devices/x/input/input2"},  # the parent input device
        {"SUBSYSTEM": "input", "DEVNAME": "/dev/input/mouse0", "DEVPATH": "/d/mouse0"},
        {"SUBSYSTEM": "input", "DEVNAME": "/dev/input/js0", "DEVPATH": "/d/js0"},
        {"SUBSYSTEM": "tty", "DEVNAME": "/dev/ttyS0", "DEVPATH": "/d/ttyS0"},
        {"SUBSYSTEM": "sound", "DEVNAME": "/dev/snd/pcmC1D0p", "DEVPATH": "/d/pcmC1D0p"},
        {"SUBSYSTEM": "usbmisc", "DEVNAME": "/dev/usb/hiddev0", "DEVPATH": "/d/hiddev0"},
        {"SUBSYSTEM": "usb", "DEVTYPE": "usb_interface", "DEVPATH": "/d/1-1.3/1-1.3:1.0"},
    ],
    ids=["input-parent", "mouse-node", "joystick-node", "built-in-uart", "pcm-stream", "hiddev",
         "usb-interface"],
)
def test_nodes_no_driver_opens_are_not_devices(properties):
    assert device_node(properties) is None


def test_a_printer_node_without_identity_takes_its_usb_devices():
    printer = node("usblp-receipt-printer", "/dev/usb/lp0")

    assert (printer.vendor_id, printer.product_id, printer.subsystem) == ("0416", "5011", "usbmisc")
    assert printer.usb_device == "/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.3"


def test_usb_device_path_is_the_device_not_the_interface():
    path = "/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5/1-1.5:1.0/ttyUSB0/tty/ttyUSB0"

    assert usb_device_path(path) == "/devices/platform/soc/3f980000.usb/usb1/1-1/1-1.5"
    assert usb_device_path("/devices/pnp0/00:00/00:00:0/00:00:0.0/tty/ttyS0") is None


# -- the keypad rule -----------------------------------------------------------

def test_a_keypad_is_its_keyboard_interface_not_its_media_keys():
    nodes = device_nodes(case_devices("numeric-keypad-three-event-nodes"))
    by_model = keypad(vendor_id="0c45", product_id="760f")

    assert sorted(d.devnode for d in nodes if matches(by_model, d)) == [
        "/dev/input/event0", "/dev/input/event1", "/dev/input/event2"]
    assert resolve([by_model], nodes).chosen["pad"].devnode == "/dev/input/event0"


def test_a_by_id_link_picks_exactly_the_node_it_names():
    nodes = device_nodes(case_devices("numeric-keypad-three-event-nodes"))
    media_keys = keypad(links=("usb-0c45_USB_Keyboard-event-if01",))

    assert resolve([media_keys], nodes).chosen["pad"].devnode == "/dev/input/event1"


# -- criteria ------------------------------------------------------------------

@pytest.mark.parametrize(
    "criteria, expected",
    [
        ({"links": ("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A105GKV2-if00-port0",)}, True),
        ({"links": ("usb-FTDI_FT232R_USB_UART_A105GKV2-if00-port0",)}, True),
        ({"links": ("/dev/serial/by-path/platform-3f980000.usb-usb-0:1.5:1.0-port0",)}, True),
        ({"links": ("usb-FTDI_FT232R_USB_UART_OTHER-if00-port0",)}, False),
        ({"id_serial": "A105GKV2"}, True),
        ({"id_serial": "FTDI_FT232R_USB_UART_A105GKV2"}, True),
        ({"id_serial": "A105GKV"}, False),
        ({"vendor_id": "0403"}, True),
        ({"vendor_id": "0403", "product_id": "6001"}, True),
        ({"vendor_id": "0403", "product_id": "6015"}, False),
        ({"vendor_id": "0403", "subsystem": "input"}, False),
        ({"vendor_id": "0403", "id_serial": "FT1SERS9"}, False),
    ],
    ids=["by-id-path", "by-id-name", "by-path-link", "other-link", "serial-short", "serial-long",
         "serial-prefix", "vendor", "vendor-product", "other-product", "other-subsystem",
         "every-criterion-must-hold"],
)
def test_each_configured_criterion_must_hold(criteria, expected):
    ftdi = node("ftdi-ft232r-by-id", "/dev/ttyUSB0")

    assert matches(ConfiguredPeripheral(id="p", kind="k", **criteria), ftdi) is expected


def test_the_kernel_name_is_never_compared():
    ftdi = node("ftdi-ft232r-by-id", "/dev/ttyUSB0")

    assert not matches(ConfiguredPeripheral(id="p", kind="k", links=("/dev/ttyUSB0",)), ftdi)
    assert configured_peripheral("p", "rating-pad", "/dev/ttyUSB0", None, "serial") is None
    assert configured_peripheral("p", "rating-pad", None, DeviceMatch(by_id="/dev/input/event3")) is None


@pytest.mark.parametrize(
    "path, kernel",
    [("/dev/input/event3", True), ("/dev/ttyUSB0", True), ("/dev/ttyACM12", True), ("/dev/usb/lp0", True),
     ("/dev/ttyAMA0", True), ("/dev/input/by-id/usb-0c45_USB_Keyboard-event-kbd", False),
     ("/dev/serial/by-id/usb-1a86_USB2.0-Ser_-if00-port0", False), ("/dev/ttyUSBGCE", False)],
)
def test_kernel_names_are_told_from_stable_links(path, kernel):
    assert names_kernel_node(path) is kernel


@pytest.mark.parametrize(
    "device, source, kind, subsystem",
    [("/dev/input/by-id/x-event-kbd", None, "rating-pad", "input"),
     ("/dev/serial/by-id/usb-x-if00-port0", None, "rating-pad", "tty"),
     (None, "evdev", "scanner", "input"), (None, "serial", "scanner", "tty"),
     (None, None, "soundbox", "sound"), (None, None, "printer", None)],
)
def test_the_subsystem_follows_from_path_source_or_kind(device, source, kind, subsystem):
    peripheral = configured_peripheral("p", kind, device, DeviceMatch(vendor_id="0403"), source)

    assert peripheral.subsystem == subsystem


# -- ambiguity and identity ------------------------------------------------------

def test_a_peripheral_that_holds_one_of_two_devices_keeps_it():
    nodes = device_nodes(case_devices("two-identical-ch340"))
    reader = ConfiguredPeripheral(id="reader", kind="scanner", vendor_id="1a86", product_id="7523")

    resolution = resolve([reader], nodes, held={"reader": "/dev/ttyUSB2"})

    assert resolution.chosen["reader"].devnode == "/dev/ttyUSB2"
    assert [a.devnodes for a in resolution.ambiguities] == [("/dev/ttyUSB0", "/dev/ttyUSB2")]


def test_identity_without_a_serial_number_names_the_model():
    assert identity(node("ch340-without-serial", "/dev/ttyUSB2")) == "1a86:7523"
    assert identity(node("ftdi-ft232r-by-id", "/dev/ttyUSB0")) == "0403:6001:A105GKV2"


def test_identity_falls_back_to_the_by_id_link_off_usb_ids():
    bare = device_node({
        "SUBSYSTEM": "tty", "DEVNAME": "/dev/ttyACM0", "DEVPATH": "/d/1-1/1-1:1.0/tty/ttyACM0",
        "DEVLINKS": "/dev/serial/by-path/x /dev/serial/by-id/usb-Acme_Pad-if00",
    })

    assert identity(bare) == "usb-Acme_Pad-if00"
