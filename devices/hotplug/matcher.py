"""Which configured peripheral a udev device is (pure code over udev property dicts).

The rules, in the order they apply (README.md in this folder says why):

1. Only a node a driver opens counts (`devices.hotplug.nodes`).
2. A peripheral matches a node when every criterion it configures holds
   (`matches`): each configured link (``device`` or ``match.by_id``; full path,
   or just the name) is among the node's ``DEVLINKS``; ``id_serial`` equals
   ``ID_SERIAL`` or ``ID_SERIAL_SHORT``; ``vendor_id``/``product_id`` equal
   ``ID_VENDOR_ID``/``ID_MODEL_ID``; the node is in the peripheral's subsystem.
   ``DEVNAME`` is never compared: ``event3`` and ``ttyUSB0`` change on replug.
3. The nodes of one USB device that match a peripheral are one candidate; the
   node used is the best by `preference`: the peripheral's subsystem first,
   then for input a keyboard node (``ID_INPUT_KEYBOARD``) over a keys-only one
   (``ID_INPUT_KEY``: consumer or system control) over the rest, then the
   lowest ``ID_USB_INTERFACE_NUM`` (the boot keyboard is interface 0; the
   media keys a keypad adds sit on interface 1), then a node that owns a by-id
   link (udev gives a contested link to one node only).
4. Ambiguity is reported, not guessed (`resolve`): a peripheral matching two
   USB devices gets neither, unless it is already attached to one of them; a
   node that two peripherals match goes to neither.
5. A USB device with an input, tty, printer or sound node that no peripheral
   names is unknown (`devices.hotplug.nodes.identity` names it). Built-in devices (the Pi's UART,
   HDMI-CEC keys, on-board audio) are not on USB and never unknown.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass
from typing import Iterable, Mapping

from devices.hotplug.match import DeviceMatch
from devices.hotplug.nodes import SUBSYSTEMS, UdevDevice, hex_id, names_kernel_node

# Where an unclaimed device is worth telling: things a peripheral driver would open.
_REPORTABLE = {"input", "tty", "usbmisc", "sound"}
# A driver's `source` says which node it opens, where the config's path and match do not.
_SUBSYSTEM_BY_SOURCE = {"evdev": "input", "serial": "tty", "sane": "usb"}
_SUBSYSTEM_BY_PATH = (
    ("/dev/input/", "input"),
    ("/dev/serial/", "tty"),
    ("/dev/tty", "tty"),
    ("/dev/usb/lp", "usbmisc"),
    ("/dev/snd/", "sound"),
    ("/dev/bus/usb/", "usb"),
)
_SUBSYSTEM_BY_KIND = {"soundbox": "sound"}


@dataclass(frozen=True)
class ConfiguredPeripheral:
    """What the config says identifies one peripheral's device; at least one criterion is set."""

    id: str
    kind: str
    links: tuple[str, ...] = ()
    id_serial: str | None = None
    vendor_id: str | None = None
    product_id: str | None = None
    subsystem: str | None = None


@dataclass(frozen=True)
class Ambiguity:
    """Peripherals and nodes that cannot be paired without guessing."""

    peripherals: tuple[str, ...]
    devnodes: tuple[str, ...]

    def describe(self) -> str:
        if len(self.peripherals) == 1:
            return (f"{self.peripherals[0]} matches {len(self.devnodes)} devices "
                    f"({', '.join(self.devnodes)}); give it a serial or a by-path link")
        return (f"{', '.join(self.devnodes)} is matched by {len(self.peripherals)} peripherals "
                f"({', '.join(self.peripherals)}); make their match narrower")


@dataclass(frozen=True)
class Resolution:
    chosen: dict[str, UdevDevice]
    """Peripheral id -> the node to attach it to."""
    ambiguities: tuple[Ambiguity, ...]
    unknown: tuple[UdevDevice, ...]
    """One node per USB device that no peripheral matches at all."""


def configured_peripheral(
    id: str, kind: str, device: str | None, match: DeviceMatch | None, source: str | None = None
) -> ConfiguredPeripheral | None:
    """What identifies a configured peripheral's device; None when its config names
    nothing that survives a replug (no match, and no device path or only a kernel name)."""
    links = tuple(
        link for link in (device, match.by_id if match else None)
        if link and not names_kernel_node(link)
    )
    if not (links or (match and (match.id_serial or match.vendor_id))):
        return None
    subsystem = (match.subsystem if match else None) or _subsystem_for(device, source, kind)
    return ConfiguredPeripheral(
        id=id,
        kind=kind,
        links=links,
        id_serial=match.id_serial if match else None,
        vendor_id=hex_id(match.vendor_id) if match else None,
        product_id=hex_id(match.product_id) if match else None,
        subsystem=subsystem,
    )


def peripheral_from_config(config: object) -> ConfiguredPeripheral | None:
    """`configured_peripheral` for a driver's config model (``id``, ``kind`` and,
    where the kind has them, ``device``, ``match`` and ``source``)."""
    return configured_peripheral(
        getattr(config, "id"),
        getattr(config, "kind"),
        getattr(config, "device", None),
        getattr(config, "match", None),
        getattr(config, "source", None),
    )


