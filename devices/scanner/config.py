from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from devices.hotplug.match import DeviceMatch
from devices.scanner.codes import CodeKind, Policy
from rpfleet.durations import Duration

WEDGE_TERMINATORS = ("enter", "tab", "none")


class ScannerConfig(BaseModel):
    """One barcode/QR reader: a keyboard wedge (evdev), a serial reader, or a fake."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["scanner"] = "scanner"
    id: str = Field(
        min_length=1, max_length=64, description="Stable name of this reader on the node."
    )
    counter: str | None = Field(
        default=None, min_length=1, max_length=128,
        description="The counter or kiosk this reader serves.",
    )
    source: Literal["evdev", "serial", "fake"] = "evdev"
    device: str | None = Field(
        default=None,
        description="The reader's /dev/input/by-id/... (evdev) or /dev/serial/by-id/... "
        "(serial) path.",
    )
    match: DeviceMatch | None = Field(
        default=None, description="Or: find the reader by udev identity when it is plugged in."
    )
    terminator: Literal["enter", "tab", "cr", "lf", "none"] = Field(
        default="enter",
        description="What ends a code: enter (Enter key; serial: CR, LF or CR LF), tab, "
        "cr or lf (serial only), or none (a silence of `timeout`).",
    )
    timeout: Duration = Field(
        default=0.5, gt=0, le=10,
        description="A code that stops this long before its terminator is reported partial; "
        "with terminator none, this silence ends a code. Above the input layer's 250 ms "
        "key-repeat delay by default, so a slow key is not a pause.",
    )
    max_length: int = Field(
        default=4096, ge=16, le=4096, description="Longer codes come in partial pieces."
    )
    baudrate: int = Field(default=9600, ge=300, le=921600, description="Serial readers only.")
    ack: str | None = Field(
        default=None,
        description="Serial readers only: bytes (hex) sent to the reader once a code is recorded, "
        "e.g. its good-read beep command.",
    )
    aim_prefix: bool = Field(
        default=False,
        description="The reader sends AIM symbology identifiers (]Q1 ...) before each code.",
    )
    code_kinds: list[CodeKind] | None = Field(
        default=None,
        description="Replaces the shipped classification table (devices/scanner/codes.toml).",
    )
    unknown_codes: Policy = Field(
        default="redact",
        description="Store a code no kind matches in full (keep) or only its length (redact, "
        "the default: an unknown QR may hold personal data).",
    )
    partial_codes: Policy = Field(
        default="redact",
        description="The same for partial reads, which may be the broken start of personal data.",
    )
    hash_secret_file: Path | None = Field(
        default=None,
        description="File holding the secret that keys hashed parts (e.g. citizen ID numbers); "
        "without it those parts are not stored at all.",
    )
    fake_scan_every: Duration | None = Field(
        default=None, gt=0, description="Fake readers only: scan a demo code about this often."
    )

    @field_validator("ack")
    @classmethod
    def _hex(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"(?:[0-9a-fA-F]{2})+", value.replace(" ", "")):
            raise ValueError(f"{value!r} is not hex bytes (e.g. \"16 4d 0d\")")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> "ScannerConfig":
        if self.source in ("evdev", "serial") and not (self.device or self.match):
            raise ValueError(f"device or match is required when source is {self.source!r}")
        if self.source == "evdev" and self.terminator not in WEDGE_TERMINATORS:
            raise ValueError(
                f"terminator {self.terminator!r} is a serial byte; a keyboard wedge ends codes "
                f"with {', '.join(WEDGE_TERMINATORS)}"
            )
        if self.ack is not None and self.source != "serial":
            raise ValueError("ack is for serial readers only (a wedge reader cannot be written to)")
        return self

    @property
    def ack_bytes(self) -> bytes | None:
        return bytes.fromhex(self.ack.replace(" ", "")) if self.ack else None
