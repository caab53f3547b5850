"""The approver's view of a held mail: the mail and each attachment drawn as their pages and
pictures, with every personal-data finding painted over where it is (issue 18.3; decision
"Approval previews drawn by a render worker").

:class:`Previewer` sends the raw mail to a render worker (``mailsafe.render.pool.RenderPool``:
a child process under CPU, memory and wall-clock limits, with its own sandboxed, warm
LibreOffice for office documents), the same renderer that turns external mail into pictures,
with masking on for every personal-data type and hidden whole (``mask_whole``: not even a
birth date is left), and with the numbers the outbound scan found passed along
(``known``): their digits are hidden wherever they are drawn, also where a page shows only a
piece of one (a spreadsheet cell drawn cut short). Text is redacted before it is rasterised,
pictures and scanned pages painted over by OCR word boxes: the worker's own, and the boxes of
the findings the scan read in them (``positions``, mailsafe.positions; the worker finds the
picture by its bytes, also a forwarded mail's or a ``data:`` one). Every finding's characters
go along too (``values``): hidden wherever they are drawn, also where a document's page breaks
one over lines (D85). Pictures are drawn by their bytes, whatever their label. Nothing hostile
is opened in the agent's own process; the pictures come back as a package checked on the way
in.

What cannot be drawn (the worker failed, a part of a type not drawn, a picture OCR could not
read) is named with the reason; the extracted text, masked, stays beside the pictures for
search (``masked_view``). Without a worker (unit tests) or when the worker drew no page at
all, the preview is that text drawn as one picture, as before issue 18.
"""

from __future__ import annotations

import dataclasses
import io
import textwrap
import threading
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from inner_agent.outbound.previews import Preview, PreviewPage, from_rendered
from mailsafe.extract import Found, Location
from mailsafe.extract.text import html_to_text
from mailsafe.mime import ParsedMail
from mailsafe.pii import PII_TYPES, PiiType
from mailsafe.positions import Position
from mailsafe.render.document import MAX_FORWARD_DEPTH
from mailsafe.render.masking.text import Hiding, mask_plain
from mailsafe.render.options import MAX_MASK_VALUE_CHARS, MAX_MASK_VALUES, RenderOptions
from mailsafe.render.pool import RenderPool

if TYPE_CHECKING:
    from inner_agent.outbound.scanning import Scanned

__all__ = ["MaskedView", "Previewer", "masked_view", "preview_pool", "render_png", "text_preview"]

# What one preview may hold (the request mail carries every page; mail servers commonly take
# 10 MB, base64 adds a third): the body in at most 3 screens, at most 5 documents of at most
# 5 pages each, 16 pictures in all, 4 MiB of images. What is left out is named in a note.
PREVIEW_BODY_TILES = 3
PREVIEW_DOCUMENT_PAGES = 5
PREVIEW_DOCUMENTS = 5
PREVIEW_MAX_IMAGES = 16
PREVIEW_BYTE_BUDGET = 4 << 20
ALL_TYPES = frozenset(PII_TYPES)
# Digits a found number must have to be passed on as known: fewer would hide unrelated numbers.
MIN_KNOWN_DIGITS = 6

# Fonts with Hangul, tried in order (Debian: fonts-nanum, fonts-noto-cjk).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
WIDTH_PX = 1000  # readable in a mail client without scaling
MARGIN_PX = 24
FONT_PX = 16
LINE_PX = 22
WRAP_CHARS = 60  # Hangul is twice as wide as Latin; 60 wide glyphs fill the width
# An approver decides on the gist; past this many lines the image says "(cut)". Bounds memory.
MAX_LINES = 160
# Per place (body, each attachment) at most this many characters are shown.
MAX_CHARS_PER_PLACE = 4000
# Forwarded mails inside forwarded mails whose body and attachments are in the text sections:
# as deep as the pages draw forwarded mails; deeper ones are named with their attachments.
PREVIEW_FORWARD_DEPTH = MAX_FORWARD_DEPTH


