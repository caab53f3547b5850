"""What a PDF carries, with PyMuPDF: page text, the notes and form values on its pages, its
document information, and the files embedded in it.

Everything here leaves with the mail: a sticky note, a title in the document information or a
spreadsheet embedded in the PDF is as much the sender's data as the page text, and a scan
that read only pages would let them through.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from mailsafe.errors import HostileInput, LimitExceeded
from mailsafe.extract.limits import MIB, Budget
from mailsafe.extract.ocr import grey_png_words, ocr_allowed
from mailsafe.mupdf import pymupdf
from mailsafe.positions import NO_LAYOUT, TextLayout, joined

__all__ = ["PdfContents", "pdf_contents"]

# Document-information fields people write words into.
_INFO_FIELDS: Final = ("title", "author", "subject", "keywords", "creator", "producer")
# A page with fewer visible characters than this that shows a picture is read by OCR (when it
# is on): a scan. A searchable scan carries its OCR text and is read like any page.
SCANNED_PAGE_MAX_CHARS: Final = 20
# Resolution scans are drawn at for OCR: 200 dpi reads 8-point print.
SCAN_DPI: Final = 200
# Embedded files read per PDF; more are a way of hiding, not of sending documents.
MAX_EMBEDDED_FILES: Final = 100


@dataclass(frozen=True)
class PdfContents:
    text: str
    layout: TextLayout  # where each page starts in ``text``; the words of scanned pages
    embedded: tuple[tuple[str, bytes], ...]
    pages_not_read: int  # pages past ExtractLimits.max_pdf_pages


def pdf_contents(data: bytes, budget: Budget) -> PdfContents:
    """Text of every page up to the page limit (scanned images carry none), with annotations
    and form values, the document information, and the embedded files."""
    try:
        document = pymupdf.open(stream=data, filetype="pdf")
    except (RuntimeError, ValueError) as exc:
        raise HostileInput(f"not a readable PDF ({exc})", code="corrupt") from None
    with document:
        if document.needs_pass or document.is_encrypted:
            raise HostileInput("PDF is password-protected", code="encrypted")
        limit = budget.limits.max_pdf_pages
        pieces = [(_info_text(document), NO_LAYOUT)]
        attached: list[tuple[str, bytes]] = []
        for number in range(min(document.page_count, limit)):
            budget.check_time()
            pieces.append(_page_text(document, number, budget, attached))
        text, layout = joined(pieces)
        return PdfContents(
            text=text,
            layout=layout,
            embedded=_embedded_files(document, budget) + tuple(attached),
            pages_not_read=max(0, document.page_count - limit),
        )


def _info_text(document: Any) -> str:
    metadata = document.metadata or {}
    return "\n".join(str(metadata.get(name) or "") for name in _INFO_FIELDS).strip()


def _page_text(
    document: Any, number: int, budget: Budget, attached: list[tuple[str, bytes]]
) -> tuple[str, TextLayout]:
    """The text of page ``number`` and its layout (the page, and a scan's words); the files
    attached to its annotations go to ``attached`` (a reader opens them with a click on the
    page's paper-clip, issue 19.5)."""
    try:
        page = document.load_page(number)
        parts = [page.get_text("text")]
        parts += [str((annot.info or {}).get("content") or "") for annot in page.annots()]
        attached += _annotation_files(page, budget, len(attached))
        parts += [str(widget.field_value or "") for widget in page.widgets()]
        pieces = [(part, NO_LAYOUT) for part in parts]
        if len("".join(parts[0].split())) < SCANNED_PAGE_MAX_CHARS:
            pieces.append(_scanned_page_text(page, number + 1, budget))
    except (RuntimeError, ValueError, AttributeError) as exc:
        raise HostileInput(f"PDF page {number + 1} is broken ({exc})", code="corrupt") from None
    text, layout = joined(pieces)
    return text, TextLayout((0,), layout.pictures)


def _annotation_files(page: Any, budget: Budget, before: int) -> list[tuple[str, bytes]]:
    found: list[tuple[str, bytes]] = []
    for annot in page.annots(types=[pymupdf.PDF_ANNOT_FILE_ATTACHMENT]):
        if before + len(found) >= MAX_EMBEDDED_FILES:
            raise LimitExceeded(
                f"PDF attaches more than {MAX_EMBEDDED_FILES} files", code="too-many-files"
            )
        info = annot.file_info
        if int(info.get("size") or 0) > budget.limits.max_file_bytes:
            raise _too_big(info, budget)
        content = bytes(annot.get_file())
        if len(content) > budget.limits.max_file_bytes:
            raise _too_big(info, budget)
        budget.spend(len(content))
        name = str(info.get("filename") or f"annotation{before + len(found) + 1}")
        found.append((_utf8_name(name), content))
    return found


def _scanned_page_text(page: Any, number: int, budget: Budget) -> tuple[str, TextLayout]:
    """OCR of a page that shows pictures but holds (almost) no text: a scan, such as the copy
    of an ID card. Drawn grey at up to 200 dpi, shrunk to the OCR pixel limit; the words'
    boxes are in the pixels of the page so drawn (the whole page as shown, turned by its
    /Rotate)."""
    nothing = ("", NO_LAYOUT)
    if ocr_allowed(budget) is None or not page.get_images():
        return nothing
    width, height = page.rect.width, page.rect.height
    if width <= 0 or height <= 0:
        return nothing
    zoom = min(SCAN_DPI / 72, (budget.limits.ocr_max_pixels / (width * height)) ** 0.5)
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom), colorspace=pymupdf.csGRAY)
    pixels = (pixmap.width, pixmap.height)
    text, words = grey_png_words(pixmap.tobytes("png"), budget, pixels, page=number)
    return text, TextLayout(pictures=(words,))


def _embedded_files(document: Any, budget: Budget) -> tuple[tuple[str, bytes], ...]:
    try:
        count = document.embfile_count()
    except (RuntimeError, ValueError) as exc:
        raise HostileInput(f"PDF file list is broken ({exc})", code="corrupt") from None
    if count > MAX_EMBEDDED_FILES:
        raise LimitExceeded(
            f"PDF embeds {count} files (limit {MAX_EMBEDDED_FILES})", code="too-many-files"
        )
    found: list[tuple[str, bytes]] = []
    for index in range(count):
        budget.check_time()
        try:
            info = document.embfile_info(index)
            if int(info.get("size") or 0) > budget.limits.max_file_bytes:
                raise _too_big(info, budget)
            content = document.embfile_get(index)
        except (RuntimeError, ValueError) as exc:
            raise HostileInput(f"PDF embedded file is broken ({exc})", code="corrupt") from None
        if len(content) > budget.limits.max_file_bytes:
            raise _too_big(info, budget)
        budget.spend(len(content))
        name = str(info.get("ufilename") or info.get("filename") or f"embedded{index + 1}")
        found.append((_utf8_name(name), bytes(content)))
    return tuple(found)


def _utf8_name(name: str) -> str:
    """Some writers (PyMuPDF among them) store a UTF-8 file name as PDFDocEncoding bytes,
    which read back as mojibake ("ëª..."); undo that where the bytes are valid UTF-8."""
    try:
        return name.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return name


def _too_big(info: dict[str, Any], budget: Budget) -> LimitExceeded:
    name = info.get("ufilename") or info.get("filename") or "?"
    limit = budget.limits.max_file_bytes // MIB
    return LimitExceeded(
        f"PDF embedded file {name!r} is over the {limit} MiB limit", code="too-big"
    )
