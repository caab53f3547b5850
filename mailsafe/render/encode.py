"""Pick an encoder per image: the encoder, not the rasteriser, is where the time goes.

- grey pages (most text mail): 8-bit grey PNG at zlib level 1: a third of RGB's bytes, fast;
- few colours (logos, coloured text on flat backgrounds): palette PNG (<= 256 colours);
- many colours (photos, gradients): JPEG (WebP is ~3x slower to encode for ~25% fewer bytes).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

from PIL import Image, ImageChops

# zlib level 1 encodes ~4x faster than the default 6 for ~10% more bytes on text pages.
PNG_COMPRESS_LEVEL = 1
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
    buffer = io.BytesIO()
    if image.mode == "RGB" and not photo and _is_grey(image):
        image = image.convert("L")
    if image.mode == "L" and not photo:
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return Encoded(buffer.getvalue(), "image/png", image.width, image.height)
    colours = None if photo else image.getcolors(FLAT_MAX_COLOURS)
    if colours is not None:
        count = min(len(colours), PALETTE_MAX_COLOURS)
        palette = image.quantize(colors=count, method=Image.Quantize.FASTOCTREE)
        palette.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        return Encoded(buffer.getvalue(), "image/png", image.width, image.height)
    image.save(buffer, "JPEG", quality=jpeg_quality, optimize=False)
    return Encoded(buffer.getvalue(), "image/jpeg", image.width, image.height)