@dataclass(frozen=True)
class MaskedView:
    """What the approver sees; every string here is already masked."""

    headers: tuple[tuple[str, str], ...]
    sections: tuple[tuple[str, str], ...]  # (title, masked text)


def masked_view(
    parsed: ParsedMail,
    found: Sequence[Found],
    values: Sequence[tuple[PiiType, str]] = (),
    known: Sequence[tuple[PiiType, str]] = (),
) -> MaskedView:
    """The approver's view of ``parsed``, its attachments shown from ``found``: what the scan
    read (in the reader's child process, OCR included). Nothing is read again here, so a file
    that crashed or hung the reader cannot take the agent down on its way to the approver.
    ``values`` and ``known``: the scan's findings (``known_values``, ``known_numbers``),
    masked wherever they are, also where the detector alone would not see them again (a file
    name in an archive, a long list, a number written without its hyphen). File names are
    hidden whole, as the pages' titles name them (the worker's ``mask_whole``).

    A forwarded mail's body and attachments follow the mail's own, each titled with where it
    came from ("전달된 메일의 첨부: 명단.xlsx"), to ``PREVIEW_FORWARD_DEPTH`` levels; mails
    forwarded deeper are named with their attachments' names (the scan read them all)."""
    hiding = Hiding(known=tuple(known), values=tuple(values))
    show = _Show(
        found,
        lambda text: mask_plain(text, ALL_TYPES, hiding=hiding)[0],
        lambda text: mask_plain(text, ALL_TYPES, hiding=dataclasses.replace(hiding, whole=True))[0],
    )
    headers = (
        ("보낸 사람", ", ".join(a.addr for a in parsed.from_)),
        ("받는 사람", ", ".join(a.addr for a in (*parsed.to, *parsed.cc))),
        ("제목", show.masked(parsed.subject)),
        ("날짜", parsed.date),
    )
    forwards = list(_forwards(parsed))
    shown = [f for f in forwards if f.depth <= PREVIEW_FORWARD_DEPTH]
    deeper = [f for f in forwards if f.depth > PREVIEW_FORWARD_DEPTH]
    sections = [("본문", show.masked(_body(parsed)[:MAX_CHARS_PER_PLACE]))]
    sections += _attachment_sections(show, "", "첨부 ")
    for forward in shown:
        sections += _forwarded_sections(show, forward)
    if deeper:
        sections.append(_deeper_section(show, deeper))
    names = [a.filename for a in parsed.attachments]
    names += [f"{f.origin}의 첨부: {n}" for f in shown for n in f.attachment_names]
    if names:
        sections.append(("첨부 파일 목록", show.named("\n".join(names))))
    return MaskedView(headers, tuple(sections))


@dataclass(frozen=True)
class _Show:
    """What the sections are made from: the scan's places and the two ways of masking."""

    found: Sequence[Found]
    masked: Callable[[str], str]  # text: a value keeps its usual masked form
    named: Callable[[str], str]  # file names and titles: hidden whole


@dataclass(frozen=True)
class _Forward:
    """A forwarded mail, ``depth`` levels down, its places prefixed ``where`` by the scan."""

    mail: ParsedMail
    where: str  # "forwarded[1].", "forwarded[1].forwarded[2]."
    depth: int

    @property
    def origin(self) -> str:
        """Where its parts came from, as the approver reads it."""
        return "전달된 메일" if self.depth == 1 else f"전달된 메일({self.depth}단계)"

    @property
    def attachment_names(self) -> list[str]:
        return [a.filename or f"part{i}" for i, a in enumerate(self.mail.attachments, 1)]


def _forwards(parsed: ParsedMail, where: str = "", depth: int = 1) -> Iterator[_Forward]:
    """Every mail forwarded in ``parsed``, each before the ones forwarded in it, its places
    named as ``mailsafe.extract.mail_locations`` names them. The parser's ``max_depth``
    bounds the recursion."""
    for index, mail in enumerate(parsed.forwarded, 1):
        inner = f"{where}forwarded[{index}]."
        yield _Forward(mail, inner, depth)
        yield from _forwards(mail, inner, depth + 1)


