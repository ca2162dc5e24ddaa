"""Writes wedge-reader event streams in the layout `evtest` prints.

No wedge reader is attached to the machine these tests were written on, so
the streams are synthesised, event for event as the kernel's hid-input layer
reports a USB HID boot keyboard: one HID report per packet, the modifier
byte's changes before the key array's, each key event preceded by its
MSC_SCAN usage (page 7), packets ``gap_ms`` apart. The printed layout follows
evtest.c's ``print_events`` (MSC_SCAN values in hex, SYN lines with dashes).

Usage: ``python synthesize.py`` rewrites every ``input`` file this script
knows; the ``expected`` files are written by hand and never generated.
"""

from __future__ import annotations

import string
from pathlib import Path

from evdev import ecodes

HERE = Path(__file__).parent
T0_US = 1732512000_000000  # 2024-11-25 05:20 UTC, 12:20 in Hanoi, in microseconds

# HID keyboard page usages (USB HID Usage Tables, page 0x07).
USAGE = {
    **{f"KEY_{c}": 0x04 + i for i, c in enumerate(string.ascii_uppercase)},
    **{f"KEY_{n}": 0x1E + i for i, n in enumerate("123456789")}, "KEY_0": 0x27,
    "KEY_ENTER": 0x28, "KEY_TAB": 0x2B, "KEY_SPACE": 0x2C, "KEY_MINUS": 0x2D, "KEY_EQUAL": 0x2E,
    "KEY_LEFTBRACE": 0x2F, "KEY_RIGHTBRACE": 0x30, "KEY_BACKSLASH": 0x31, "KEY_SEMICOLON": 0x33,
    "KEY_APOSTROPHE": 0x34, "KEY_GRAVE": 0x35, "KEY_COMMA": 0x36, "KEY_DOT": 0x37, "KEY_SLASH": 0x38,
    "KEY_CAPSLOCK": 0x39, "KEY_LEFTSHIFT": 0xE1, "KEY_KPENTER": 0x58,
}
PLAIN = {
    **{c: f"KEY_{c.upper()}" for c in string.ascii_lowercase},
    **{d: f"KEY_{d}" for d in string.digits},
    " ": "KEY_SPACE", "-": "KEY_MINUS", "=": "KEY_EQUAL", "[": "KEY_LEFTBRACE", "]": "KEY_RIGHTBRACE",
    "\\": "KEY_BACKSLASH", ";": "KEY_SEMICOLON", "'": "KEY_APOSTROPHE", "`": "KEY_GRAVE",
    ",": "KEY_COMMA", ".": "KEY_DOT", "/": "KEY_SLASH",
}
SHIFTED = {
    **{c: f"KEY_{c}" for c in string.ascii_uppercase},
    **dict(zip("!@#$%^&*()", (f"KEY_{d}" for d in "1234567890"))),
    "_": "KEY_MINUS", "+": "KEY_EQUAL", "{": "KEY_LEFTBRACE", "}": "KEY_RIGHTBRACE", "|": "KEY_BACKSLASH",
    ":": "KEY_SEMICOLON", '"': "KEY_APOSTROPHE", "~": "KEY_GRAVE", "<": "KEY_COMMA", ">": "KEY_DOT",
    "?": "KEY_SLASH",
}


class Recording:
    def __init__(self, gap_ms: int = 2) -> None:
        self.t_us = T0_US
        self.gap_us = gap_ms * 1000
        self.lines: list[str] = []

    def _stamp(self) -> str:
        return f"{self.t_us // 1_000_000}.{self.t_us % 1_000_000:06d}"

    def key(self, name: str, value: int) -> None:
        if value != 2:
            self.lines.append(f"Event: time {self._stamp()}, type 4 (EV_MSC), code 4 (MSC_SCAN), "
                              f"value {0x70000 + USAGE[name]:02x}")
        code = ecodes.ecodes[name]
        self.lines.append(f"Event: time {self._stamp()}, type 1 (EV_KEY), code {code} ({name}), value {value}")

    def syn(self, what: str = "SYN_REPORT") -> None:
        self.lines.append(f"Event: time {self._stamp()}, -------------- {what} ------------")
        self.t_us += self.gap_us

    def report(self, *changes: tuple[str, int]) -> None:
        for name, value in changes:
            self.key(name, value)
        self.syn()

    def tap(self, name: str, shift: bool = False) -> None:
        """One key as a reader sends it: a report with it down, then an empty report."""
        if shift:
            self.report(("KEY_LEFTSHIFT", 1), (name, 1))
            self.report(("KEY_LEFTSHIFT", 0), (name, 0))
        else:
            self.report((name, 1))
            self.report((name, 0))

    def type(self, text: str) -> None:
        for char in text:
            if char in PLAIN:
                self.tap(PLAIN[char])
            else:
                self.tap(SHIFTED[char], shift=True)

    def type_holding_shift(self, text: str) -> None:
        """Shifted characters with Shift held across them, as some readers do."""
        self.report(("KEY_LEFTSHIFT", 1))
        for char in text:
            self.report((SHIFTED[char], 1))
            self.report((SHIFTED[char], 0))
        self.report(("KEY_LEFTSHIFT", 0))

    def pause(self, seconds: float) -> None:
        self.t_us += round(seconds * 1_000_000)

    def write(self, scenario: str) -> None:
        (HERE / scenario).mkdir(exist_ok=True)
        (HERE / scenario / "input").write_text("\n".join(self.lines) + "\n", encoding="ascii")


