"""A desk scanner in memory, behind the same interfaces as the udev and scanimage adapters.

Tests (and the demo) set what udev and SANE would say: `plug`, `unplug`,
`listing`, `open_result`.
"""

from __future__ import annotations

# A Fujitsu fi-7160 (04c5:132e, as sane-backends' fujitsu.desc lists it); the serial is invented.
DEMO_PROPERTIES = {
    "SUBSYSTEM": "usb", "DEVTYPE": "usb_device", "DEVNAME": "/dev/bus/usb/001/004",
    "BUSNUM": "001", "DEVNUM": "004", "ID_VENDOR_ID": "04c5", "ID_MODEL_ID": "132e",
    "ID_VENDOR": "Fujitsu", "ID_MODEL": "fi-7160", "ID_SERIAL_SHORT": "A0DEMO0001",
    "libsane_matched": "yes",
}
DEMO_LISTING = "device `fujitsu:libusb:001:004' is a FUJITSU fi-7160 scanner\n"


class FakeDeskScanner:
    def __init__(
        self,
        properties: dict[str, str] | None = None,
        listing: str | None = None,
        open_result: tuple[int, str] = (0, ""),
    ) -> None:
        self.properties = properties
        self.listing = listing
        self.open_result = open_result
        self.opened: list[str] = []

    def plug(self, properties: dict[str, str]) -> None:
        self.properties = dict(properties)

    def unplug(self) -> None:
        self.properties = None

    async def usb_properties(self, devnode: str) -> dict[str, str] | None:
        if self.properties is None or self.properties.get("DEVNAME") != devnode:
            return None
        return dict(self.properties)

    async def list_devices(self) -> str | None:
        return self.listing

    async def open_device(self, name: str) -> tuple[int, str]:
        self.opened.append(name)
        return self.open_result