def _attachment_sections(show: _Show, where: str, title: str) -> list[tuple[str, str]]:
    """A section per attachment the scan read at ``where`` (what it read, or why not)."""
    sections: list[tuple[str, str]] = []
    for item in show.found:
        if not item.where.startswith(f"{where}attachment:"):
            continue
        name = show.named(title + item.where.removeprefix(f"{where}attachment:"))
        if isinstance(item, Location):
            sections.append((name, show.masked(item.text[:MAX_CHARS_PER_PLACE])))
        else:  # the approver should know what the scan could not read, and why
            sections.append((name, f"(읽지 못했습니다: {item.reason})"))
    return sections


def _forwarded_sections(show: _Show, forward: _Forward) -> list[tuple[str, str]]:
    """A forwarded mail's header lines and body, then its attachments."""
    mail = forward.mail
    heads = (("제목", mail.subject), ("보낸 사람", ", ".join(a.addr for a in mail.from_)),
             ("날짜", mail.date))  # fmt: skip
    text = "\n".join([*(f"{k}: {v}" for k, v in heads if v), "", _body(mail)])
    body = (f"{forward.origin}의 본문", show.masked(text[:MAX_CHARS_PER_PLACE]))
    return [body, *_attachment_sections(show, forward.where, f"{forward.origin}의 첨부: ")]


def _deeper_section(show: _Show, deeper: Sequence[_Forward]) -> tuple[str, str]:
    """The mails forwarded past the bound, named: how many, and their attachments' names."""
    lines = [
        f"{PREVIEW_FORWARD_DEPTH}단계보다 깊이 전달된 메일 {len(deeper)}통은 "
        "이 텍스트에 넣지 않았습니다 (검사는 했습니다).",
        *(f"{f.origin}의 첨부: {name}" for f in deeper for name in f.attachment_names),
    ]
    return ("더 깊이 전달된 메일", show.named("\n".join(lines)))


def _body(parsed: ParsedMail) -> str:
    if parsed.text:
        return parsed.text
    return html_to_text(parsed.html) if parsed.html else ""


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, FONT_PX)
    return ImageFont.load_default()


def _lines(view: MaskedView) -> list[tuple[str, bool]]:
    """(text, bold?) lines, wrapped and capped at MAX_LINES."""
    lines: list[tuple[str, bool]] = [(f"{name}: {value}", False) for name, value in view.headers]
    for title, text in view.sections:
        lines += [("", False), (f"■ {title}", True)]
        for paragraph in text.splitlines() or [""]:
            lines += [(part, False) for part in textwrap.wrap(paragraph, WRAP_CHARS) or [""]]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], ("… (이하 생략)", True)]
    return lines


