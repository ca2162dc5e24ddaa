"""The serial rating pad's line protocol, version 1: pure bytes in, lines out.

README.md ("Serial line protocol") is the reference for pad makers. In short,
ASCII lines ending in LF (a CR before it is allowed):

    pad -> agent   HELLO <serial> <buttons>   who the pad is; at power-up and on WHO
                   PRESS <button>             a button went down (1 = leftmost)
    agent -> pad   WHO                        say HELLO (sent on every open)
                   ACK <button>               the press is stored: light that button's LED
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from devices.line_reader import LineReader

MAX_LINE = 64
"""Longest line a pad may send, terminator excluded; longer ones are skipped."""

WHO = b"WHO\n"

_HELLO = re.compile(rb"HELLO ([A-Za-z0-9._-]{1,32}) ([1-9])")
_PRESS = re.compile(rb"PRESS ([1-9])")


@dataclass(frozen=True)
class Hello:
    serial: str
    buttons: int


@dataclass(frozen=True)
class Press:
    button: int


PadLine = Hello | Press


def parse_line(line: bytes) -> PadLine | None:
    """The message in one line (terminator removed), or None when it is not one."""
    if match := _PRESS.fullmatch(line):
        return Press(int(match[1]))
    if match := _HELLO.fullmatch(line):
        return Hello(match[1].decode("ascii"), int(match[2]))
    return None


def ack(button: int) -> bytes:
    """What the agent sends once the press of ``button`` is stored."""
    return b"ACK %d\n" % button


class PadLineReader(LineReader[PadLine]):
    """Cuts the bytes a pad sends into messages, whatever pieces they arrive in.

    Lines that are not messages (noise, a wrong baud rate, another firmware)
    are skipped and counted, as are lines longer than MAX_LINE. Empty lines
    are ignored. A line still unfinished when the pad goes away is dropped by
    `disconnected`, never glued to what the pad sends after it returns.
    """

    def __init__(self) -> None:
        super().__init__(parse_line, MAX_LINE)
