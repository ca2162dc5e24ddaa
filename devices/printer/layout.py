"""The queue ticket, laid out and encoded as the ESC/POS bytes a printer prints. Pure.

`ticket_bytes` is the whole job: site name, "SỐ THỨ TỰ", the ticket number large, the
service, the counter, how many wait ahead, the time in Hanoi, a QR code, then a cut.

Text goes to the printer in one of two ways, line by line:
- as text, when the printer can print it: ASCII always; Vietnamese only when the config names
  the printer's Windows-1258 code page (`vietnamese_code_page`), encoded as Windows-1258
  (base letter plus combining tone mark, as that code page spells Vietnamese);
- else as a raster image drawn with DejaVu Sans (`raster`), which every printer prints.
"""

from __future__ import annotations

import textwrap
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from devices.printer import escpos
from devices.printer.escpos import Align
from devices.printer.raster import draw_line, to_raster, wrap
from devices.printer.ticket import Ticket

HANOI = timezone(timedelta(hours=7), "ICT")
"""Vietnam keeps UTC+7 all year (no daylight saving), so no tz database is needed."""

FONT_A_DOTS = 12
"""Width of one character of the printer's font A (12 x 24 dots), at size 1."""

TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
"""grave, acute, tilde, hook above, dot below: Windows-1258 has them as combining marks."""


@dataclass(frozen=True)
class TicketStyle:
    """How a printer wants its tickets (from its config)."""

    width_dots: int = 576
    """Printable width: 576 dots on 80 mm paper, 384 on 58 mm (203 dpi heads)."""
    vietnamese_code_page: int | None = None
    """ESC t number of the printer's Windows-1258 table; None: Vietnamese goes as raster."""
    qr_module: int = 6
    partial_cut: bool = True
    feed_before_cut: int = 4


@dataclass(frozen=True)
class Line:
    """One piece of text on the ticket (wrapped to the paper's width when it is long)."""

    text: str
    px: int = 24
    """Height of the raster font in dots when drawn."""
    bold: bool = False
    scale: int = 1
    """Character size multiplier when printed as text."""


@dataclass(frozen=True)
class Qr:
    data: str


Piece = Line | Qr


def hanoi_time(at: datetime) -> str:
    """``at`` as a Hanoi wall-clock time for the ticket: ``15:34 25/11/2026``."""
    return at.astimezone(HANOI).strftime("%H:%M %d/%m/%Y")


def ticket_pieces(ticket: Ticket, width_dots: int = 576) -> list[Piece]:
    """What the ticket says, top to bottom."""
    pieces: list[Piece] = []
    if ticket.site_name:
        pieces.append(Line(ticket.site_name, px=24, bold=True))
    pieces.append(Line("SỐ THỨ TỰ", px=26, bold=True))
    fits = max(1, width_dots // (FONT_A_DOTS * len(ticket.number)))
    pieces.append(Line(ticket.number, bold=True, scale=min(4, fits)))
    pieces.append(Line(ticket.service, px=30, bold=True))
    if ticket.counter:
        pieces.append(Line(f"Mời đến quầy số {ticket.counter}", px=26))
    pieces.append(Line(f"Số người đang chờ trước: {ticket.waiting_ahead}"))
    pieces.append(Line(f"Giờ lấy số: {hanoi_time(ticket.issued_at)}"))
    if ticket.qr:
        pieces.append(Qr(ticket.qr))
        pieces.append(Line("Quét mã QR để tra cứu", px=22))
    return pieces


def ticket_bytes(ticket: Ticket, style: TicketStyle) -> bytes:
    """The ESC/POS job that prints ``ticket`` and cuts it (without the status handshake)."""
    return encode(ticket_pieces(ticket, style.width_dots), style)


def encode(pieces: list[Piece], style: TicketStyle) -> bytes:
    out = bytearray(escpos.INIT)
    if style.vietnamese_code_page is not None:
        out += escpos.code_page(style.vietnamese_code_page)
    out += escpos.align(Align.CENTER)
    for piece in pieces:
        if isinstance(piece, Qr):
            out += escpos.qr_code(piece.data, style.qr_module) + escpos.LF
        else:
            out += _line(piece, style)
    out += escpos.feed(style.feed_before_cut) + escpos.cut(style.partial_cut)
    return bytes(out)


def _line(line: Line, style: TicketStyle) -> bytes:
    encoded = printable_text(line.text, style.vietnamese_code_page)
    if encoded is not None:
        per_line = max(1, style.width_dots // (FONT_A_DOTS * line.scale))
        out = bytearray(escpos.bold(line.bold) + escpos.size(line.scale, line.scale))
        for part in textwrap.wrap(line.text, per_line) or [""]:
            # a part of encodable text is encodable
            out += printable_text(part, style.vietnamese_code_page) or b""
            out += escpos.LF
        return bytes(out + escpos.size(1, 1) + escpos.bold(False))
    out = bytearray()
    for part in wrap(line.text, style.width_dots, line.px, line.bold):
        image = draw_line(part, style.width_dots, line.px, bold=line.bold)
        raster = to_raster(image)
        out += escpos.raster(raster.width_bytes, raster.height, raster.data)
    return bytes(out)


def printable_text(text: str, vietnamese_code_page: int | None) -> bytes | None:
    """``text`` as the printer's text bytes, or None when it must be drawn as raster."""
    if text.isascii() and text.isprintable():
        return text.encode("ascii")
    if vietnamese_code_page is None:
        return None
    return to_cp1258(text)


def to_cp1258(text: str) -> bytes | None:
    """``text`` in Windows-1258 (precomposed where the code page has the letter, else the
    letter and its combining tone mark), or None when some character is not in it."""
    out = bytearray()
    for char in unicodedata.normalize("NFC", text):
        if not char.isprintable():
            return None
        try:
            out += char.encode("cp1258")
            continue
        except UnicodeEncodeError:
            pass
        decomposed = unicodedata.normalize("NFD", char)
        tones = [m for m in decomposed[1:] if m in TONE_MARKS]
        letter = unicodedata.normalize("NFC", "".join(m for m in decomposed if m not in TONE_MARKS))
        try:
            out += (letter + "".join(tones)).encode("cp1258")
        except UnicodeEncodeError:
            return None
    return bytes(out)
