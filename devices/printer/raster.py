"""Text lines drawn as 1-bit raster images, for printers with no Vietnamese code page.

Pure (Pillow only, no device): a line of Vietnamese is drawn with a TrueType font that has
every Vietnamese glyph (DejaVu Sans, Debian's fonts-dejavu-core, installed by
scripts/bootstrap), thresholded to black and white, and packed as ESC/POS raster rows
(most significant bit leftmost, 1 = a black dot). `from_raster` is the way back, for tests
and the printer emulator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont, ImageOps

from devices.printer.escpos import Align

FONT_DIR = Path("/usr/share/fonts/truetype/dejavu")
REGULAR = FONT_DIR / "DejaVuSans.ttf"
BOLD = FONT_DIR / "DejaVuSans-Bold.ttf"
INK_THRESHOLD = 128
"""Anti-aliased grey at or above this becomes a black dot."""


class FontMissing(RuntimeError):
    """The font file is not there (scripts/bootstrap installs fonts-dejavu-core)."""


@lru_cache(maxsize=32)
def font(px: int, bold: bool = False) -> ImageFont.FreeTypeFont:
    """DejaVu Sans (Bold) at ``px`` pixels; raises FontMissing when it is not installed."""
    path = BOLD if bold else REGULAR
    try:
        return ImageFont.truetype(str(path), px)
    except OSError:
        raise FontMissing(f"the font {path} is not installed (Debian package fonts-dejavu-core, "
                          "scripts/bootstrap installs it)") from None


def wrap(text: str, width_dots: int, px: int, bold: bool = False) -> list[str]:
    """``text`` broken at spaces into lines no wider than ``width_dots`` (a word longer than
    that is cut where it must be)."""
    face = font(px, bold)
    lines: list[str] = []
    current = ""
    for word in text.split():
        candidate = f"{current} {word}" if current else word
        if face.getlength(candidate) <= width_dots:
            current = candidate
            continue
        if current:
            lines.append(current)
        while face.getlength(word) > width_dots:
            cut = len(word) - 1
            while cut > 1 and face.getlength(word[:cut]) > width_dots:
                cut -= 1
            lines.append(word[:cut])
            word = word[cut:]
        current = word
    if current:
        lines.append(current)
    return lines


def draw_line(text: str, width_dots: int, px: int, *, bold: bool = False,
              how: Align = Align.CENTER) -> Image.Image:
    """One line of ``text`` as a black-on-white mode "1" image ``width_dots`` wide, as tall as
    the font's tallest Vietnamese letters need (the same for every line of a size)."""
    face = font(px, bold)
    top, bottom = _extent(face)
    ink = Image.new("L", (width_dots, bottom - top), 0)
    length = face.getlength(text)
    x = {Align.LEFT: 0, Align.CENTER: (width_dots - length) / 2,
         Align.RIGHT: width_dots - length}[how]
    ImageDraw.Draw(ink).text((max(0, x), -top), text, fill=255, font=face)
    black = ink.point(lambda v: 0 if v >= INK_THRESHOLD else 255, mode="L")
    return black.convert("1", dither=Image.Dither.NONE)


def _extent(face: ImageFont.FreeTypeFont) -> tuple[int, int]:
    # Stacked marks (Ố, Ẫ) rise above the font's ascent; hooks and dots below (ỵ) go down.
    ascent, descent = face.getmetrics()
    top = min(0, face.getbbox(TALLEST)[1])
    bottom = max(ascent + descent, face.getbbox(DEEPEST)[3])
    return top, bottom


TALLEST = "ẪỖỄẤỐẾỚỨẰỲ"
DEEPEST = "gjpqyỵỵẠỴ"


@dataclass(frozen=True)
class Raster:
    """Rows of dots as ESC/POS GS v 0 takes them."""

    width_bytes: int
    height: int
    data: bytes


def to_raster(image: Image.Image) -> Raster:
    """A black-on-white image as raster rows (its width rounded up to whole bytes, white)."""
    width_bytes = (image.width + 7) // 8
    canvas = Image.new("1", (width_bytes * 8, image.height), 1)
    canvas.paste(image.convert("1", dither=Image.Dither.NONE), (0, 0))
    # PIL's "1" packs white as 1; ESC/POS wants black as 1.
    inverted = ImageOps.invert(canvas.convert("L")).convert("1", dither=Image.Dither.NONE)
    return Raster(width_bytes, image.height, inverted.tobytes())


def from_raster(width_bytes: int, height: int, data: bytes) -> Image.Image:
    """The black-on-white mode "1" image that raster rows print."""
    if len(data) != width_bytes * height:
        raise ValueError(f"raster data is {len(data)} bytes, not {width_bytes} x {height}")
    ink = Image.frombytes("1", (width_bytes * 8, height), data)
    return ImageOps.invert(ink.convert("L")).convert("1", dither=Image.Dither.NONE)
