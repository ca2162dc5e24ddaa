"""How a peripheral's config names its device: never by kernel name (``event3``,
``ttyUSB0``), only by what survives a replug."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class DeviceMatch(BaseModel):
    """The identity of a peripheral's device; every given field must match."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    by_id: str | None = Field(
        default=None,
        description="A /dev/input/by-id/ or /dev/serial/by-id/ link (full path or name).",
    )
    id_serial: str | None = Field(default=None, description="udev ID_SERIAL (or ID_SERIAL_SHORT).")
    vendor_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{4}$")
    product_id: str | None = Field(default=None, pattern=r"^[0-9a-f]{4}$")
    subsystem: Literal["input", "tty", "usb", "sound", "usbmisc"] | None = None

    @model_validator(mode="after")
    def _names_something_stable(self) -> "DeviceMatch":
        if not (self.by_id or self.id_serial or self.vendor_id):
            raise ValueError("match needs by_id, id_serial or vendor_id (kernel names change on replug)")
        if self.product_id and not self.vendor_id:
            raise ValueError("product_id needs vendor_id")
        return self
