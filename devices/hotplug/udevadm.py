"""Reads the text `udevadm info` prints into udev property dicts (pure).

One device is a block of lines starting with ``P:``; ``udevadm info --export-db``
also separates devices by blank lines. Only ``E: KEY=value`` lines are kept:
they are what a udev event carries. The others (``P:`` devpath, ``N:`` node,
``S:`` link, ``A:`` sysfs attribute and the rest) repeat ``DEVPATH``,
``DEVNAME``, ``DEVLINKS`` or hold what no event has. Pasted output is often
indented (a forum quote, a README): leading whitespace is ignored.
"""

from __future__ import annotations

import re

_LINE = re.compile(r"^(?P<tag>[A-Z]): ?(?P<rest>.*)$")


class UdevadmFormatError(ValueError):
    """A line that is neither blank nor ``X: ...``; the message gives its number."""


def parse_udevadm_info(text: str) -> list[dict[str, str]]:
    """Property dicts of every device in ``text``, in the order they appear.

    A block with no ``E:`` line (only a ``P:`` line, say) yields nothing.
    Raises `UdevadmFormatError` on a line that is not ``X: ...`` or an ``E:``
    line without ``=``.
    """
    devices: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line:
            if current:
                devices.append(current)
            current = {}
            continue
        found = _LINE.match(line)
        if found is None:
            raise UdevadmFormatError(f"line {number}: not udevadm info output: {raw!r}")
        if found["tag"] == "P" and current:
            devices.append(current)  # `udevadm info` blocks pasted back to back
            current = {}
        if found["tag"] != "E":
            continue
        key, sep, value = found["rest"].partition("=")
        if not sep or not key:
            raise UdevadmFormatError(f"line {number}: property without '=': {raw!r}")
        current[key] = value
    if current:
        devices.append(current)
    return devices
