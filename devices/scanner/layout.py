"""The US keyboard layout a keyboard-wedge reader types with.

Wedge readers are set up for a US layout out of the box; a reader set to
another layout types other keys for the same code, so the layout is data here.
"""

from __future__ import annotations

from string import ascii_uppercase

SHIFT_KEYS = frozenset({"KEY_LEFTSHIFT", "KEY_RIGHTSHIFT"})
CHORD_KEYS = frozenset({
    "KEY_LEFTCTRL", "KEY_RIGHTCTRL", "KEY_LEFTALT", "KEY_RIGHTALT", "KEY_LEFTMETA", "KEY_RIGHTMETA",
})
"""Held modifiers after which a key is a command, not text."""
CAPS_LOCK = "KEY_CAPSLOCK"
LOCK_KEYS = frozenset({"KEY_NUMLOCK", "KEY_SCROLLLOCK"})
"""Toggles that change no printable character a reader sends: ignored."""
ENTER_KEYS = frozenset({"KEY_ENTER", "KEY_KPENTER"})
TAB_KEY = "KEY_TAB"

# key -> (plain, with shift). Letters are listed apart: Caps Lock affects only them.
LETTERS: dict[str, tuple[str, str]] = {f"KEY_{c}": (c.lower(), c) for c in ascii_uppercase}
US: dict[str, tuple[str, str]] = {
    "KEY_1": ("1", "!"), "KEY_2": ("2", "@"), "KEY_3": ("3", "#"), "KEY_4": ("4", "$"),
    "KEY_5": ("5", "%"), "KEY_6": ("6", "^"), "KEY_7": ("7", "&"), "KEY_8": ("8", "*"),
    "KEY_9": ("9", "("), "KEY_0": ("0", ")"),
    "KEY_MINUS": ("-", "_"), "KEY_EQUAL": ("=", "+"),
    "KEY_LEFTBRACE": ("[", "{"), "KEY_RIGHTBRACE": ("]", "}"), "KEY_BACKSLASH": ("\\", "|"),
    "KEY_SEMICOLON": (";", ":"), "KEY_APOSTROPHE": ("'", '"'), "KEY_GRAVE": ("`", "~"),
    "KEY_COMMA": (",", "<"), "KEY_DOT": (".", ">"), "KEY_SLASH": ("/", "?"),
    "KEY_SPACE": (" ", " "),
    "KEY_TAB": ("\t", "\t"), "KEY_ENTER": ("\n", "\n"), "KEY_KPENTER": ("\n", "\n"),
    # Readers in "keypad emulation" send digits from the keypad; Num Lock is
    # assumed on, as the readers' manuals require for that mode.
    **{f"KEY_KP{n}": (str(n), str(n)) for n in range(10)},
    "KEY_KPDOT": (".", "."), "KEY_KPSLASH": ("/", "/"), "KEY_KPASTERISK": ("*", "*"),
    "KEY_KPMINUS": ("-", "-"), "KEY_KPPLUS": ("+", "+"),
}


def character(code: str, *, shift: bool, caps: bool) -> str | None:
    """The character key ``code`` types, or None when it types none."""
    if code in LETTERS:
        plain, shifted = LETTERS[code]
        return shifted if shift != caps else plain
    if code in US:
        plain, shifted = US[code]
        return shifted if shift else plain
    return None


def knows(code: str) -> bool:
    """Whether the layout gives ``code`` any meaning (a character or a modifier)."""
    return (
        code in LETTERS or code in US or code in SHIFT_KEYS or code in CHORD_KEYS
        or code == CAPS_LOCK or code in LOCK_KEYS
    )
