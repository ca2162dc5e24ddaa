"""What a udev property dict is: a node a driver can open, and what identifies it (pure).

Only nodes a driver opens count: ``/dev/input/eventN`` (never ``inputN``,
``mouseN``, ``jsN``), ``/dev/ttyUSBN`` and ``/dev/ttyACMN``, ``/dev/usb/lpN``
(usblp printers), ``/dev/snd/controlCN`` (a sound card) and
``/dev/bus/usb/BBB/DDD`` (a whole USB device, for libusb/SANE drivers). A node
whose own properties lack the USB identity (modern udev runs no ``usb_id`` for
``usbmisc`` printers) takes it from its USB device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Mapping

Properties = Mapping[str, str]

SUBSYSTEMS = ("input", "tty", "usbmisc", "sound", "usb")
"""The subsystems hot-plug watches, in the order a node of one device is preferred."""

_OPENABLE = {
    "input": re.compile(r"/dev/input/event\d+"),
    "tty": re.compile(r"/dev/tty(USB|ACM)\d+"),
    "usbmisc": re.compile(r"/dev/usb/lp\d+"),
    "sound": re.compile(r"/dev/snd/controlC\d+"),
    "usb": re.compile(r"/dev/bus/usb/\d+/\d+"),
}
_KERNEL_NAME = re.compile(
    r"/dev/(input/(event|mouse|js)\d+|input/mice|tty([A-Z]{1,4})?\d+|usb/(lp|hiddev)\d+"
    r"|hidraw\d+|snd/[A-Za-z]+\d.*|bus/usb/.*|lp\d+)"
)
# A USB device's sysfs name: "1-1.4" (bus 1, hub port 1, port 4). Interfaces are "1-1.4:1.0".
_USB_DEVICE_NAME = re.compile(r"\d+-\d+(\.\d+)*")

@dataclass(frozen=True)
class UdevDevice:
    """One device node a driver can open, with what identifies it."""

    devpath: str
    devnode: str
    subsystem: str
    links: tuple[str, ...] = ()
    vendor_id: str | None = None
    product_id: str | None = None
    serial: str | None = None
    """``ID_SERIAL``: vendor_model[_serial]; without a serial number it names a model only."""
    serial_short: str | None = None
    """``ID_SERIAL_SHORT``: the device's own serial number, when it has one."""
    interface: str | None = None
    keyboard: bool = False
    keys: bool = False
    bus: str | None = None
    usb_device: str | None = None
    """Devpath of the USB device this node belongs to; None when not on USB."""
    label: str = ""

    @property
    def physical(self) -> str:
        """What is plugged in: the USB device, or the node itself off USB."""
        return self.usb_device or self.devpath


def is_usb_device(properties: Properties) -> bool:
    """A whole USB device (not an interface): where ``usb_id`` puts the identity."""
    return properties.get("SUBSYSTEM") == "usb" and properties.get("DEVTYPE") == "usb_device"


def usb_device_path(devpath: str) -> str | None:
    """The devpath of the USB device a devpath lies under (itself for a USB device)."""
    parts = devpath.split("/")
    for end in range(len(parts), 0, -1):
        if _USB_DEVICE_NAME.fullmatch(parts[end - 1]):
            return "/".join(parts[:end])
    return None


def device_node(properties: Properties, usb_parent: Properties | None = None) -> UdevDevice | None:
    """The openable node these udev properties describe, or None (a parent, an
    interface, a mouse node, a pcm stream, a terminal...).

    ``usb_parent``: the properties of the USB device the node belongs to; its
    identity fills in what the node's own properties lack.
    """
    subsystem = properties.get("SUBSYSTEM", "")
    devnode = properties.get("DEVNAME", "")
    pattern = _OPENABLE.get(subsystem)
    if pattern is None or not pattern.fullmatch(devnode):
        return None
    devpath = properties.get("DEVPATH", "")
    inherited = usb_parent or {}

    def prop(key: str) -> str | None:
        return properties.get(key) or inherited.get(key) or None

    return UdevDevice(
        devpath=devpath,
        devnode=devnode,
        subsystem=subsystem,
        links=tuple(properties.get("DEVLINKS", "").split()),
        vendor_id=hex_id(prop("ID_VENDOR_ID")),
        product_id=hex_id(prop("ID_MODEL_ID")),
        serial=prop("ID_SERIAL"),
        serial_short=prop("ID_SERIAL_SHORT"),
        interface=properties.get("ID_USB_INTERFACE_NUM"),
        keyboard=properties.get("ID_INPUT_KEYBOARD") == "1",
        keys=properties.get("ID_INPUT_KEY") == "1",
        bus=prop("ID_BUS"),
        usb_device=usb_device_path(devpath),
        label=_label(properties, inherited),
    )


def device_nodes(present: Iterable[Properties]) -> list[UdevDevice]:
    """The openable nodes among ``present`` (udev property dicts of everything
    plugged in), each with the identity of its USB device where it lacks its own."""
    present = list(present)
    usb_devices = {p.get("DEVPATH"): p for p in present if is_usb_device(p)}
    nodes = []
    for properties in present:
        parent_path = usb_device_path(properties.get("DEVPATH", ""))
        node = device_node(properties, usb_devices.get(parent_path))
        if node is not None:
            nodes.append(node)
    return nodes


def names_kernel_node(path: str) -> bool:
    """True for a kernel name like ``/dev/input/event3`` or ``/dev/ttyUSB0``: it changes
    on replug."""
    return bool(_KERNEL_NAME.fullmatch(path))


def identity(device: UdevDevice) -> str | None:
    """A stable name for what is plugged in: ``vendor:product[:serial]``, else its
    first by-id link name, else ``ID_SERIAL``. Without a serial number, identical
    adapters share one identity (a CH340 has none): they are one model, not one device.
    """
    if device.vendor_id and device.product_id:
        parts = [device.vendor_id, device.product_id]
        if device.serial_short:
            parts.append(device.serial_short)
        return ":".join(parts)
    by_id = [link.rsplit("/", 1)[-1] for link in device.links if "/by-id/" in link]
    if by_id:
        return by_id[0]
    return device.serial


def hex_id(value: str | None) -> str | None:
    """A USB vendor or product id as udev writes it: four lowercase hex digits."""
    if not value:
        return None
    value = value.lower()
    return value[2:] if value.startswith("0x") else value


def _label(properties: Properties, inherited: Properties) -> str:
    def first(*keys: str) -> str:
        for source in (properties, inherited):
            for key in keys:
                if source.get(key):
                    return source[key]
        return ""

    vendor = first("ID_VENDOR_FROM_DATABASE", "ID_VENDOR")
    model = first("ID_MODEL_FROM_DATABASE", "ID_MODEL")
    return " ".join(part for part in (vendor, model) if part)