def shift_heavy_barcode() -> Recording:
    rec = Recording()
    rec.type_holding_shift("ABC")
    rec.type("-DEF$GHI%")
    rec.type_holding_shift("JKL+MNO")
    rec.type("/PQR")
    rec.tap("KEY_ENTER")
    return rec


def lost_key_up_events_dropped() -> Recording:
    rec = Recording()
    rec.report(("KEY_LEFTSHIFT", 1))
    rec.report(("KEY_A", 1))
    rec.report(("KEY_A", 0))
    rec.report(("KEY_B", 1))
    # The reader released B and Shift and typed "z"; the kernel's buffer
    # overflowed and kept only its marker and the newest event, the rest of a
    # broken packet, which a client must ignore up to the next SYN_REPORT.
    rec.syn("SYN_DROPPED")
    rec.key("KEY_Z", 1)
    rec.syn()
    rec.report(("KEY_Z", 0))
    rec.type("-cd")
    rec.tap("KEY_ENTER")
    rec.pause(1.0)
    rec.type("12345")
    rec.tap("KEY_ENTER")
    return rec


def lost_key_up_before_terminator() -> Recording:
    rec = Recording()
    # Opened mid-code: the first thing seen is a key-up whose key-down came before.
    rec.report(("KEY_LEFTSHIFT", 0), ("KEY_Q", 0))
    rec.pause(1.0)
    rec.report(("KEY_LEFTSHIFT", 1))
    rec.report(("KEY_X", 1))
    rec.report(("KEY_X", 0))
    rec.tap("KEY_ENTER")  # Shift's key-up never comes
    rec.pause(0.3)
    rec.type("abc")
    rec.tap("KEY_ENTER")
    return rec


def all_printable_ascii() -> Recording:
    rec = Recording()
    rec.type("".join(chr(c) for c in range(0x20, 0x7F)))
    rec.tap("KEY_ENTER")
    return rec


def tab_terminator() -> Recording:
    rec = Recording()
    rec.type("000.00.12.H26-241125-0042")
    rec.tap("KEY_TAB")
    rec.pause(0.8)
    rec.type("Ho so 2")
    rec.tap("KEY_TAB")
    return rec


def timeout_partial() -> Recording:
    rec = Recording()
    rec.type("IHN-2024")
    rec.pause(1.5)  # the reader stopped mid-code (a Bluetooth reader out of range)
    rec.type("IHN-20241125-000731")
    rec.tap("KEY_ENTER")
    return rec


def ihanoi_booking_qr() -> Recording:
    rec = Recording(gap_ms=4)
    rec.report(("KEY_LEFTSHIFT", 1), ("KEY_I", 1))
    # A slow first key: the kernel's soft auto-repeat (250 ms delay, 33 ms period) echoes it.
    rec.pause(0.25)
    rec.key("KEY_I", 2)
    rec.syn()
    rec.pause(0.03)
    rec.key("KEY_I", 2)
    rec.syn()
    rec.report(("KEY_LEFTSHIFT", 0), ("KEY_I", 0))
    rec.type("HN-20241125-000731")
    rec.tap("KEY_KPENTER")
    return rec


def no_terminator() -> Recording:
    rec = Recording()
    rec.type("8935049500018")
    rec.pause(0.9)
    rec.type("000.00.12.H26-241125-0042")
    rec.pause(0.9)
    return rec


def caps_lock() -> Recording:
    rec = Recording()
    rec.tap("KEY_CAPSLOCK")
    rec.type("hs")  # typed without Shift, Caps Lock makes them capitals
    rec.tap("KEY_H", shift=True)  # Shift with Caps Lock: a small letter
    rec.type("-1!")
    rec.tap("KEY_ENTER")
    rec.type("ab")  # Caps Lock stays on across codes
    rec.tap("KEY_CAPSLOCK")
    rec.type("cd")
    rec.tap("KEY_ENTER")
    return rec


SCENARIOS = {
    "shift-heavy-barcode": shift_heavy_barcode,
    "lost-key-up-events-dropped": lost_key_up_events_dropped,
    "lost-key-up-before-terminator": lost_key_up_before_terminator,
    "all-printable-ascii": all_printable_ascii,
    "tab-terminator": tab_terminator,
    "timeout-partial": timeout_partial,
    "ihanoi-booking-qr": ihanoi_booking_qr,
    "no-terminator": no_terminator,
    "caps-lock": caps_lock,
}

if __name__ == "__main__":
    for scenario, make in SCENARIOS.items():
        make().write(scenario)
