"""What a rendering may cost and how it looks: every limit named, with its reason."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from mailsafe.errors import InternalError
from mailsafe.extract.limits import ExtractLimits
from mailsafe.extract.ocr import DEFAULT_LANGUAGES
from mailsafe.payload import MAX_IMAGE_PIXELS
from mailsafe.pii import PII_TYPES, PiiType
from mailsafe.positions import Position

MIB = 1024 * 1024

# What one worker process may spend on one mail (mailsafe.render.pool.RenderPool's defaults;
# the outer agent's [render] section has its own, see outer_agent.config).
# CPU seconds one mail may use: a 10-page PDF plus 8 tiles takes ~1 s; 20 s is a runaway.
DEFAULT_CPU_SECONDS = 20
# Address space of a worker: PyMuPDF + Pillow for a picture of MAX_IMAGE_PIXELS need ~400 MiB;
# 1 GiB cap.
DEFAULT_MEMORY_BYTES = 1024 * MIB
# Wall-clock seconds per mail (includes Chromium start-up, ~1-2 s).
DEFAULT_WALL_SECONDS = 30.0


def checked_mask_types(types: Iterable[str]) -> frozenset[str]:
    """``types`` as a set, each a mailsafe.pii type name; another name is our caller's bug."""
    checked = frozenset(types)
    unknown = sorted(checked - set(PII_TYPES))
    if unknown:
        raise InternalError(
            f"mask_types: unknown personal-data types {unknown} (known: {', '.join(PII_TYPES)})",
            code="unknown_mask_type",
        )
    return checked


def checked_known(known: Iterable[Iterable[str]]) -> tuple[tuple[PiiType, str], ...]:
    """``known`` as (type, digits) pairs; another type name or a value that is not digits is
    our caller's bug."""
    checked: list[tuple[PiiType, str]] = []
    for kind, digits in (tuple(pair) for pair in known):
        if kind not in PII_TYPES or not (digits.isascii() and digits.isdigit()):
            raise InternalError(
                f"mask_known: ({kind!r}, ...) is not a personal-data type and its digits",
                code="bad_known_value",
            )
        checked.append((kind, digits))
    return tuple(checked)


# Values another reading found, passed to one rendering: more than this is our caller's bug
# (an approval preview passes one mail's findings, deduplicated; the scan stops far below).
MAX_MASK_VALUES = 1000
# The longest value passed: a finding is a number, an address or a key, never a page.
MAX_MASK_VALUE_CHARS = 512


def checked_values(values: Iterable[Iterable[str]]) -> tuple[tuple[PiiType, str], ...]:
    """``values`` as (type, value) pairs of findings' characters; another type name, a value
    that is not a short string, or too many of them is our caller's bug."""
    checked: list[tuple[PiiType, str]] = []
    for kind, value in (tuple(pair) for pair in values):
        if kind not in PII_TYPES or not isinstance(value, str) or not value.strip() \
                or len(value) > MAX_MASK_VALUE_CHARS:  # fmt: skip
            raise InternalError(
                f"mask_values: ({kind!r}, ...) is not a personal-data type and a short value",
                code="bad_mask_value",
            )
        checked.append((kind, value))
    if len(checked) > MAX_MASK_VALUES:
        raise InternalError(f"mask_values: {len(checked)} values, at most {MAX_MASK_VALUES}",
                            code="bad_mask_value")  # fmt: skip
    return tuple(checked)


def checked_positions(
    positions: Iterable[Iterable[Any]],
) -> tuple[tuple[PiiType, Position], ...]:
    """``positions`` as (type, Position) pairs with boxes inside their picture; a position
    as JSON gives (type, its fields as a dict). Anything else is our caller's bug."""
    checked: list[tuple[PiiType, Position]] = []
    for kind, given in (tuple(pair) for pair in positions):
        position = given if isinstance(given, Position) else _position_from(given)
        width, height = position.pixels
        inside = all(
            0 <= left <= right <= width and 0 <= top <= bottom <= height
            for left, top, right, bottom in position.boxes
        )
        if kind not in PII_TYPES or not position.boxes or not inside:
            raise InternalError(
                f"mask_positions: ({kind!r}, ...) is not a personal-data type and boxes in "
                "their picture",
                code="bad_mask_position",
            )
        checked.append((kind, position))
    return tuple(checked)


