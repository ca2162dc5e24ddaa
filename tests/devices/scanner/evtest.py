"""Reads event streams in the layout `evtest` prints into real ``evdev.InputEvent`` objects."""

from __future__ import annotations

import re
from pathlib import Path

import evdev
from evdev import ecodes

_EVENT = re.compile(
    r"^Event: time (\d+)\.(\d{6}), type (\d+) \((\w+)\), code (\d+) \((\w+)\), value (-?[0-9a-f]+)$"
)
_SYN = re.compile(r"^Event: time (\d+)\.(\d{6}), -{14} (SYN_\w+) -{12}$")


def read_evtest(path: Path) -> list[evdev.InputEvent]:
    """The events of an evtest capture; lines before "Testing ..." (the device header) are skipped.

    Raises ValueError on an ``Event:`` line that is not evtest's, or whose
    code number and name disagree."""
    events = []
    for number, line in enumerate(path.read_text(encoding="ascii").splitlines(), start=1):
        if not line.startswith("Event:"):
            continue
        if match := _SYN.match(line):
            sec, usec, name = match.groups()
            events.append(evdev.InputEvent(int(sec), int(usec), ecodes.EV_SYN, ecodes.ecodes[name], 0))
            continue
        match = _EVENT.match(line)
        if match is None:
            raise ValueError(f"{path.name}:{number}: not an evtest event line: {line!r}")
        sec, usec, type_, type_name, code, code_name, value = match.groups()
        if ecodes.ecodes[type_name] != int(type_) or ecodes.ecodes[code_name] != int(code):
            raise ValueError(f"{path.name}:{number}: {code_name} is not code {code} of {type_name}")
        # evtest prints MSC_SCAN and MSC_RAW values in hex, everything else in decimal.
        base = 16 if code_name in ("MSC_SCAN", "MSC_RAW") else 10
        events.append(evdev.InputEvent(int(sec), int(usec), int(type_), int(code), int(value, base)))
    return events
