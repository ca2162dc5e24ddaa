"""A ticket printer's config: validated on the server before it is sent and on the node
before use."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.hotplug.match import DeviceMatch
from rpfleet.durations import Duration

# Kernel names that another device may take after a replug.
_KERNEL_NAME = re.compile(r"/dev/(ttyUSB|ttyACM|ttyS)[0-9]+")


class TicketPrinterConfig(BaseModel):
    """One ESC/POS ticket printer at a kiosk, on USB (printer class) or a serial port."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["ticket-printer"] = "ticket-printer"
    id: str = Field(
        min_length=1, max_length=64, description="Stable name of this printer on the node."
    )
    port: Literal["usblp", "serial", "fake"] = Field(
        default="usblp",
        description="usblp: a USB printer-class device (/dev/usb/lpN); serial: a serial port "
        "(a USB-serial adapter's /dev/serial/by-id/ link); fake: in memory (tests, demo).",
    )
    device: str | None = Field(
        default=None,
        description="The printer's path: /dev/usb/lp0 (usblp; prefer match when the kiosk has "
        "two USB printers), or its /dev/serial/by-id/... link (serial).",
    )
    match: DeviceMatch | None = Field(
        default=None, description="Or: find it by udev identity when it is plugged in."
    )
    baudrate: Literal[9600, 19200, 38400, 57600, 115200] = Field(
        default=115200, description="Serial only: as the printer's DIP switches set it."
    )
    flow_control: Literal["none", "rtscts", "dsrdtr", "xonxoff"] = Field(
        default="none", description="Serial only: the printer's handshake."
    )
    paper_width: Literal[58, 80] = Field(default=80, description="Paper roll width in mm.")
    vietnamese_code_page: int | None = Field(
        default=None, ge=0, le=255,
        description="The ESC t number of the printer's Windows-1258 (Vietnamese) code page, "
        "as its manual lists it; unset (most printers): Vietnamese lines are printed as "
        "images drawn with DejaVu Sans.",
    )
    qr_module: int = Field(default=6, ge=2, le=16, description="QR module size in dots.")
    partial_cut: bool = Field(default=True, description="Leave one point uncut (the ticket "
                              "does not fall), or cut through.")
    status_every: Duration = Field(
        default=10, ge=1, le=3600, description="While idle, ask the printer's status this often."
    )
    answer_timeout: Duration = Field(
        default=1, ge=0.1, le=10,
        description="A status query not answered within this: the printer is gone.",
    )
    print_timeout: Duration = Field(
        default=30, ge=2, le=300, description="A ticket not finished within this has failed."
    )

    @property
    def source(self) -> str | None:
        """What hot-plug reads to know which node a printer opens (`serial`: a tty)."""
        return "serial" if self.port == "serial" else None

    @model_validator(mode="before")
    @classmethod
    def _usblp_matches_usbmisc(cls, data: Any) -> Any:
        # A USB printer's node is in udev's usbmisc subsystem; say so for hot-plug.
        if isinstance(data, dict) and data.get("port", "usblp") == "usblp":
            match = data.get("match")
            if isinstance(match, dict) and "subsystem" not in match:
                data = {**data, "match": {**match, "subsystem": "usbmisc"}}
        return data

    @field_validator("device")
    @classmethod
    def _stable_name(cls, device: str | None) -> str | None:
        if device is not None and _KERNEL_NAME.fullmatch(device):
            raise ValueError(f"{device!r} is a kernel name that changes on replug; "
                             "use its /dev/serial/by-id/ link")
        return device

    @model_validator(mode="after")
    def _consistent(self) -> "TicketPrinterConfig":
        if self.port != "fake" and not (self.device or self.match):
            raise ValueError(f"device or match is required when port is {self.port!r}")
        if self.port == "usblp" and self.device and not self.device.startswith("/dev/usb/lp"):
            raise ValueError(f"device {self.device!r}: a USB printer is /dev/usb/lpN; "
                             "a serial printer needs port = \"serial\"")
        if self.port == "serial" and self.device and self.device.startswith("/dev/usb/lp"):
            raise ValueError(f"device {self.device!r} is a USB printer: use port = \"usblp\"")
        return self
