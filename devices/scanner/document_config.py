from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from devices.hotplug.match import DeviceMatch
from rpfleet.durations import Duration


class DocumentScannerConfig(BaseModel):
    """One document scanner at a digitisation desk: reported as peripheral health only."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["document-scanner"] = "document-scanner"
    id: str = Field(
        min_length=1, max_length=64, description="Stable name of this scanner on the node."
    )
    counter: str | None = Field(
        default=None, min_length=1, max_length=128, description="The desk this scanner serves."
    )
    source: Literal["sane", "fake"] = "sane"
    match: DeviceMatch | None = Field(
        default=None, description="The scanner's udev identity (vendor_id/product_id, id_serial)."
    )
    device: str | None = Field(
        default=None,
        description="Or a /dev/bus/usb/BBB/DDD path; it changes on replug, so prefer match.",
    )
    sane: Literal["off", "list", "open"] = Field(
        default="list",
        description="off: presence only; list: `scanimage -L` must list it; open: also open it "
        "(`scanimage -d NAME -n`) to see a jam or an open cover. Opening may briefly hold the "
        "scanner while the desk's own software wants it, so it is not the default.",
    )
    sane_device: str | None = Field(
        default=None,
        description="SANE's name for it when its USB address cannot find it "
        "(e.g. a network scanner).",
    )
    probe_every: Duration = Field(default=60, ge=5, le=3600, description="How often to look again.")

    @model_validator(mode="after")
    def _names_a_device(self) -> "DocumentScannerConfig":
        if self.source == "sane" and not (self.match or self.device):
            raise ValueError("match or device is required when source is 'sane'")
        return self
