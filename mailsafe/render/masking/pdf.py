"""Masking a PDF page before it is rasterised: its text redacted where the personal data is,
its pictures read by OCR and painted over, its notes and form fields that hold any removed.

Text: the page's characters with their boxes (``rawdict``) are joined the way PyMuPDF's text
extraction joins them (spans of a line glued, lines and blocks on lines of their own), searched
with the detector, and the characters the mask hides get redaction annotations. Applying them
(``apply_redactions``) removes those characters from the page's content and blanks the image
pixels under them (a searchable scan's picture behind its text layer), and draws a black box
in their place: the digits are neither in the page's text nor in the rasterised picture.
A finding a page break cuts is found with the text of the pages around (``Around``,
``mailsafe.render.masking.breaks``), and the pieces a narrow cell shows of a known value with
``Hiding.pieces`` (``mailsafe.render.masking.pieces``), D105.

Pictures: a page that places a picture big enough to hold a line of text is drawn grey at up
to ``SCAN_DPI`` (the outbound scanner's resolution for scans), read by OCR, and the words that
hold personal data are redacted the same way (image pixels blanked, a black box drawn).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence, Set
from dataclasses import dataclass
from typing import Any, Final

from PIL import Image

from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import MIN_PIXELS, image_reading
from mailsafe.extract.pdf import SCAN_DPI
from mailsafe.mupdf import pymupdf
from mailsafe.pii import Finding
from mailsafe.positions import Position
from mailsafe.render.masking.breaks import cut_at_page_end, cut_at_page_start
from mailsafe.render.masking.pictures import PAINT, boxes_to_paint
from mailsafe.render.masking.text import PLAIN_HIDING, Hiding, found_in

__all__ = ["NOTHING_AROUND", "Around", "PageMasking", "mask_page", "page_text"]

# Redaction flags: remove the characters, blank the image pixels under them, leave vector
# graphics (a table's rules crossing a number are no personal data).
_REDACT: Final = {
    "images": pymupdf.PDF_REDACT_IMAGE_PIXELS,
    "graphics": pymupdf.PDF_REDACT_LINE_ART_NONE,
    "text": pymupdf.PDF_REDACT_TEXT_REMOVE,
}
_TEXT_FLAGS: Final = pymupdf.TEXT_PRESERVE_LIGATURES | pymupdf.TEXT_PRESERVE_WHITESPACE
_BLACK: Final = tuple(channel / 255 for channel in PAINT)


class PageMasking:
    """What masking one page did: counts per (type, method), or why its pixels were not read."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[str, str]] = Counter()
        self.unchecked: str | None = None


@dataclass(frozen=True)
class Around:
    """The text of the pages before and after a page, as they were before masking: a value
    a page break cuts is found over it; and the page's own (``page_text``), when the caller
    read it already (None: it is read)."""

    before: str = ""
    after: str = ""
    text: str | None = None


NOTHING_AROUND: Final = Around()


def mask_page(
    page: Any,
    types: Set[str],
    budget: Budget | None,
    display_dpi: float,
    *,
    hiding: Hiding = PLAIN_HIDING,
    known: Sequence[tuple[str, Position]] = (),
    around: Around = NOTHING_AROUND,
) -> PageMasking:
    """Redact the personal data of ``types`` on ``page`` in place (text, notes and form fields,
    then pictures by OCR when ``budget`` is given), as much of each finding as ``hiding``
    says, and the pieces of those a page break cuts (``around``: its neighbours' text); and
    the word boxes of the ``known`` positions another reading found on this page (the
    outbound scan's OCR of a scanned page)."""
    result = PageMasking()
    _redact_known(page, known, result)
    _mask_annotations(page, types, result, hiding)
    # The page's plain text first (under a millisecond): the characters with their boxes cost
    # twenty times that, and most pages hold nothing to mask. Both are joined the same way.
    plain = page_text(page) if around.text is None else around.text
    if _text_findings(plain, types, hiding, around):
        text, boxes = _page_characters(page)
        hidden: list[Any] = []
        for finding in _text_findings(text, types, hiding, around):
            result.counts[finding.type, "text"] += 1
            hidden += _hidden_runs(text, boxes, finding.start, finding.masked)
        _redact(page, hidden)
    if budget is not None and _picture_area(page, display_dpi) is not None:
        _mask_pictures(page, _Reading(types, budget, display_dpi, hiding), result)
    return result


def page_text(page: Any) -> str:
    """A page's text as extraction joins it (the characters of :func:`_page_characters`)."""
    text: str = page.get_text("text", flags=_TEXT_FLAGS)
    return text


def _text_findings(text: str, types: Set[str], hiding: Hiding, around: Around) -> list[Finding]:
    """The findings in a page's ``text``, and the pieces of those its breaks cut."""
    found = found_in(text, types, hiding=hiding)
    cut = [*cut_at_page_start(text, around.before, types, hiding=hiding),
           *cut_at_page_end(text, around.after, types, hiding=hiding)]  # fmt: skip
    for piece in cut:
        if not any(f.start < piece.end and piece.start < f.end for f in found):
            found.append(piece)
    return sorted(found, key=lambda f: f.start)


