"""What is plugged in, and which peripheral is attached where (pure state machine).

Fed with udev events, it answers with what to do: attach a driver to a node,
detach it, tell of an unknown device or an ambiguity. It never does any of it,
so the rules are tested without udev, drivers or a clock.

- An attach is announced once per arrival: a peripheral that stays attached
  while hot-plug moves it to a better node of the same device (the keypad's
  keyboard node appearing after its media-key node) is re-attached silently.
- ``change`` events update what is known of a device; a device already attached
  at the same node is not attached again, however often it changes.
- An unknown device is told once per identity, an ambiguity once, for the life
  of the inventory (one agent run).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from devices.hotplug.matcher import Ambiguity, ConfiguredPeripheral, resolve
from devices.hotplug.nodes import (
    Properties,
    UdevDevice,
    device_node,
    device_nodes,
    identity,
    is_usb_device,
)


@dataclass(frozen=True)
class Attach:
    """Open the peripheral's device at ``devnode`` now."""

    peripheral: str
    kind: str
    devnode: str
    identity: str | None
    announce: bool
    """False when the peripheral only moves to another node of the device it already had."""


@dataclass(frozen=True)
class Detach:
    """The peripheral's device went away."""

    peripheral: str
    kind: str
    devnode: str


@dataclass(frozen=True)
class UnknownDevice:
    """A USB device that no configured peripheral matches; told once per identity."""

    identity: str
    devnode: str
    label: str

    def describe(self) -> str:
        label = f" ({self.label})" if self.label else ""
        return f"unknown device {self.identity}{label} at {self.devnode}"


Action = Attach | Detach | UnknownDevice | Ambiguity

ACTIONS_THAT_ADD = {"add", "change"}


class Inventory:
    """Devices present (from `load` and `apply`) and the peripherals attached to them."""

    def __init__(self, peripherals: Iterable[ConfiguredPeripheral]) -> None:
        self._peripherals = {p.id: p for p in peripherals}
        self._present: dict[str, Properties] = {}
        """Devpath -> properties, for openable nodes and the USB devices above them."""
        self._attached: dict[str, UdevDevice] = {}
        self._told_unknown: set[str] = set()
        self._told_ambiguous: set[Ambiguity] = set()

    @property
    def attached(self) -> dict[str, str]:
        """Peripheral id -> the node it is attached to."""
        return {pid: device.devnode for pid, device in self._attached.items()}

    def load(self, present: Iterable[Properties]) -> list[Action]:
        """Start (or start over after losing events) from what is plugged in now."""
        self._present = {}
        for properties in present:
            self._keep(properties)
        return self._settle()

    def apply(self, action: str, properties: Properties) -> list[Action]:
        """One udev event: ``add``, ``change`` or ``remove`` (others are ignored)."""
        if action in ACTIONS_THAT_ADD:
            if not self._keep(properties):
                return []
        elif action == "remove":
            if self._present.pop(properties.get("DEVPATH", ""), None) is None:
                return []
        else:
            return []
        return self._settle()

    def _keep(self, properties: Properties) -> bool:
        devpath = properties.get("DEVPATH")
        if not devpath or not (is_usb_device(properties) or device_node(properties)):
            return False
        self._present[devpath] = dict(properties)
        return True

    def _settle(self) -> list[Action]:
        devices = device_nodes(self._present.values())
        present_nodes = {device.devnode for device in devices}
        resolution = resolve(self._peripherals.values(), devices, self.attached)
        detached: list[Action] = []
        attached: list[Action] = []
        for pid, old in list(self._attached.items()):
            new = resolution.chosen.get(pid)
            if new is not None and new.devnode == old.devnode:
                self._attached[pid] = new
                continue
            moved = (new is not None and old.devnode in present_nodes
                     and new.physical == old.physical)
            if not moved:
                detached.append(Detach(pid, self._peripherals[pid].kind, old.devnode))
                del self._attached[pid]
            if new is not None:
                attached.append(self._attach(pid, new, announce=not moved))
        for pid, new in resolution.chosen.items():
            if pid not in self._attached:
                attached.append(self._attach(pid, new, announce=True))
        told: list[Action] = []
        for device in resolution.unknown:
            name = identity(device)
            if name and name not in self._told_unknown:
                self._told_unknown.add(name)
                told.append(UnknownDevice(name, device.devnode, device.label))
        for ambiguity in resolution.ambiguities:
            if ambiguity not in self._told_ambiguous:
                self._told_ambiguous.add(ambiguity)
                told.append(ambiguity)
        return detached + attached + told

    def _attach(self, pid: str, device: UdevDevice, announce: bool) -> Attach:
        self._attached[pid] = device
        return Attach(pid, self._peripherals[pid].kind, device.devnode, identity(device), announce)
