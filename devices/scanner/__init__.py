"""Scanners: barcode/QR readers at counters and kiosks, document scanners at digitisation desks.

Barcode/QR readers (kind ``scanner``):
- `wedge`: pure key-event -> code decoding for keyboard-wedge readers (US layout in `layout`);
- `lines`: pure byte -> code framing for serial readers;
- `codes` (+ `codes.toml`): what a code is, and the redaction of personal data;
- `driver`: the `Scanner` driver, adapter-agnostic;
- `evdev_adapter`, `serial_adapter`: the thin hardware adapters; `fake`: a reader in memory.

Document scanners (kind ``document-scanner``): presence and identity from udev,
readiness from SANE (`document`, `sane`, `document_driver`, `udev_adapter`,
`sane_adapter`, `document_fake`).
"""

from devices.scanner.config import ScannerConfig
from devices.scanner.document_config import DocumentScannerConfig
from devices.scanner.document_driver import DocumentScanner, build_document_scanner
from devices.scanner.driver import Scanner, build_scanner

__all__ = [
    "DocumentScanner",
    "DocumentScannerConfig",
    "Scanner",
    "ScannerConfig",
    "build_document_scanner",
    "build_scanner",
]