def render_png(view: MaskedView) -> bytes:
    lines = _lines(view)
    height = 2 * MARGIN_PX + LINE_PX * (len(lines) + 2)
    image = Image.new("RGB", (WIDTH_PX, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    draw.text(
        (MARGIN_PX, MARGIN_PX),
        "외부 발송 승인 요청 — 개인정보는 가려져 있습니다",
        font=font,
        fill="#b00020",
    )
    y = MARGIN_PX + 2 * LINE_PX
    for text, bold in lines:
        draw.text((MARGIN_PX, y), text, font=font, fill="#1a237e" if bold else "black")
        y += LINE_PX
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()


def text_preview(
    parsed: ParsedMail,
    found: Sequence[Found],
    values: Sequence[tuple[PiiType, str]] = (),
    known: Sequence[tuple[PiiType, str]] = (),
) -> Preview:
    """The extracted text, masked, drawn as one picture: the preview when no worker draws."""
    view = masked_view(parsed, found, values, known)
    page = PreviewPage("image/png", render_png(view), "text", 1)
    return Preview((page,), (), (), view.sections)


# --------------------------------------------------------------------------- the worker


def preview_options(ocr_languages: str) -> RenderOptions:
    """The renderer's settings for previews: every personal-data type masked whole, pictures
    read in ``ocr_languages`` ("": none can be checked, so none is shown)."""
    return RenderOptions(
        max_body_tiles=PREVIEW_BODY_TILES,
        max_pdf_pages=PREVIEW_DOCUMENT_PAGES,
        max_pdf_attachments=PREVIEW_DOCUMENTS,
        max_images=PREVIEW_MAX_IMAGES,
        byte_budget=PREVIEW_BYTE_BUDGET,
        text_layer=False,  # the scan's extracted text is kept instead (masked_view)
        mask_types=frozenset(PII_TYPES),
        mask_whole=True,
        ocr_languages=ocr_languages,
        pictures_by_content=True,  # every picture the mail carries, whatever its label
    )


def preview_pool(ocr_languages: str) -> RenderPool:
    """One render worker for previews (a held mail is rare; its office documents share the
    worker's warm LibreOffice)."""
    return RenderPool(preview_options(ocr_languages), processes=1)


class Previewer:
    """``preview(data, scanned)``: the preview of a held mail, drawn in ``pool``'s worker, or
    from the scan's text without a pool. ``pool`` may be a factory: the worker (PyMuPDF, later
    LibreOffice: a hundred MiB and more) is then started at the first held mail, not at start,
    so an agent that holds nothing never carries it (issue 15.3's memory line)."""

    def __init__(self, pool: RenderPool | Callable[[], RenderPool] | None = None) -> None:
        ready = pool is None or hasattr(pool, "render")  # a pool (or a stand-in with render)
        self._pool: RenderPool | None = pool if ready else None  # type: ignore[assignment]
        self._make: Callable[[], RenderPool] | None = None if ready else pool  # type: ignore[assignment]
        self._starting = threading.Lock()

    @property
    def pool(self) -> RenderPool | None:
        with self._starting:
            if self._pool is None and self._make is not None:
                self._pool = self._make()
            return self._pool

    def close(self) -> None:
        with self._starting:
            if self._pool is not None:
                self._pool.close()

    def preview(self, data: bytes, scanned: Scanned) -> Preview:
        values, known = known_values(scanned), known_numbers(scanned)
        sections = masked_view(scanned.parsed, scanned.found, values, known).sections
        pool = self.pool
        if pool is None:
            return text_preview(scanned.parsed, scanned.found, values, known)
        rendered = pool.render(data, known=known, positions=known_boxes(scanned), values=values)
        drawn = from_rendered(rendered, sections)
        if drawn.pages:
            return drawn
        fallback = text_preview(scanned.parsed, scanned.found, values, known)
        return Preview(fallback.pages, drawn.left_out, drawn.notes, sections)


def known_boxes(scanned: Scanned) -> tuple[tuple[PiiType, Position], ...]:
    """(type, position) of every finding the scan read in a picture or a scanned page, with
    its word boxes: an attachment, a forwarded mail's, a ``data:`` picture of an HTML body.
    The worker finds the file by its bytes and paints those boxes over where it draws it,
    even where its own OCR of the drawing reads the words differently."""
    return tuple(
        (located.finding.type, position)
        for located in scanned.result.findings
        if (position := located.position).boxes
    )


def known_values(scanned: Scanned) -> tuple[tuple[PiiType, str], ...]:
    """(type, characters) of every finding the scan made, once each: the worker hides them
    wherever they are drawn (an office document laid out in pages, a PDF's text, a file name),
    also broken over lines, where its own detector would not see them whole."""
    found: dict[tuple[PiiType, str], None] = {}
    for located in scanned.result.findings:
        value = located.finding.text.strip()
        if value and len(value) <= MAX_MASK_VALUE_CHARS:
            found[located.finding.type, value] = None
    return tuple(found)[:MAX_MASK_VALUES]


def known_numbers(scanned: Scanned) -> tuple[tuple[PiiType, str], ...]:
    """(type, digits) of every number the scan found, for the worker to hide wherever their
    digits are drawn."""
    found: dict[tuple[PiiType, str], None] = {}
    for located in scanned.result.findings:
        digits = "".join(str(unicodedata.digit(c)) for c in located.finding.text if c.isdigit())
        if len(digits) >= MIN_KNOWN_DIGITS:
            found[located.finding.type, digits] = None
    return tuple(found)
