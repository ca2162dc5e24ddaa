"""The ESC/POS commands a queue ticket needs, as bytes, and the printer's status answers.

Pure. Only the small common subset that Epson TM, Xprinter, Rongta, HPRT and most other
80 mm / 58 mm kiosk printers share (Epson's "ESC/POS Application Programming Guide" is the
reference for every command here).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

ESC, GS, DLE = b"\x1b", b"\x1d", b"\x10"

INIT = ESC + b"@"
"""Clear the print buffer's modes back to the power-on settings."""
LF = b"\n"


class Align(IntEnum):
    LEFT = 0
    CENTER = 1
    RIGHT = 2


def align(how: Align) -> bytes:
    return ESC + b"a" + bytes([how])


def bold(on: bool) -> bytes:
    return ESC + b"E" + bytes([1 if on else 0])


def size(width: int = 1, height: int = 1) -> bytes:
    """GS ! : character size, 1 to 8 times in each direction."""
    if not (1 <= width <= 8 and 1 <= height <= 8):
        raise ValueError(f"character size {width}x{height} is not within 1..8")
    return GS + b"!" + bytes([(width - 1) << 4 | (height - 1)])


def code_page(number: int) -> bytes:
    """ESC t n: the character code table (its number is model-specific; the manual lists it)."""
    if not 0 <= number <= 255:
        raise ValueError(f"code page {number} is not within 0..255")
    return ESC + b"t" + bytes([number])


def feed(lines: int) -> bytes:
    """ESC d n: print the buffer and feed ``lines`` lines."""
    return ESC + b"d" + bytes([max(0, min(255, lines))])


def cut(partial: bool = True) -> bytes:
    """GS V 66 0: feed to the cutter and cut (partial: one point left uncut)."""
    return GS + b"V" + bytes([66 if partial else 65, 0])


def qr_code(data: str, module: int = 6, correction: str = "M") -> bytes:
    """GS ( k: a QR code (model 2) of ``data`` printed by the printer itself.

    ``module`` is the size of one module in dots (1..16); ``correction`` one of L M Q H.
    """
    payload = data.encode("utf-8")
    if not payload or len(payload) > 700:
        raise ValueError(f"QR data is 1 to 700 bytes, not {len(payload)}")
    if not 1 <= module <= 16:
        raise ValueError(f"QR module size {module} is not within 1..16")
    level = {"L": 48, "M": 49, "Q": 50, "H": 51}[correction]

    def fn(cn_fn: bytes, params: bytes) -> bytes:
        body = b"\x31" + cn_fn + params
        return GS + b"(k" + len(body).to_bytes(2, "little") + body

    return (
        fn(b"\x41", b"\x32\x00")  # model 2
        + fn(b"\x43", bytes([module]))
        + fn(b"\x45", bytes([level]))
        + fn(b"\x50", b"\x30" + payload)  # store
        + fn(b"\x51", b"\x30")  # print
    )


def raster(width_bytes: int, height: int, data: bytes) -> bytes:
    """GS v 0: a raster bit image, ``width_bytes`` x 8 dots wide, ``height`` dots high.

    ``data`` is row after row, most significant bit leftmost, 1 = black. It is sent with
    `without_realtime` applied, so that no run of it is taken for a real-time command.
    """
    if len(data) != width_bytes * height:
        raise ValueError(f"raster data is {len(data)} bytes, not {width_bytes} x {height}")
    if not (1 <= width_bytes <= 255 and 1 <= height <= 2303):
        raise ValueError(f"raster {width_bytes * 8}x{height} dots is out of range")
    return (GS + b"v0\x00" + width_bytes.to_bytes(2, "little") + height.to_bytes(2, "little")
            + without_realtime(data))


REALTIME_SECOND_BYTES = frozenset(b"\x04\x05\x14")
"""DLE followed by one of these is a real-time command (DLE EOT, DLE ENQ, DLE DC4)."""


def without_realtime(data: bytes) -> bytes:
    """``data`` with every DLE EOT / DLE ENQ / DLE DC4 lookalike broken by one extra dot.

    Printers look for real-time commands everywhere in the stream, even inside image data
    (Epson documents this), so image bytes 10 04 01 would be answered as a status query and
    taken out of the picture. Setting one more bit in the byte after the DLE (a single dot)
    keeps the image and the stream intact.
    """
    out = bytearray(data)
    for i in range(len(out) - 1):
        if out[i] == 0x10 and out[i + 1] in REALTIME_SECOND_BYTES:
            out[i + 1] |= 0x08
    return bytes(out)


# -- status --------------------------------------------------------------------------------


class StatusKind(IntEnum):
    """DLE EOT n: which real-time status to send."""

    PRINTER = 1
    OFFLINE_CAUSE = 2
    ERROR_CAUSE = 3
    PAPER = 4


def status_query(kind: StatusKind) -> bytes:
    """DLE EOT n: answered at once with one byte, even while the printer is stopped."""
    return DLE + b"\x04" + bytes([kind])


CLEAR_BUFFERS = DLE + b"\x14\x08\x01\x03\x14\x01\x06\x02\x08"
"""DLE DC4 fn 8: drop what is waiting in the receive and print buffers (a ticket cut short by
a paper end must not print its rest when paper is loaded)."""

PRINTED_MARK = GS + b"r\x01"
"""GS r 1: not real-time: answered only once everything sent before it is printed and cut."""


def is_realtime_answer(byte: int) -> bool:
    """DLE EOT answers are 0xx1xx10 (bits 1 and 4 set, 0 and 7 clear)."""
    return byte & 0b1001_0011 == 0b0001_0010


def is_mark_answer(byte: int) -> bool:
    """GS r 1 answers are 0xx0xxxx (bits 4 and 7 clear): told apart from status answers."""
    return byte & 0b1001_0000 == 0


@dataclass(frozen=True)
class RawStatus:
    """The printer's answers to DLE EOT 1, 2 and 4 (and 3 when it reports an error)."""

    printer: int
    offline_cause: int
    paper: int
    error_cause: int = 0

    @property
    def offline(self) -> bool:
        return bool(self.printer & 0x08)

    @property
    def cover_open(self) -> bool:
        return bool(self.offline_cause & 0x04)

    @property
    def paper_out(self) -> bool:
        return bool(self.offline_cause & 0x20 or self.paper & 0x60)

    @property
    def paper_near_end(self) -> bool:
        return bool(self.paper & 0x0C)

    @property
    def error(self) -> bool:
        return bool(self.offline_cause & 0x40)

    def error_text(self) -> str | None:
        """What the error cause byte says, in English for IT."""
        if not self.error:
            return None
        causes = [text for bit, text in ((0x08, "autocutter error"),
                                         (0x20, "unrecoverable error"),
                                         (0x40, "auto-recoverable error (head too hot?)"),
                                         (0x04, "recoverable error")) if self.error_cause & bit]
        return ", ".join(causes) or "error"
