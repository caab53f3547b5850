"""The default backend: lay out HTML with PyMuPDF's ``Story`` and rasterise it into tiles.

Each tile is placed by the Story, drawn into a display list and rasterised from it: no PDF is
written and read back, which made tiles three times cheaper. MuPDF has no network code: a
remote URL left in the HTML could not be fetched even if the sanitiser missed it.

Korean text is set in NanumGothic (regular and bold, from ``RenderOptions.font_dir``, Debian's
fonts-nanum) when the files are there, so headings are bold in Korean too; otherwise MuPDF's
built-in CJK fallback font (Droid Sans Fallback, one weight) is used. The font files are read
once per process into an in-memory archive that holds nothing else, so the mail's HTML can
reach no other file through it (and the sanitiser drops every URL but ``cid:``/``data:``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from PIL import Image

from mailsafe.errors import HostileInput
from mailsafe.mupdf import pymupdf
from mailsafe.render.options import RenderOptions

# Story lays out in points; a tile is rasterised at this many pixels per point (96 dpi).
PX_PER_PT = 96 / 72


# The Korean font files looked for in RenderOptions.font_dir, and the CSS that uses them. The
# fixed-width pair is optional (fonts-nanum has it): without it, <pre> and <code> keep MuPDF's.
# Plain-text bodies are drawn in it (columns aligned with blanks stay aligned), and so is every
# backslash (NanumGothic draws U+005C as the won sign; NanumGothicCoding draws a backslash).
REGULAR_FONT = "NanumGothic.ttf"
BOLD_FONT = "NanumGothicBold.ttf"
MONO_FONTS = ("NanumGothicCoding.ttf", "NanumGothicCodingBold.ttf")
FONT_CSS = f"""
@font-face {{ font-family: maildiode-ko; src: url({REGULAR_FONT}); }}
@font-face {{ font-family: maildiode-ko; src: url({BOLD_FONT}); font-weight: bold; }}
* {{ font-family: maildiode-ko; }}
"""
MONO_CSS = f"""
@font-face {{ font-family: maildiode-ko-mono; src: url({MONO_FONTS[0]}); }}
@font-face {{ font-family: maildiode-ko-mono; src: url({MONO_FONTS[1]}); font-weight: bold; }}
pre, code, tt, kbd, samp, span.mailsafe-bs {{ font-family: maildiode-ko-mono; }}
"""


@dataclass
class Tiles:
    images: list[Image.Image]
    cut: bool  # True when the mail was longer than the tile cap
    text: str  # the laid-out text of the tiles, when asked for (tests check it)


@cache
def _fonts(font_dir: str) -> tuple[Any, str] | None:
    """(an in-memory archive holding only the font files, the CSS using them), or None for
    MuPDF's built-in font when a main file is missing; read once per process."""
    if not font_dir:
        return None
    folder = Path(font_dir)
    try:
        files = {name: (folder / name).read_bytes() for name in (REGULAR_FONT, BOLD_FONT)}
    except OSError:
        return None
    css = FONT_CSS
    try:
        files.update({name: (folder / name).read_bytes() for name in MONO_FONTS})
        css += MONO_CSS
    except OSError:
        pass  # no fixed-width pair: <pre> keeps MuPDF's own fixed-width font
    archive = pymupdf.Archive()
    for name, data in files.items():
        archive.add(data, name)
    return archive, css


def _story(document: str, options: RenderOptions) -> Any:
    fonts = _fonts(options.font_dir)
    try:
        if fonts is None:
            return pymupdf.Story(html=document)
        archive, css = fonts
        return pymupdf.Story(html=document, user_css=css, archive=archive)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("the HTML could not be laid out", code="layout_error") from exc


def _page_rects(options: RenderOptions) -> tuple[Any, Any]:
    """A tile in points, and the area text is placed in (a mail client's margin)."""
    width_pt = options.width_px / PX_PER_PT
    height_pt = options.tile_height_px / PX_PER_PT
    page = pymupdf.Rect(0, 0, width_pt, height_pt)
    return page, pymupdf.Rect(18, 18, width_pt - 18, height_pt - 18)


def display_lists(document: str, options: RenderOptions, max_pages: int) -> tuple[list[Any], bool]:
    """Lay ``document`` out on tile-sized pages, each drawn into a display list; at most
    ``max_pages``. Returns (lists, cut)."""
    story = _story(document, options)
    page, where = _page_rects(options)
    lists: list[Any] = []
    more = 1
    while more and len(lists) < max_pages:
        more, _ = story.place(where)
        listing = pymupdf.DisplayList(pymupdf.mupdf.FzRect(page.x0, page.y0, page.x1, page.y1))
        device = pymupdf.DeviceWrapper(listing.this)
        try:
            story.draw(device)
        finally:
            pymupdf.mupdf.fz_close_device(device.this)
        lists.append(listing)
    return lists, bool(more)


