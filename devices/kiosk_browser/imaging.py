"""Screenshots made small: downscaled for sending, and reduced to the thumbnail the black/
frozen screen check judges."""

from __future__ import annotations

import io

from PIL import Image, features

from devices.kiosk_browser.screen import THUMB


def downscale(png: bytes, max_width: int) -> tuple[bytes, str]:
    """``png`` no wider than ``max_width`` (aspect kept), as WebP where Pillow has it, else
    PNG; returns the bytes and their media type."""
    if max_width < 16:
        raise ValueError(f"max_width {max_width} is too small (16 pixels at least)")
    with Image.open(io.BytesIO(png)) as image:
        image = image.convert("RGB")
        if image.width > max_width:
            height = max(1, round(image.height * max_width / image.width))
            image = image.resize((max_width, height), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        if features.check("webp"):
            image.save(out, "WEBP", quality=70, method=4)
            return out.getvalue(), "image/webp"
        image.save(out, "PNG", optimize=True)
        return out.getvalue(), "image/png"


def thumbnail(png: bytes) -> bytes:
    """``png`` as THUMB greyscale pixels, row by row (area-averaged, so a few pixels of
    text still move the grey levels)."""
    with Image.open(io.BytesIO(png)) as image:
        return image.convert("L").resize(THUMB, Image.Resampling.BOX).tobytes()
