"""Pick an encoder per image: the encoder, not the rasteriser, is where the time went.

- grey pages (most text mail): 8-bit grey PNG, a third of RGB's bytes;
- few colours (logos, coloured text on flat backgrounds): palette PNG (<= 256 colours);
- many colours (photos, gradients): JPEG (WebP is ~3x slower to encode for ~25% fewer bytes).

Both PNG kinds are written by :mod:`mailsafe.pngwrite` (rows unfiltered, ISA-L deflate): on a
text page 0.9 ms instead of Pillow's 7.9 ms at zlib level 1, and about 12 % fewer bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageChops

from mailsafe.pngwrite import GREY, PALETTE, unfiltered_rows, write_png

# Images with at most this many colours are encoded as palette PNG without loss.
PALETTE_MAX_COLOURS = 256
# Up to this many colours a page is text and flat graphics with anti-aliased edges: reduced to
# a 256-colour palette it stays sharp, where JPEG would blur the letters. Beyond it: a photo.
FLAT_MAX_COLOURS = 4096


@dataclass(frozen=True)
class Encoded:
    data: bytes
    media_type: str
    width: int
    height: int


def _is_grey(image: Image.Image) -> bool:
    red, green, blue = image.split()[:3]
    return (
        ImageChops.difference(red, green).getbbox() is None
        and ImageChops.difference(green, blue).getbbox() is None
    )


def encode_image(image: Image.Image, jpeg_quality: int, *, photo: bool = False) -> Encoded:
    """Encode ``image`` (any mode) with the encoder that suits its content; no metadata kept."""
    if image.mode not in {"RGB", "L"}:
        image = image.convert("RGB")
    if image.mode == "RGB" and not photo and _is_grey(image):
        image = image.convert("L")
    if image.mode == "L" and not photo:
        return _png(image, GREY, None)
    colours = None if photo else image.getcolors(FLAT_MAX_COLOURS)
    if colours is not None:
        count = min(len(colours), PALETTE_MAX_COLOURS)
        indexed = image.quantize(colors=count, method=Image.Quantize.FASTOCTREE)
        return _png(indexed, PALETTE, _palette_of(indexed))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=jpeg_quality, optimize=False)
    return Encoded(buffer.getvalue(), "image/jpeg", image.width, image.height)


def _png(image: Image.Image, colour_type: int, palette: bytes | None) -> Encoded:
    """An 8-bit grey ("L") or palette ("P") image as PNG: one byte per pixel, rows unfiltered."""
    rows = unfiltered_rows(image.tobytes(), image.width)
    data = write_png(image.width, image.height, bit_depth=8, colour_type=colour_type,
                     filtered_rows=rows, palette=palette)  # fmt: skip
    return Encoded(data, "image/png", image.width, image.height)


def _palette_of(indexed: Image.Image) -> bytes:
    """The RGB triples of a "P" image, at most 256 of them (what PLTE may hold at 8 bits)."""
    entries = indexed.getpalette("RGB") or [0, 0, 0]
    return bytes(entries[: 3 * PALETTE_MAX_COLOURS])
