"""Keys as QEMU's QMP ``input-send-event`` names them (qcodes), from evdev names and
from text typed on a US keyboard layout (what a wedge scanner emulates)."""

from __future__ import annotations

import string

SHIFT = "shift"

_UNSHIFTED = {
    "-": "minus", "=": "equal", "[": "bracket_left", "]": "bracket_right", "\\": "backslash",
    ";": "semicolon", "'": "apostrophe", "`": "grave_accent", ",": "comma", ".": "dot",
    "/": "slash", " ": "spc", "\n": "ret", "\r": "ret", "\t": "tab",
}
_SHIFTED = {
    "!": "1", "@": "2", "#": "3", "$": "4", "%": "5", "^": "6", "&": "7", "*": "8", "(": "9",
    ")": "0", "_": "minus", "+": "equal", "{": "bracket_left", "}": "bracket_right",
    "|": "backslash", ":": "semicolon", '"': "apostrophe", "~": "grave_accent", "<": "comma",
    ">": "dot", "?": "slash",
}
_EVDEV = {
    "KEY_ENTER": "ret", "KEY_SPACE": "spc", "KEY_TAB": "tab", "KEY_ESC": "esc",
    "KEY_BACKSPACE": "backspace", "KEY_LEFTSHIFT": "shift", "KEY_RIGHTSHIFT": "shift_r",
    "KEY_LEFTCTRL": "ctrl", "KEY_RIGHTCTRL": "ctrl_r", "KEY_LEFTALT": "alt",
    "KEY_KPENTER": "kp_enter", "KEY_KPPLUS": "kp_add", "KEY_KPMINUS": "kp_subtract",
    "KEY_KPASTERISK": "kp_multiply", "KEY_KPSLASH": "kp_divide", "KEY_KPDOT": "kp_decimal",
    "KEY_NUMLOCK": "num_lock", "KEY_MINUS": "minus", "KEY_EQUAL": "equal", "KEY_DOT": "dot",
    "KEY_COMMA": "comma", "KEY_SLASH": "slash", "KEY_SEMICOLON": "semicolon",
}


_QCODE_TO_EVDEV = {
    "minus": "KEY_MINUS", "equal": "KEY_EQUAL", "bracket_left": "KEY_LEFTBRACE",
    "bracket_right": "KEY_RIGHTBRACE", "backslash": "KEY_BACKSLASH", "semicolon": "KEY_SEMICOLON",
    "apostrophe": "KEY_APOSTROPHE", "grave_accent": "KEY_GRAVE", "comma": "KEY_COMMA",
    "dot": "KEY_DOT", "slash": "KEY_SLASH", "spc": "KEY_SPACE", "ret": "KEY_ENTER", "tab": "KEY_TAB",
    "shift": "KEY_LEFTSHIFT",
}


def evdev_name(code: str) -> str:
    """The evdev key name the guest sees for a qcode (``kp_1`` -> ``KEY_KP1``)."""
    if code in _QCODE_TO_EVDEV:
        return _QCODE_TO_EVDEV[code]
    if code.startswith("kp_") and code[3:].isdigit():
        return f"KEY_KP{code[3:]}"
    if len(code) == 1 and code.isalnum() or code.startswith("f") and code[1:].isdigit():
        return f"KEY_{code.upper()}"
    raise KeyError(f"no evdev name known for qcode {code}")


def typed_events(text: str) -> list[tuple[str, int]]:
    """The (evdev key name, value) events, 1 down and 0 up, that typing ``text`` gives."""
    events = []
    for code, shifted in strokes(text):
        name = evdev_name(code)
        keys = [("KEY_LEFTSHIFT", 1), (name, 1), (name, 0), ("KEY_LEFTSHIFT", 0)]
        events += keys if shifted else keys[1:3]
    return events


def qcode(key: str) -> str:
    """The qcode of an evdev name (``KEY_KP1`` -> ``kp_1``, ``KEY_F2`` -> ``f2``,
    ``KEY_A`` -> ``a``); anything else is taken to be a qcode already."""
    if not key.startswith("KEY_"):
        return key
    if key in _EVDEV:
        return _EVDEV[key]
    name = key.removeprefix("KEY_")
    if name.startswith("KP") and name[2:].isdigit():
        return f"kp_{name[2:]}"
    if len(name) == 1 and name.isalnum() or name.startswith("F") and name[1:].isdigit():
        return name.lower()
    raise KeyError(f"no qcode known for {key}; pass the qcode itself")


def strokes(text: str) -> list[tuple[str, bool]]:
    """(qcode, shifted) for each character of ``text`` on a US layout."""
    out = []
    for char in text:
        if char in string.ascii_lowercase or char in string.digits:
            out.append((char, False))
        elif char in string.ascii_uppercase:
            out.append((char.lower(), True))
        elif char in _UNSHIFTED:
            out.append((_UNSHIFTED[char], False))
        elif char in _SHIFTED:
            out.append((_SHIFTED[char], True))
        else:
            raise ValueError(f"{char!r} cannot be typed on a US keyboard")
    return out


def key_events(code: str, down: bool) -> dict:
    return {"type": "key", "data": {"down": down, "key": {"type": "qcode", "data": code}}}