def _position_from(fields: Any) -> Position:
    try:
        boxes = tuple((int(a), int(b), int(c), int(d)) for a, b, c, d in fields["boxes"])
        width, height = fields["pixels"]
        return Position(str(fields["part"]), str(fields["file"]), int(fields["page"]),
                        int(fields["start"]), int(fields["end"]), boxes,
                        (int(width), int(height)))  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InternalError(f"mask_positions: {exc}", code="bad_mask_position") from None


@dataclass(frozen=True)
class RenderOptions:
    """Settings of one renderer; the outer agent builds this from its ``[render]`` section."""

    # "pymupdf" needs no browser; "chromium" gives browser fidelity at ~1 s per mail.
    backend: Literal["pymupdf", "chromium"] = "pymupdf"
    # Mail clients show HTML mail 600-800 CSS px wide; newsletters are designed for that.
    width_px: int = 800
    # One tile is about a screen of mail; the notification shows tiles one under the other.
    tile_height_px: int = 1200
    # Body tiles beyond this are cut with a note: 8 screens is a long mail, more is a flood.
    max_body_tiles: int = 8
    # Pages of one PDF attachment shown; the rest is named in a note (the PDF is not carried).
    max_pdf_pages: int = 10
    # PDF attachments rendered per mail; each may have max_pdf_pages.
    max_pdf_attachments: int = 3
    # Images (tiles + pages + pictures) in one rendered mail.
    max_images: int = 40
    # Decoding a picture bigger than this is refused (decompression bombs), and a PDF page is
    # rasterised at most this big: the package's cap (mailsafe.payload.MAX_IMAGE_PIXELS).
    max_image_pixels: int = MAX_IMAGE_PIXELS
    # Pictures are shown at most this wide/high; bigger ones are scaled down before encoding.
    max_picture_side_px: int = 1600
    # PDF pages are rasterised at screen resolution: readable, and an A4 page is ~800x1100.
    pdf_dpi: int = 96
    # A PDF page too large for max_image_pixels at pdf_dpi is drawn smaller; one that would have
    # to go below this resolution (half of screen: text no longer readable) is refused with a
    # note instead, and the rest of the PDF is shown. A0 fits at 96 dpi, 7,000 pt square at
    # 50; PDF's largest page, 14,400 pt square, would need 24.
    min_pdf_dpi: int = 48
    # Total bytes of images per mail: internal servers commonly cap mail at 10 MB, and base64
    # in the notification adds a third, so 7 MiB of images stays under that.
    byte_budget: int = 7 * MIB
    # JPEG quality for photographs and colourful pages: 80 is the usual size/quality knee.
    jpeg_quality: int = 80
    # Characters of plain text carried beside the images (the optional text layer).
    max_text_chars: int = 1 * MIB
    # Whether the sanitised plain-text layer travels beside the images.
    text_layer: bool = True
    # Plain-text attachments rendered as pages (bigger ones are withheld).
    max_text_attachment_bytes: int = 256 * 1024
    # Chromium backend: keep one browser alive per worker (Playwright) instead of html2image's
    # fresh browser per mail (~1 s each).
    chromium_keep_alive: bool = False
    # Seconds the Chromium backend may take for one screenshot before it is killed.
    chromium_timeout_s: float = 20.0
    # The Chromium binary (Debian's package).
    chromium_path: str = "/usr/bin/chromium"
    # PyMuPDF backend: NanumGothic.ttf and NanumGothicBold.ttf are taken from here (Debian's
    # fonts-nanum) for bold Korean headings; "" or missing files: MuPDF's built-in CJK font.
    font_dir: str = "/usr/share/fonts/truetype/nanum"
    # Personal-data types (mailsafe.pii names: rrn, foreigner_id, driver_license, passport,
    # credit_card, bank_account) masked before anything becomes pixels or text. Empty: no
    # detection and no OCR while rendering at all. The receive filters choose them per mail
    # (RenderPool.render(raw, mask_types=...)).
    mask_types: frozenset[str] = frozenset()
    # Masked values hidden whole (every letter and digit, in text and in PDF text) instead of
    # the usual masked form that keeps a birth date or a card's last four (800101-1******):
    # the approval previews of held outbound mail (issue 18.3: OCR of a preview must find no
    # digit of a found number). Pictures read by OCR are painted whole either way.
    mask_whole: bool = False
    # (type, digits) of numbers another reading found in this mail (the outbound scan's
    # findings, for an approval preview): runs of their digits are hidden wherever they are
    # drawn, also where the detector cannot see the whole number (mailsafe.render.masking.text
    # .Hiding). Set per mail (RenderPool.render(raw, known=...)).
    mask_known: tuple[tuple[PiiType, str], ...] = ()
    # (type, position) of findings another reading found in pictures of this mail, with their
    # OCR word boxes (the outbound scan's, for an approval preview; mailsafe.positions): those
    # boxes are painted over in the attached picture or PDF page they name, besides what the
    # renderer's own OCR finds. Set per mail (RenderPool.render(raw, positions=...)).
    mask_positions: tuple[tuple[PiiType, Position], ...] = ()
    # (type, value) of findings another reading made in this mail, whatever their place (the
    # outbound scan's, for an approval preview): each value is hidden wherever it is drawn,
    # also wrapped over lines of a page (mailsafe.positions.value_spans): an office document's
    # or a PDF's text, a file name. Set per mail (RenderPool.render(raw, values=...)).
    mask_values: tuple[tuple[PiiType, str], ...] = ()
    # The receive side: before drawing, the text of the mail's office documents and PDFs is
    # read as the outbound scan reads it, and its findings of the masked types join
    # mask_values (mailsafe.render.masking.documents, D97): a value LibreOffice breaks over
    # two lines of a narrow cell is hidden all the same. A mail with no such document reads
    # nothing. Off for approval previews, which pass the scan's own values.
    mask_document_text: bool = False
    # An attachment whose bytes are a picture (PNG, JPEG, GIF, BMP, WebP, TIFF) drawn as one
    # whatever its Content-Type says (a mailer's application/octet-stream): the approval
    # preview must show every picture a mail carries. Off for the receive side, which draws
    # what the sender labelled a picture, as before.
    pictures_by_content: bool = False
    # Masking reads pictures and scanned pages with Tesseract in these languages ("" or not
    # installed: pictures are shown unchecked, and the notification says so) ...
    ocr_languages: str = DEFAULT_LANGUAGES
    # ... within the outbound scanner's per-mail OCR budget (mailsafe.extract.limits): past it,
    # pictures are shown unchecked with a note.
    ocr_max_pictures: int = ExtractLimits.ocr_max_pictures
    ocr_max_seconds: float = ExtractLimits.ocr_max_seconds
    ocr_max_pixels: int = ExtractLimits.ocr_max_pixels
    # Each link's target shown beside its text, defanged and never clickable (issue 17.7): a
    # picture of "click here" alone cannot be checked by its reader.
    show_link_targets: bool = True
    # Office documents (docx, xlsx, pptx and their macro variants, doc/xls/ppt, odt/ods/odp,
    # rtf) become pages through a sandboxed LibreOffice (mailsafe.office); False: they are
    # withheld as before ("not_rendered_type"). HWP/HWPX are read as text pages either way.
    office_documents: bool = True
    # Wall-clock seconds LibreOffice may take for one document before it is killed and
    # replaced (the document is withheld, "office_timeout"): a 10-page report takes well under
    # a second. A mail's documents together get twice this (OFFICE_MAIL_SHARE), plus one
    # start-up, which must stay under the worker's own limit per mail.
    office_wall_seconds: float = 10.0

    def __post_init__(self) -> None:
        object.__setattr__(self, "mask_types", checked_mask_types(self.mask_types))
        object.__setattr__(self, "mask_known", checked_known(self.mask_known))
        object.__setattr__(self, "mask_positions", checked_positions(self.mask_positions))
        object.__setattr__(self, "mask_values", checked_values(self.mask_values))

    def to_json(self) -> str:
        """The options as JSON for a worker's command line (a set becomes a sorted list)."""
        values = dataclasses.asdict(self)
        values["mask_types"] = sorted(self.mask_types)
        return json.dumps(values)

    @classmethod
    def from_json(cls, text: str) -> RenderOptions:
        values: dict[str, Any] = json.loads(text)
        values["mask_types"] = frozenset(values.get("mask_types", ()))
        values["mask_known"] = tuple(tuple(pair) for pair in values.get("mask_known", ()))
        values["mask_positions"] = checked_positions(values.get("mask_positions", ()))
        values["mask_values"] = checked_values(values.get("mask_values", ()))
        return cls(**values)
