"""AIM symbology identifiers: the ``]Qm`` prefix a reader can be set to send
before each code (ISO/IEC 15424), telling which kind of barcode it read."""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^\]([A-Za-z])([0-9A-Za-z])")
_NAMES = {
    "A": "code39",
    "C": "code128",
    "d": "datamatrix",
    "E": "ean-upc",
    "e": "gs1-databar",
    "F": "codabar",
    "G": "code93",
    "I": "itf",
    "L": "pdf417",
    "Q": "qr",
    "z": "aztec",
}


def split_symbology(code: str) -> tuple[str | None, str]:
    """``(symbology, code without the prefix)``; ``(None, code)`` when there is no prefix.

    An identifier this table does not name comes back as ``aim-<letter>``.
    GS1-128 (``]C1``) is told apart from plain Code 128.
    """
    match = _PREFIX.match(code)
    if match is None:
        return None, code
    letter, modifier = match.groups()
    name = "gs1-128" if (letter, modifier) == ("C", "1") else _NAMES.get(letter, f"aim-{letter}")
    return name, code[match.end():]
