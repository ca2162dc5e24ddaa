"""What SANE's ``scanimage`` says about document scanners. Pure: text in, facts out.

Formats are sane-backends' own (frontend/scanimage.c): ``scanimage -L`` prints
one line per device, ``device `NAME' is a VENDOR MODEL TYPE``, or a
"No scanners were identified" paragraph; a failed open or scan prints
``scanimage: open of device NAME failed: STATUS`` or ``scanimage: sane_start:
STATUS``, STATUS being sane_strstatus() text. The adapter runs scanimage with
LC_ALL=C because those texts are translated.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

SaneState = Literal["ready", "busy", "jammed", "cover-open", "error"]

_LISTED = re.compile(r"^device `(?P<name>[^']+)' is an? (?P<description>.*?)\s*$")
_USB_ADDRESS = re.compile(r"libusb:(?P<bus>\d{3}):(?P<device>\d{3})$")

# sane_strstatus() texts (sanei/sane_strstatus.c) and what they mean for a desk.
_STATUS: tuple[tuple[str, SaneState], ...] = (
    ("Document feeder jammed", "jammed"),
    ("Scanner cover is open", "cover-open"),
    ("Device busy", "busy"),
)


@dataclass(frozen=True)
class SaneDevice:
    name: str
    """SANE's device name, e.g. ``fujitsu:libusb:001:004``; what ``scanimage -d`` takes."""
    description: str
    """Vendor, model and type as scanimage joins them (not split: models have spaces)."""

    @property
    def backend(self) -> str:
        return self.name.split(":", 1)[0]

    @property
    def usb_address(self) -> tuple[str, str] | None:
        """(bus, device) numbers, three digits each, for devices reached through libusb."""
        match = _USB_ADDRESS.search(self.name)
        return (match["bus"], match["device"]) if match else None


def parse_device_list(text: str) -> list[SaneDevice]:
    """The devices in ``scanimage -L`` output; other lines (the "No scanners" note,
    "default device is ...") are not devices."""
    devices = []
    for line in text.splitlines():
        match = _LISTED.match(line)
        if match:
            devices.append(SaneDevice(match["name"], match["description"]))
    return devices


def find_device(
    devices: list[SaneDevice],
    *,
    name: str | None = None,
    usb_address: tuple[str, str] | None = None,
    serial: str | None = None,
) -> SaneDevice | None:
    """The listed device that is ours: by its configured SANE ``name`` when given,
    else by the USB bus/device numbers udev reports, else by the USB serial number
    in the name (backends such as hpaio name devices ``...?serial=XYZ``)."""
    if name is not None:
        return next((d for d in devices if d.name == name), None)
    if usb_address is not None:
        found = next((d for d in devices if d.usb_address == usb_address), None)
        if found:
            return found
    if serial:
        return next((d for d in devices if serial in d.name), None)
    return None


def probe_state(returncode: int, stderr: str) -> tuple[SaneState, str | None]:
    """What opening (or trying) a device said: ``(state, SANE's words or None)``.

    A known status text wins over the exit code; any other failure is ``error``
    with scanimage's last line.
    """
    for text, state in _STATUS:
        if text in stderr:
            return state, text
    if returncode == 0:
        return "ready", None
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "error", (lines[-1] if lines else f"scanimage exited with {returncode}")
