"""Maps a peripheral kind to its config model and driver factory (ESPHome-style).

The agent starts what its config lists; nothing else knows a concrete driver class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Callable, Union

from pydantic import BaseModel, Field

from devices.base import Driver, Record
from devices.kiosk_browser import KioskBrowserConfig, build_kiosk_browser
from devices.printer import TicketPrinterConfig, build_ticket_printer
from devices.rating_pad import RatingPadConfig, build_rating_pad
from devices.scanner import DocumentScannerConfig, ScannerConfig, build_document_scanner, build_scanner
from devices.soundbox import SoundboxConfig, build_soundbox


@dataclass(frozen=True)
class DriverKind:
    config: type[BaseModel]
    build: Callable[[Any, Record], Driver]


KINDS: dict[str, DriverKind] = {
    "rating-pad": DriverKind(RatingPadConfig, build_rating_pad),
    "scanner": DriverKind(ScannerConfig, build_scanner),
    "document-scanner": DriverKind(DocumentScannerConfig, build_document_scanner),
    "soundbox": DriverKind(SoundboxConfig, build_soundbox),
    "kiosk-browser": DriverKind(KioskBrowserConfig, build_kiosk_browser),
    "ticket-printer": DriverKind(TicketPrinterConfig, build_ticket_printer),
}

_CONFIGS = tuple(kind.config for kind in KINDS.values())
# pydantic needs a real union for a discriminator; one registered kind is just its model.
PeripheralConfig = (
    Annotated[Union[_CONFIGS], Field(discriminator="kind")]  # type: ignore[valid-type]
    if len(_CONFIGS) > 1
    else _CONFIGS[0]
)


def build_driver(config: BaseModel, record: Record) -> Driver:
    """The driver for one configured peripheral, not yet started."""
    kind = getattr(config, "kind")
    return KINDS[kind].build(config, record)
