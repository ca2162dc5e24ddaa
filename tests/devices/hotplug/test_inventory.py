"""devices.hotplug.inventory: what to do as devices come, go, change and repeat themselves."""

from devices.hotplug.inventory import Attach, Detach, Inventory, UnknownDevice
from devices.hotplug.matcher import Ambiguity, ConfiguredPeripheral
from tests.devices.hotplug.cases import case_devices, node_peripherals

FTDI_PAD = ConfiguredPeripheral(
    id="serial-pad", kind="rating-pad", subsystem="tty",
    links=("/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_A105GKV2-if00-port0",),
)


def replugged(properties: dict[str, str], old: str, new: str) -> dict[str, str]:
    """The same device after a replug: the kernel gave it another name."""
    return {key: value.replace(old, new) for key, value in properties.items()}


def test_unplug_and_replug_under_a_new_kernel_name_is_the_same_peripheral():
    (ftdi,) = case_devices("ftdi-ft232r-by-id")
    inventory = Inventory([FTDI_PAD])

    assert inventory.apply("add", ftdi) == [
        Attach("serial-pad", "rating-pad", "/dev/ttyUSB0", "0403:6001:A105GKV2", announce=True)]
    assert inventory.apply("remove", ftdi) == [Detach("serial-pad", "rating-pad", "/dev/ttyUSB0")]
    assert inventory.apply("add", replugged(ftdi, "ttyUSB0", "ttyUSB3")) == [
        Attach("serial-pad", "rating-pad", "/dev/ttyUSB3", "0403:6001:A105GKV2", announce=True)]
    assert inventory.attached == {"serial-pad": "/dev/ttyUSB3"}


def test_repeated_add_and_change_events_attach_once():
    (ftdi,) = case_devices("ftdi-ft232r-by-id")
    inventory = Inventory([FTDI_PAD])

    first = inventory.apply("add", ftdi)
    again = [inventory.apply(action, ftdi) for action in ("add", "change", "change", "bind", "add")]

    assert len(first) == 1
    assert again == [[], [], [], [], []]


def test_an_unknown_device_is_told_once_per_identity_however_often_it_comes():
    (zstick,) = case_devices("cdc-acm-unknown")
    inventory = Inventory(node_peripherals())

    told = inventory.apply("add", zstick)
    for _ in range(20):
        told += inventory.apply("change", zstick)
        told += inventory.apply("remove", zstick)
        told += inventory.apply("add", replugged(zstick, "ttyACM0", "ttyACM1"))

    assert told == [UnknownDevice("0658:0200", "/dev/ttyACM0", "Sigma Designs, Inc. 0200")]


def test_a_keypad_moves_silently_to_its_keyboard_node_when_that_comes_second():
    media_keys, parent, system_control, keyboard, usb_device = case_devices(
        "numeric-keypad-three-event-nodes")
    pad = ConfiguredPeripheral(id="pad", kind="rating-pad", subsystem="input",
                               vendor_id="0c45", product_id="760f")
    inventory = Inventory([pad])

    arrivals = [inventory.apply("add", p) for p in (usb_device, media_keys, parent, keyboard, system_control)]

    assert arrivals == [
        [],
        [Attach("pad", "rating-pad", "/dev/input/event1", "0c45:760f", announce=True)],
        [],
        [Attach("pad", "rating-pad", "/dev/input/event0", "0c45:760f", announce=False)],
        [],
    ]


def test_a_second_identical_adapter_is_reported_and_the_first_keeps_serving():
    first, second = case_devices("two-identical-ch340")
    reader = ConfiguredPeripheral(id="reader", kind="scanner", vendor_id="1a86", product_id="7523")
    inventory = Inventory([reader])
    inventory.apply("add", first)

    assert inventory.apply("add", second) == [
        Ambiguity(("reader",), ("/dev/ttyUSB0", "/dev/ttyUSB2"))]
    assert inventory.attached == {"reader": "/dev/ttyUSB2"}
    # The adapter it held goes: the one left is a different device, so it is a new arrival.
    assert inventory.apply("remove", first) == [
        Detach("reader", "scanner", "/dev/ttyUSB2"),
        Attach("reader", "scanner", "/dev/ttyUSB0", "1a86:7523", announce=True),
    ]


def test_a_printer_is_identified_through_its_usb_device_and_leaves_before_it():
    usb_device, interface, lp0 = case_devices("usblp-receipt-printer")
    printer = ConfiguredPeripheral(id="printer", kind="printer", subsystem="usbmisc",
                                   vendor_id="0416", product_id="5011")
    inventory = Inventory([printer])

    assert inventory.apply("add", usb_device) == []
    assert inventory.apply("add", interface) == []
    assert inventory.apply("add", lp0) == [
        Attach("printer", "printer", "/dev/usb/lp0", "0416:5011", announce=True)]
    assert inventory.apply("remove", lp0) == [Detach("printer", "printer", "/dev/usb/lp0")]
    assert inventory.apply("remove", usb_device) == []


def test_loading_afresh_detaches_what_went_while_events_were_lost():
    (ftdi,) = case_devices("ftdi-ft232r-by-id")
    (zstick,) = case_devices("cdc-acm-unknown")
    inventory = Inventory([FTDI_PAD])
    inventory.load([ftdi])

    assert inventory.load([zstick]) == [
        Detach("serial-pad", "rating-pad", "/dev/ttyUSB0"),
        UnknownDevice("0658:0200", "/dev/ttyACM0", "Sigma Designs, Inc. 0200"),
    ]
    assert inventory.attached == {}


def test_removing_what_was_never_seen_changes_nothing():
    inventory = Inventory([FTDI_PAD])

    assert inventory.apply("remove", {"DEVPATH": "/devices/virtual/tty/tty7", "SUBSYSTEM": "tty"}) == []


def test_a_configured_keypad_is_not_unknown_while_only_its_media_keys_are_there():
    media_keys, parent, system_control, keyboard, usb_device = case_devices(
        "numeric-keypad-three-event-nodes")
    pad = ConfiguredPeripheral(id="pad", kind="rating-pad", subsystem="input",
                               links=("/dev/input/by-id/usb-0c45_USB_Keyboard-event-kbd",))
    inventory = Inventory([pad])

    # udev delivers sibling nodes in any order: the media keys may come first and leave last.
    arrivals = [inventory.apply("add", p) for p in (usb_device, media_keys, system_control, keyboard)]
    departures = [inventory.apply("remove", p) for p in (keyboard, system_control, media_keys, usb_device)]

    assert arrivals == [[], [], [], [Attach("pad", "rating-pad", "/dev/input/event0", "0c45:760f", True)]]
    assert departures == [[Detach("pad", "rating-pad", "/dev/input/event0")], [], [], []]
