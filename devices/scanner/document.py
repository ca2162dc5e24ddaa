"""Document scanners at digitisation desks: who is plugged in (udev) and whether
it can scan (SANE), as one peripheral state. Pure: facts in, a state out.

| what is known                                    | state    |
|--------------------------------------------------|----------|
| no USB device                                    | missing  |
| plugged in; SANE not asked or not installed      | ok       |
| plugged in; SANE does not list it                | degraded |
| listed (and, when opened, ready or busy)         | ok       |
| opened: jammed, cover open, or any other failure | degraded |
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Mapping

from devices.scanner.sane import SaneDevice, SaneState

SaneMode = Literal["off", "list", "open"]
HealthState = Literal["ok", "degraded", "missing"]


@dataclass(frozen=True)
class UsbIdentity:
    """A USB device as udev describes it: what survives a replug, and where it is now."""

    vendor_id: str
    product_id: str
    serial: str | None
    """``ID_SERIAL_SHORT``, the device's own serial number, when it has one."""
    vendor: str | None
    model: str | None
    usb_address: tuple[str, str] | None
    """(BUSNUM, DEVNUM): changes on every replug; how SANE's libusb names find it."""
    sane_known: bool
    """sane-backends' udev rules tagged it (``libsane_matched=yes``): some backend supports it."""

    @classmethod
    def from_udev(cls, properties: Mapping[str, str]) -> "UsbIdentity":
        """From the properties of a USB device (``udevadm info`` ``E:`` lines).

        Raises KeyError when ``ID_VENDOR_ID`` or ``ID_MODEL_ID`` is missing (not a USB device).
        """
        bus, device = properties.get("BUSNUM"), properties.get("DEVNUM")
        return cls(
            vendor_id=properties["ID_VENDOR_ID"].lower(),
            product_id=properties["ID_MODEL_ID"].lower(),
            serial=properties.get("ID_SERIAL_SHORT") or None,
            vendor=_readable(properties, "ID_VENDOR_FROM_DATABASE", "ID_VENDOR"),
            model=_readable(properties, "ID_MODEL_FROM_DATABASE", "ID_MODEL"),
            usb_address=(bus.zfill(3), device.zfill(3)) if bus and device else None,
            sane_known=properties.get("libsane_matched") == "yes",
        )

    def describe(self) -> str:
        name = " ".join(part for part in (self.vendor, self.model) if part) or "USB device"
        serial = f", serial {self.serial}" if self.serial else ""
        return f"{name} ({self.vendor_id}:{self.product_id}{serial})"


@dataclass(frozen=True)
class Assessment:
    state: HealthState
    detail: str
    sane: SaneState | None = None


def assess(
    identity: UsbIdentity | None,
    *,
    mode: SaneMode,
    listing: str | None = None,
    device: SaneDevice | None = None,
    opened: tuple[SaneState, str | None] | None = None,
) -> Assessment:
    """The peripheral state of a desk scanner.

    ``listing``: scanimage -L output (None: not asked, or scanimage not installed);
    ``device``: our device in that listing; ``opened``: `sane.probe_state` of opening it.
    """
    if identity is None:
        return Assessment("missing", "not plugged in")
    who = identity.describe()
    if mode == "off":
        return Assessment("ok", f"{who}: present")
    if listing is None:
        return Assessment("ok", f"{who}: present; readiness unknown (scanimage is not installed)")
    if device is None:
        hint = "no permission on the USB device?" if identity.sane_known else "no backend for it?"
        return Assessment("degraded", f"{who}: plugged in but SANE does not list it ({hint})")
    if opened is None:
        return Assessment("ok", f"ready: {who} as {device.name}", "ready")
    sane_state, words = opened
    said = f" ({words})" if words else ""
    if sane_state in ("ready", "busy"):
        return Assessment("ok", f"{sane_state}: {who} as {device.name}", sane_state)
    return Assessment("degraded", f"{sane_state}{said}: {who} as {device.name}", sane_state)


def _readable(properties: Mapping[str, str], *keys: str) -> str | None:
    for key in keys:
        value = properties.get(key)
        if value:
            return value.replace("_", " ")
    return None
