"""The DocumentScanner driver: looks at the desk's scanner now and then, and on
every plug and unplug, and reports what it finds as peripheral health.

It records no events: attach and detach events are hot-plug's, and scans are
the desk software's business, not the fleet's.
"""

from __future__ import annotations

import logging
from typing import Protocol

from devices.base import DeviceSlot, OnSlot, Record
from devices.scanner.document import Assessment, UsbIdentity, assess
from devices.scanner.document_config import DocumentScannerConfig
from devices.scanner.sane import find_device, parse_device_list, probe_state
from rpfleet.protocol.messages import PeripheralHealth

log = logging.getLogger(__name__)


class UsbPropertiesReader(Protocol):
    async def usb_properties(self, devnode: str) -> dict[str, str] | None:
        """udev properties of the USB device at ``devnode``; None when it is not there."""


class SaneProbe(Protocol):
    async def list_devices(self) -> str | None:
        """``scanimage -L`` output; None when scanimage is not installed."""

    async def open_device(self, name: str) -> tuple[int, str]:
        """Open SANE device ``name`` without scanning: (exit code, stderr)."""


class DocumentScanner(OnSlot):
    kind = "document-scanner"

    def __init__(
        self,
        config: DocumentScannerConfig,
        udev: UsbPropertiesReader,
        sane: SaneProbe,
        configured_path: str | None = None,
    ) -> None:
        self.config = config
        self.id = config.id
        self.slot = DeviceSlot(configured_path or config.device)
        self._udev = udev
        self._sane = sane
        self._state = PeripheralHealth(id=config.id, kind=self.kind, state="missing")

    def health(self) -> PeripheralHealth:
        return self._state

    async def run(self) -> None:
        while True:
            found = await self.look()
            if found.state != self._state.state:
                log.info("document scanner %s: %s (%s)", self.id, found.state, found.detail)
            self._state = PeripheralHealth(
                id=self.id, kind=self.kind, state=found.state, detail=found.detail
            )
            await self.slot.wait_change(self.config.probe_every)

    async def look(self) -> Assessment:
        """Ask udev and SANE (as far as the config says) what the scanner is doing now."""
        path = self.slot.path
        properties = await self._udev.usb_properties(path) if path else None
        if properties is None or "ID_VENDOR_ID" not in properties:
            return assess(None, mode=self.config.sane)
        identity = UsbIdentity.from_udev(properties)
        if self.config.sane == "off":
            return assess(identity, mode="off")
        listing = await self._sane.list_devices()
        if listing is None:
            return assess(identity, mode=self.config.sane)
        device = find_device(
            parse_device_list(listing),
            name=self.config.sane_device,
            usb_address=identity.usb_address,
            serial=identity.serial,
        )
        if device is None or self.config.sane == "list":
            return assess(identity, mode=self.config.sane, listing=listing, device=device)
        opened = probe_state(*await self._sane.open_device(device.name))
        return assess(identity, mode="open", listing=listing, device=device, opened=opened)


def build_document_scanner(config: DocumentScannerConfig, record: Record) -> DocumentScanner:
    """The driver for one configured desk scanner, not yet started (``record`` is unused)."""
    if config.source == "fake":
        from devices.scanner.document_fake import DEMO_LISTING, DEMO_PROPERTIES, FakeDeskScanner

        fake = FakeDeskScanner(dict(DEMO_PROPERTIES), DEMO_LISTING)
        return DocumentScanner(config, fake, fake, configured_path=DEMO_PROPERTIES["DEVNAME"])
    from devices.scanner.sane_adapter import ScanimageProbe
    from devices.scanner.udev_adapter import UdevProperties

    return DocumentScanner(config, UdevProperties(), ScanimageProbe())