def matches(peripheral: ConfiguredPeripheral, device: UdevDevice) -> bool:
    """Every criterion the peripheral configures holds for this node (rule 2)."""
    if peripheral.subsystem and device.subsystem != peripheral.subsystem:
        return False
    if not all(_has_link(device, link) for link in peripheral.links):
        return False
    if peripheral.id_serial and peripheral.id_serial not in (device.serial, device.serial_short):
        return False
    if peripheral.vendor_id and peripheral.vendor_id != device.vendor_id:
        return False
    if peripheral.product_id and peripheral.product_id != device.product_id:
        return False
    return True


def preference(device: UdevDevice) -> tuple:
    """Sort key among the nodes of one USB device: the smallest is used (rule 3)."""
    input_rank = 0 if device.keyboard else 1 if device.keys else 2
    has_by_id = any("/by-id/" in link for link in device.links)
    return (
        SUBSYSTEMS.index(device.subsystem),
        input_rank,
        _interface_number(device.interface),
        0 if has_by_id else 1,
        _natural(device.devnode),
    )


def resolve(
    peripherals: Iterable[ConfiguredPeripheral],
    devices: Iterable[UdevDevice],
    held: Mapping[str, str] | None = None,
) -> Resolution:
    """Pairs peripherals with nodes (rules 3 and 4).

    ``held``: peripheral id -> the node it is attached to now. A peripheral
    that comes to match a second device keeps the one it holds (and the
    ambiguity is reported); nothing else is decided by history.
    """
    held = held or {}
    peripherals = list(peripherals)
    devices = sorted(devices, key=preference)
    chosen: dict[str, UdevDevice] = {}
    ambiguities: list[Ambiguity] = []
    for peripheral in peripherals:
        groups: dict[str, list[UdevDevice]] = defaultdict(list)
        for device in devices:
            if matches(peripheral, device):
                groups[device.physical].append(device)  # devices are sorted: first is best
        if len(groups) == 1:
            chosen[peripheral.id] = next(iter(groups.values()))[0]
        elif len(groups) > 1:
            nodes = tuple(sorted((group[0].devnode for group in groups.values()), key=_natural))
            ambiguities.append(Ambiguity((peripheral.id,), nodes))
            for group in groups.values():
                if any(d.devnode == held.get(peripheral.id) for d in group):
                    chosen[peripheral.id] = group[0]
    claims: dict[str, list[str]] = defaultdict(list)
    for peripheral_id, device in chosen.items():
        claims[device.devnode].append(peripheral_id)
    for devnode, claimants in claims.items():
        if len(claimants) > 1:
            ambiguities.append(Ambiguity(tuple(sorted(claimants)), (devnode,)))
            for peripheral_id in claimants:
                del chosen[peripheral_id]
    claimed = {d.physical for d in devices if any(_names_device(p, d) for p in peripherals)}
    unknown: dict[str, UdevDevice] = {}
    for device in devices:
        if device.subsystem in _REPORTABLE and device.usb_device and device.physical not in claimed:
            unknown.setdefault(device.physical, device)
    return Resolution(chosen, tuple(ambiguities), tuple(unknown.values()))


def _names_device(peripheral: ConfiguredPeripheral, device: UdevDevice) -> bool:
    """The peripheral is configured for the USB device this node belongs to, even if
    this node is not the one it uses: udev delivers sibling nodes in any order, and a
    keypad's media-key node alone is no unknown device when its keyboard node is configured."""
    if peripheral.id_serial and peripheral.id_serial not in (device.serial, device.serial_short):
        return False
    if peripheral.vendor_id and peripheral.vendor_id != device.vendor_id:
        return False
    if peripheral.product_id and peripheral.product_id != device.product_id:
        return False
    # Every by-id name udev makes is <bus>-<ID_SERIAL>-<what the node is>.
    serial_prefix = f"{device.bus}-{device.serial}-" if device.bus and device.serial else None
    return all(
        _has_link(device, link)
        or (serial_prefix is not None and link.rsplit("/", 1)[-1].startswith(serial_prefix))
        for link in peripheral.links
    )


def _has_link(device: UdevDevice, configured: str) -> bool:
    if "/" in configured:
        return configured in device.links
    return any(link.rsplit("/", 1)[-1] == configured for link in device.links)


def _subsystem_for(device: str | None, source: str | None, kind: str) -> str | None:
    if device:
        for prefix, subsystem in _SUBSYSTEM_BY_PATH:
            if device.startswith(prefix):
                return subsystem
    if source in _SUBSYSTEM_BY_SOURCE:
        return _SUBSYSTEM_BY_SOURCE[source]
    return _SUBSYSTEM_BY_KIND.get(kind)


def _interface_number(value: str | None) -> int:
    try:
        return int(value, 16) if value else 0
    except ValueError:
        return 0xFF


def _natural(devnode: str) -> tuple:
    """``event10`` after ``event9``."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", devnode))

