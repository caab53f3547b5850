"""The default backend: lay out HTML with PyMuPDF's ``Story`` and rasterise it into tiles.

MuPDF has no network code: a remote URL left in the HTML could not be fetched even if the
sanitiser missed it. Korean text uses MuPDF's built-in CJK fallback font (Droid Sans Fallback),
so no font file has to be bundled.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pymupdf as _pymupdf
from PIL import Image

from mailsafe.errors import HostileInput
from mailsafe.render.options import RenderOptions

# PyMuPDF ships no type hints: its calls are typed at this one boundary.
pymupdf: Any = _pymupdf

# Story lays out in points; a tile is rasterised at this many pixels per point (96 dpi).
PX_PER_PT = 96 / 72


@dataclass
class Tiles:
    images: list[Image.Image]
    cut: bool  # True when the mail was longer than the tile cap
    pdf: bytes  # the intermediate PDF (its text layer is checked by tests)


def html_to_pdf(document: str, options: RenderOptions, max_pages: int) -> tuple[bytes, bool]:
    """Lay ``document`` out on tile-sized pages; at most ``max_pages`` pages."""
    width_pt = options.width_px / PX_PER_PT
    height_pt = options.tile_height_px / PX_PER_PT
    page = pymupdf.Rect(0, 0, width_pt, height_pt)
    where = pymupdf.Rect(18, 18, width_pt - 18, height_pt - 18)  # a mail client's margin
    try:
        story = pymupdf.Story(html=document)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("the HTML could not be laid out", code="layout_error") from exc
    buffer = io.BytesIO()
    writer = pymupdf.DocumentWriter(buffer)
    more, pages = 1, 0
    while more and pages < max_pages:
        device = writer.begin_page(page)
        more, _ = story.place(where)
        story.draw(device)
        writer.end_page()
        pages += 1
    writer.close()
    return buffer.getvalue(), bool(more)


def pdf_page_images(
    pdf: bytes, options: RenderOptions, max_pages: int, dpi: float
) -> Iterator[tuple[Image.Image, int]]:
    """Rasterise up to ``max_pages`` pages of ``pdf`` one at a time: (image, page count).

    One page at a time keeps memory at one page's pixels, whatever the page count.
    """
    try:
        document = pymupdf.open(stream=pdf, filetype="pdf")
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("the PDF could not be opened", code="bad_pdf") from exc
    with document:
        if document.needs_pass:
            raise HostileInput("the PDF is password-protected", code="encrypted_pdf")
        total = document.page_count
        for number in range(min(total, max_pages)):
            yield _rasterise(document[number], options, dpi), total


def _rasterise(page: Any, options: RenderOptions, dpi: float) -> Image.Image:
    scale = dpi / 72
    rect = page.rect
    if rect.width * rect.height * scale * scale > options.max_image_pixels:
        scale = (options.max_image_pixels / max(rect.width * rect.height, 1)) ** 0.5
    try:
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("a PDF page could not be rasterised", code="bad_pdf") from exc
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def render_tiles(document: str, options: RenderOptions, max_tiles: int) -> Tiles:
    pdf, cut = html_to_pdf(document, options, max_tiles)
    images = [image for image, _ in pdf_page_images(pdf, options, max_tiles, 72 * PX_PER_PT)]
    return Tiles(images=_trim_last(images), cut=cut, pdf=pdf)


def _trim_last(images: list[Image.Image]) -> list[Image.Image]:
    """Cut the blank bottom of the last tile (most mails are shorter than one tile)."""
    if not images:
        return images
    last = images[-1]
    box = Image.eval(last.convert("L"), lambda v: 255 - v).getbbox()
    bottom = min(last.height, (box[3] if box else 0) + 24)
    images[-1] = last.crop((0, 0, last.width, max(bottom, 48)))
    return images
