"""Reads event streams in the layout `evtest` prints into real `evdev.InputEvent` objects.

    Event: time 1732512000.123456, type 1 (EV_KEY), code 76 (KEY_KP5), value 1
    Event: time 1732512000.123456, -------------- SYN_REPORT ------------

Lines that are not events (evtest's device description, ``#`` notes) are
skipped. As evtest does, MSC_SCAN and MSC_RAW values are hex. The names in
parentheses must agree with the numbers, so a typo in a case file fails
loudly instead of testing something else.
"""

from __future__ import annotations

import re
from pathlib import Path

from evdev import InputEvent, ecodes

_EVENT = re.compile(
    r"Event: time (?P<sec>\d+)\.(?P<usec>\d{6}), (?:"
    r"type (?P<type>\d+) \((?P<type_name>\w+)\), code (?P<code>\d+) \((?P<code_name>\w+)\), "
    r"value (?P<value>-?[0-9a-f]+)"
    r"|[-+>]+ (?P<syn>SYN_\w+) [-+<]+)"
)


def read_evtest(path: Path) -> list[InputEvent]:
    """The events in an evtest capture, in order; AssertionError names a bad line."""
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.startswith("Event:"):
            continue
        match = _EVENT.fullmatch(line.strip())
        assert match, f"{path.name}:{number}: not an evtest event line: {line!r}"
        sec, usec = int(match["sec"]), int(match["usec"])
        if match["syn"]:
            events.append(InputEvent(sec, usec, ecodes.EV_SYN, ecodes.ecodes[match["syn"]], 0))
            continue
        type_, code = int(match["type"]), int(match["code"])
        assert ecodes.EV.get(type_) == match["type_name"], f"{path.name}:{number}: type {type_}"
        names = ecodes.bytype[type_].get(code, ())
        names = (names,) if isinstance(names, str) else names
        assert match["code_name"] in names, f"{path.name}:{number}: code {code} is {names}"
        hex_value = type_ == ecodes.EV_MSC and code in (ecodes.MSC_SCAN, ecodes.MSC_RAW)
        events.append(InputEvent(sec, usec, type_, code, int(match["value"], 16 if hex_value else 10)))
    return events
