"""Defence in depth for images from the outer side: decode again under a pixel cap, re-encode.

The outer agent may be compromised, so an image that ``decode_package`` let through (right
magic bytes, declared size under the cap) is still untrusted: Pillow reads its real header,
the pixel count is checked *before* the pixels are decoded, the whole image is decoded (a
truncated or corrupt file fails here, not in a mail client), and by policy fresh PNG/JPEG
bytes are written so nothing hidden in the original file's other bytes travels on.

Plain PNGs (the outer agent's pages) take a fast path that never decodes to pixels
(:mod:`inner_agent.pngrewrite`); everything else is decoded and written again by Pillow.
"""

from __future__ import annotations

import io
import math
import warnings

from PIL import Image

from inner_agent.notify import CheckedImage
from inner_agent.pngrewrite import PngRefused, rewrite_png

__all__ = ["ImageRefused", "check_image", "shrink_image"]

# Pillow formats we accept, by the media type the manifest declares.
_FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP"}
# Fast zlib level: re-encoding must not cost more than rendering; level 1 is ~3x faster than
# the default 6 and only a little larger for rendered text.
PNG_COMPRESS_LEVEL = 1
# JPEG quality for photos and for scaled-down pages: visually lossless for screenshots at 85+.
JPEG_QUALITY = 85
# An image is never scaled below this edge length (it would be unreadable).
MIN_EDGE_PX = 64


class ImageRefused(Exception):
    """An image failed the inner agent's checks; ``code`` is the quarantine reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


def check_image(
    untrusted_data: bytes,
    untrusted_media_type: str,
    *,
    max_pixels: int,
    reencode: bool,
) -> CheckedImage:
    """Decode ``untrusted_data`` fully under ``max_pixels``; raises ImageRefused."""
    expected = _FORMATS.get(untrusted_media_type)
    if expected is None:
        raise ImageRefused("image_type", f"media type {untrusted_media_type!r} is not allowed")
    if expected == "PNG":
        try:
            rewritten = rewrite_png(untrusted_data, max_pixels=max_pixels)
        except PngRefused as exc:
            raise ImageRefused(exc.code, exc.detail) from None
        if rewritten is not None:
            data = rewritten.data if reencode else untrusted_data
            return CheckedImage(data, "image/png", rewritten.width, rewritten.height)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(untrusted_data), formats=[expected])
            width, height = image.size
            if width <= 0 or height <= 0 or width * height > max_pixels:
                raise ImageRefused("image_pixels", f"{width}x{height} is over {max_pixels} px")
            image.load()
    except ImageRefused:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure is a refusal of that image
        raise ImageRefused("image_decode", f"{type(exc).__name__}: {exc}"[:200]) from None
    if not reencode and expected != "WEBP":
        return CheckedImage(untrusted_data, untrusted_media_type, width, height)
    return _encode(image, prefer_jpeg=expected == "JPEG")


def _encode(image: Image.Image, *, prefer_jpeg: bool) -> CheckedImage:
    """Fresh bytes: JPEG for photos, PNG otherwise (mail clients all show both)."""
    buffer = io.BytesIO()
    if prefer_jpeg:
        image.convert("RGB").save(buffer, "JPEG", quality=JPEG_QUALITY)
        media_type = "image/jpeg"
    else:
        if image.mode == "L":
            # Grey pages (most rendered mail) as a palette PNG with the identity grey palette:
            # the same pixels, but Pillow writes palette images without row filters, which
            # halves the encoding time and the result is a little smaller.
            image = image.convert("P")
        elif image.mode not in ("RGB", "RGBA", "P"):
            image = image.convert("RGBA")
        image.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
        media_type = "image/png"
    return CheckedImage(buffer.getvalue(), media_type, image.width, image.height)


def shrink_image(image: CheckedImage) -> CheckedImage:
    """The same image at half the area, as JPEG (the size limit matters more than crispness)."""
    with Image.open(io.BytesIO(image.data)) as source:
        scale = 1 / math.sqrt(2)
        size = (max(MIN_EDGE_PX, int(source.width * scale)),
                max(MIN_EDGE_PX, int(source.height * scale)))  # fmt: skip
        smaller = source.convert("RGB").resize(size, Image.Resampling.LANCZOS)
    return _encode(smaller, prefer_jpeg=True)