def raster_list(listing: Any) -> Image.Image:
    """One tile's pixels (RGB: colour pages keep their colour; grey ones are found later)."""
    try:
        pixmap = listing.get_pixmap(matrix=pymupdf.Matrix(PX_PER_PT, PX_PER_PT), alpha=False)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("a tile could not be rasterised", code="layout_error") from exc
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


@dataclass(frozen=True)
class PageTooLarge:
    """A PDF page refused for its size: shown small enough, its text could not be read."""

    width_pt: float
    height_pt: float


# Called with each PDF page (PyMuPDF) and its number from 1 before it is rasterised: masking
# redacts it there (mailsafe.render.masking).
PagePreparer = Callable[[Any, int], None]


def pdf_page_images(
    pdf: bytes,
    options: RenderOptions,
    max_pages: int,
    dpi: float,
    prepare: PagePreparer | None = None,
) -> Iterator[tuple[Image.Image | PageTooLarge, int]]:
    """Rasterise up to ``max_pages`` pages of ``pdf`` one at a time: (image, page count), or
    (PageTooLarge, page count) for a page that ``page_scale`` refuses; ``prepare`` changes
    each page first.

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
            page = document[number]
            if prepare is not None:
                _prepared(prepare, page, number + 1)
            yield _rasterise(page, options, dpi), total


def _prepared(prepare: PagePreparer, page: Any, number: int) -> None:
    try:
        prepare(page, number)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput(f"PDF page {number} could not be masked", code="bad_pdf") from exc


def page_scale(
    width_pt: float, height_pt: float, *, dpi: float, max_pixels: int, min_dpi: float
) -> float | None:
    """Pixels per point to draw a page at: ``dpi``, or less, so that its picture has at most
    ``max_pixels`` (the package refuses more, and with it the whole mail); None when that
    would be below ``min_dpi``."""
    scale = dpi / 72
    if _pixels(width_pt, height_pt, scale) <= max_pixels:
        return scale
    scale = (max_pixels / max(width_pt * height_pt, 1.0)) ** 0.5
    while scale > 0 and _pixels(width_pt, height_pt, scale) > max_pixels:
        scale *= 0.999  # the rounding below: a step or two
    return scale if scale >= min_dpi / 72 else None


def _pixels(width_pt: float, height_pt: float, scale: float) -> int:
    """The most pixels MuPDF may make of a page at ``scale`` (it rounds the box outward)."""
    return (math.ceil(width_pt * scale) + 1) * (math.ceil(height_pt * scale) + 1)


def _rasterise(page: Any, options: RenderOptions, dpi: float) -> Image.Image | PageTooLarge:
    rect = page.rect
    scale = page_scale(
        rect.width, rect.height, dpi=dpi, max_pixels=options.max_image_pixels,
        min_dpi=options.min_pdf_dpi,
    )  # fmt: skip
    if scale is None:
        return PageTooLarge(rect.width, rect.height)
    try:
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), alpha=False)
    except (RuntimeError, ValueError) as exc:
        raise HostileInput("a PDF page could not be rasterised", code="bad_pdf") from exc
    return Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)


def render_tiles(
    document: str, options: RenderOptions, max_tiles: int, *, with_text: bool = False
) -> Tiles:
    lists, cut = display_lists(document, options, max_tiles)
    images = [raster_list(listing) for listing in lists]
    text = "".join(_text_of(listing) for listing in lists) if with_text else ""
    return Tiles(images=_trim_last(images), cut=cut, text=text)


def _text_of(listing: Any) -> str:
    # DisplayList.get_textpage returns MuPDF's raw text page; TextPage wraps it.
    return str(pymupdf.TextPage(listing.get_textpage()).extractText())


def _trim_last(images: list[Image.Image]) -> list[Image.Image]:
    """Cut the blank bottom of the last tile (most mails are shorter than one tile)."""
    if not images:
        return images
    last = images[-1]
    box = Image.eval(last.convert("L"), lambda v: 255 - v).getbbox()
    bottom = min(last.height, (box[3] if box else 0) + 24)
    images[-1] = last.crop((0, 0, last.width, max(bottom, 48)))
    return images
