"""A USB device's udev properties through pyudev. Kept thin: `document` reads them."""

from __future__ import annotations

import asyncio


class UdevProperties:
    async def usb_properties(self, devnode: str) -> dict[str, str] | None:
        """Properties of the USB device at (or above) ``devnode``; None when it is not there."""
        return await asyncio.to_thread(_read, devnode)


def _read(devnode: str) -> dict[str, str] | None:
    import pyudev

    try:
        device = pyudev.Devices.from_device_file(pyudev.Context(), devnode)
    except (pyudev.DeviceNotFoundError, OSError, ValueError):
        return None
    usb = device if device.device_type == "usb_device" else device.find_parent("usb", "usb_device")
    return dict(usb.properties) if usb is not None else None