def _redact_known(page: Any, known: Sequence[tuple[str, Position]], result: PageMasking) -> None:
    """Redact the boxes of ``known`` positions: pixels of the page as shown (turned by its
    /Rotate) at the size the scan drew it, into the page's own points, a point wider."""
    if not known:
        return
    shown = page.rect
    rects: list[Any] = []
    for _, position in known:
        across = shown.width / max(position.pixels[0], 1)
        down = shown.height / max(position.pixels[1], 1)
        rects += [
            pymupdf.Rect(left * across - 1, top * down - 1, right * across + 1, bottom * down + 1)
            * page.derotation_matrix
            for left, top, right, bottom in position.boxes
        ]
    result.counts.update((kind, "ocr") for kind, _ in known)
    _redact(page, rects)


def _page_characters(page: Any) -> tuple[str, list[Any]]:
    """The page's text as extraction gives it, and each character's box (None for the line
    breaks put between lines)."""
    chars: list[str] = []
    boxes: list[Any] = []
    for block in page.get_text("rawdict", flags=_TEXT_FLAGS)["blocks"]:
        for line in block.get("lines", ()):
            for span in line["spans"]:
                for char in span["chars"]:
                    chars.append(char["c"])
                    boxes.append(pymupdf.Rect(char["bbox"]))
            chars.append("\n")
            boxes.append(None)
    return "".join(chars), boxes


def _hidden_runs(text: str, boxes: list[Any], start: int, masked: str) -> list[Any]:
    """One rectangle per run of hidden characters on a line: annotations cost time each
    (adding one reads the page's whole annotation list)."""
    runs: list[Any] = []
    current: Any = None
    for offset, shown in enumerate(masked):
        box = boxes[start + offset]
        if shown == text[start + offset] or box is None:
            if current is not None:
                runs.append(current)
            current = None
        else:
            current = pymupdf.Rect(box) if current is None else current | box
    return [*runs, current] if current is not None else runs


def _redact(page: Any, rects: list[Any]) -> None:
    rects = [rect for rect in rects if rect is not None and not rect.is_empty]
    if not rects:
        return
    for rect in rects:
        page.add_redact_annot(rect, fill=_BLACK, cross_out=False)
    page.apply_redactions(**_REDACT)


def _mask_annotations(page: Any, types: Set[str], result: PageMasking, hiding: Hiding) -> None:
    """Notes and form fields are drawn from their own text: one holding personal data is
    removed from the page (its text cannot be redacted in place)."""
    for annot in list(page.annots()):
        found = found_in(str((annot.info or {}).get("content") or ""), types, hiding=hiding)
        if found:
            result.counts.update((finding.type, "text") for finding in found)
            page.delete_annot(annot)
    for widget in list(page.widgets()):
        found = found_in(str(widget.field_value or ""), types, hiding=hiding)
        if found:
            result.counts.update((finding.type, "text") for finding in found)
            page.delete_widget(widget)


def _picture_area(page: Any, display_dpi: float) -> Any:
    """The rectangle around the pictures the page places that, as shown, could hold a line of
    text (None when there is none); only this part of the page is read by OCR."""
    scale = (display_dpi / 72) ** 2
    area = None
    for info in page.get_image_info():
        placed = pymupdf.Rect(info["bbox"]) & page.rect
        if not placed.is_empty and placed.get_area() * scale >= MIN_PIXELS:
            area = placed if area is None else area | placed
    return area


@dataclass(frozen=True)
class _Reading:
    types: Set[str]
    budget: Budget
    display_dpi: float
    hiding: Hiding


def _mask_pictures(page: Any, reading: _Reading, result: PageMasking) -> None:
    """OCR of the page drawn upright (Tesseract reads upright text only: a page shown turned
    by /Rotate is read unturned, and its boxes are then page coordinates as they are)."""
    rotation = page.rotation
    if rotation:
        page.set_rotation(0)
    try:
        _read_and_redact(page, reading, result)
    finally:
        if rotation:
            page.set_rotation(rotation)


def _read_and_redact(page: Any, reading: _Reading, result: PageMasking) -> None:
    area = _picture_area(page, reading.display_dpi)  # upright now: in the page's coordinates
    if area is None:
        return
    budget = reading.budget
    limit = budget.limits.ocr_max_pixels
    zoom = min(SCAN_DPI / 72, (limit / max(area.width * area.height, 1.0)) ** 0.5)
    matrix = pymupdf.Matrix(zoom, zoom)
    pixmap = page.get_pixmap(matrix=matrix, colorspace=pymupdf.csGRAY, clip=area)
    grey = Image.frombytes("L", (pixmap.width, pixmap.height), pixmap.samples)
    words = image_reading(grey, budget)
    if isinstance(words, str):
        result.unchecked = words
        return
    boxes, counts = boxes_to_paint(words, reading.types, reading.hiding)
    result.counts.update({(kind, "ocr"): count for kind, count in counts.items()})
    # Word boxes from the clip's pixels to page points, a point wider each way (the boxes hug
    # the ink). The clip's pixels start at the area's corner, rounded down by MuPDF.
    x0, y0 = pixmap.x / zoom, pixmap.y / zoom
    rects = [
        pymupdf.Rect(x0 + left / zoom - 1, y0 + top / zoom - 1,
                     x0 + right / zoom + 1, y0 + bottom / zoom + 1)
        for left, top, right, bottom in boxes
    ]  # fmt: skip
    _redact(page, rects)
