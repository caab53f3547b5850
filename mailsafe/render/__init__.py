"""Render a hostile mail into pictures: ``render_message(raw, options) -> RenderedMail``.

In-process and pure apart from the Chromium backend's subprocess and, when masking reads
pictures (``options.mask_types``), Tesseract's; the agent calls it only inside a
:class:`mailsafe.render.pool.RenderPool` worker, which adds CPU, memory and time limits.
"""

from __future__ import annotations

import dataclasses
import functools
import html as html_escape
import time
from dataclasses import dataclass, field

from PIL import Image

from mailsafe.charsets import guess_unlabelled
from mailsafe.errors import HostileInput, MailsafeError
from mailsafe.extract.limits import ExtractLimits
from mailsafe.mime import Address, Attachment, ParsedMail, parse_message
from mailsafe.notes import NOTES, note
from mailsafe.office.converter import DocumentConverter
from mailsafe.office.formats import HANGUL_KINDS, OFFICE_KINDS, document_kind
from mailsafe.office.hangul import hangul_text
from mailsafe.payload import (
    PACKAGE_VERSION,
    HeaderBlock,
    Manifest,
    PageInfo,
    RenderedMail,
    Withheld,
)
from mailsafe.render.document import compose, decode_picture
from mailsafe.render.drawn import drawn_text
from mailsafe.render.encode import encode_image
from mailsafe.render.masking import Masker
from mailsafe.render.masking.documents import NO_FIRST_READING, FirstReading, document_values
from mailsafe.render.options import MAX_MASK_VALUES, RenderOptions
from mailsafe.render.story import PageTooLarge, pdf_page_images, render_tiles

__all__ = [
    "RenderOptions",
    "headers_of",
    "not_displayable",
    "render_message",
    "render_parsed",
    "summary_of",
    "with_document_values",
]

# A mail's office documents together may take this many times one document's wall-clock limit
# (office_wall_seconds): one hang leaves time for the others; more hangs cannot outlast the
# render worker's limit per mail ([render] wall_seconds).
OFFICE_MAIL_SHARE = 2
# Less than this share of office_wall_seconds left for a document: not converted
# ("office_skipped"); a conversion given less would rarely finish.
MIN_OFFICE_SHARE = 0.25
PDF_TYPES = frozenset({"application/pdf", "application/x-pdf"})
TEXT_ATTACHMENT_TYPES = frozenset({"text/plain", "text/csv"})
# The first bytes of the picture formats Pillow decodes here (RenderOptions.pictures_by_content):
# PNG, JPEG, GIF, BMP, TIFF (both byte orders); WebP is RIFF with "WEBP" at byte 8.
PICTURE_SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM",
                      b"II*\x00", b"MM\x00*")  # fmt: skip


def _join(addresses: tuple[Address, ...]) -> str:
    return ", ".join(
        f"{a.display} <{a.addr}>" if a.display and a.addr else a.display or a.addr
        for a in addresses
    )


def headers_of(mail: ParsedMail) -> HeaderBlock:
    return HeaderBlock(
        from_=_join(mail.from_),
        to=_join(mail.to),
        cc=_join(mail.cc),
        date=mail.date,
        subject=mail.subject,
        message_id=mail.message_id or "",
        in_reply_to=mail.in_reply_to or "",
        references=" ".join(mail.references),
    )


def _withheld(attachment: Attachment, reason: str) -> Withheld:
    return Withheld(
        filename=attachment.filename,
        content_type=attachment.content_type,
        size=attachment.size,
        sha256=attachment.sha256,
        reason=reason,
    )


def not_displayable(
    mail: ParsedMail | None, reason: str, notes: tuple[str, ...] = ()
) -> RenderedMail:
    """The notice for a mail that could not be shown safely: headers, attachment list, reason."""
    headers = headers_of(mail) if mail is not None else HeaderBlock()
    withheld = tuple(_withheld(a, "not_displayable") for a in mail.attachments) if mail else ()
    manifest = Manifest(
        version=PACKAGE_VERSION,
        mail_id="",
        status="not_displayable",
        reason=reason,
        headers=headers,
        withheld=withheld,
        notes=notes,
    )
    return RenderedMail(manifest=manifest)


@dataclass
class _Output:
    options: RenderOptions
    images: list[bytes] = field(default_factory=list)
    pages: list[PageInfo] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    spent: int = 0
    budget_hit: bool = False
    # Monotonic time by which this mail's office documents must be converted (0: not yet set).
    office_deadline: float = 0.0

    def add(self, image: Image.Image, source: str, index: int, *, photo: bool = False) -> bool:
        if len(self.images) >= self.options.max_images:
            self._full(note("too_many_images", limit=self.options.max_images))
            return False
        encoded = encode_image(image, self.options.jpeg_quality, photo=photo)
        if self.spent + len(encoded.data) > self.options.byte_budget:
            self._full(note("byte_budget", limit=self.options.byte_budget))
            return False
        self.spent += len(encoded.data)
        self.images.append(encoded.data)
        self.pages.append(
            PageInfo(encoded.media_type, encoded.width, encoded.height, source, index)
        )
        return True

    def _full(self, note: str) -> None:
        self.budget_hit = True
        if note not in self.notes:
            self.notes.append(note)


def render_message(
    raw: bytes, options: RenderOptions, converter: DocumentConverter | None = None
) -> RenderedMail:
    """Parse and render ``raw``; hostile content yields notes or a not-displayable notice.
    With ``options.mask_types``, personal data of those types is masked before anything is
    drawn, and the manifest says what was masked where (``masked``, ``unchecked``). Office
    documents become pages through ``converter`` (none: they are withheld)."""
    return render_parsed(parse_message(raw), options, converter)


def render_parsed(
    mail: ParsedMail, options: RenderOptions, converter: DocumentConverter | None = None
) -> RenderedMail:
    """Render a mail parsed already (the receive filters read it first, in the same worker,
    and render each part of it from that one parse, with the part's mask)."""
    if options.mask_types:
        options = with_document_values(mail, options, options.mask_types)
    masker = Masker(options) if options.mask_types else None
    if masker is not None:
        masker.learn_files(mail)
        mail = masker.mail(mail)
    try:
        return _render(mail, options, masker, converter)
    except MailsafeError as exc:
        return _with_masking(not_displayable(mail, exc.code, (str(exc),)), masker)


def with_document_values(
    mail: ParsedMail,
    options: RenderOptions,
    types: frozenset[str],
    first: FirstReading = NO_FIRST_READING,
) -> RenderOptions:
    """``options`` with the values of ``types`` its office documents and PDFs hold joined to
    ``mask_values``, when ``options.mask_document_text`` asks for it (the receive side): read
    once per mail, before anything is drawn, and not again (the flag is cleared); what the
    ``first`` reading (the receive filters', for their rules) read of a document is taken
    from there. A mail without such a document reads nothing."""
    if not options.mask_document_text:
        return options
    kinds = {"pdf", *OFFICE_KINDS} if options.office_documents else {"pdf"}
    documents = [
        (attachment.filename or "document", attachment.data)
        for attachment in _all_attachments(mail)
        if not attachment.truncated
        and _kind(attachment, by_content=options.pictures_by_content) in kinds
    ]
    found = document_values(documents, types, first=first) if documents else ()
    values = tuple(dict.fromkeys((*options.mask_values, *found)))[:MAX_MASK_VALUES]
    return dataclasses.replace(options, mask_document_text=False, mask_values=values)


def summary_of(raw: bytes, mask_types: frozenset[str] = frozenset()) -> RenderedMail:
    """The not-displayable notice of ``raw`` (headers, attachment list) without rendering:
    what a worker answers after a render failed; the header fields and attachment names
    masked for ``mask_types``."""
    mail = parse_message(raw)
    masker = Masker(RenderOptions(mask_types=mask_types)) if mask_types else None
    if masker is not None:
        mail = masker.mail(mail)
    return _with_masking(not_displayable(mail, "render_error"), masker)


def _with_masking(rendered: RenderedMail, masker: Masker | None) -> RenderedMail:
    if masker is None:
        return rendered
    masked, unchecked, notes = masker.report()
    manifest = dataclasses.replace(
        rendered.manifest,
        masked=masked,
        unchecked=unchecked,
        notes=tuple(dict.fromkeys([*rendered.manifest.notes, *notes])),
    )
    return dataclasses.replace(rendered, manifest=manifest)


def _render(
    mail: ParsedMail,
    options: RenderOptions,
    masker: Masker | None,
    converter: DocumentConverter | None,
) -> RenderedMail:
    if note("outlook_msg") in mail.defects:  # an empty "(제목 없음)" picture would say nothing
        raise HostileInput(
            "an Outlook .msg file that could not be read", code="unreadable_outlook_msg"
        )
    composition = compose(mail, options, masker, _withheld_before_drawing(mail, options))
    output = _Output(options)
    if options.backend == "chromium":
        # Lazy: Playwright and html2image are the optional "chromium" extra; PyMuPDF workers
        # never load them.
        if options.chromium_keep_alive:
            from mailsafe.render.browser import render_kept_alive as screenshot
        else:
            from mailsafe.render.chromium import render_screenshot as screenshot
        tiles, cut = screenshot(composition.html, options, options.max_body_tiles)
    else:
        rendered = render_tiles(composition.html, options, options.max_body_tiles)
        tiles, cut = rendered.images, rendered.cut
    if cut:
        output.notes.append(note("tiles_cut", limit=options.max_body_tiles))
    for index, tile in enumerate(tiles):
        if not output.add(tile, "body", index):
            break
    place = _Place(options, output, masker, converter)
    withheld = _attachments(mail, place, composition.used_cids)
    notes = [*composition.notes, *output.notes, *_security_notes(mail), *mail.defects]
    masked, unchecked, mask_notes = masker.report() if masker else ((), (), [])
    notes[:0] = mask_notes  # first: the cap below must not cut what masking says
    manifest = Manifest(
        version=PACKAGE_VERSION,
        mail_id="",
        status="rendered",
        reason=None,
        headers=headers_of(mail),
        pages=tuple(output.pages),
        withheld=tuple(withheld),
        notes=tuple(dict.fromkeys(n[:500] for n in notes[:100])),
        masked=masked,
        unchecked=unchecked,
    )
    text = composition.text[: options.max_text_chars] if options.text_layer else None
    return RenderedMail(manifest=manifest, images=tuple(output.images), text=text)


def _security_notes(mail: ParsedMail) -> list[str]:
    # security markers are "smime-signed" etc.; their notes are "smime_signed" etc.
    return [note(s.replace("-", "_")) if s.replace("-", "_") in NOTES else s for s in mail.security]


def _all_attachments(mail: ParsedMail) -> list[Attachment]:
    found = list(mail.attachments)
    for forwarded in mail.forwarded:
        found.extend(_all_attachments(forwarded))
    return found


@dataclass(frozen=True)
class _Place:
    """Where attachments are drawn: the options, the output so far, the masker if any, and
    the converter of office documents if any."""

    options: RenderOptions
    output: _Output
    masker: Masker | None
    converter: DocumentConverter | None = None


def _attachments(mail: ParsedMail, place: _Place, used_cids: set[str]) -> list[Withheld]:
    options, output = place.options, place.output
    withheld: list[Withheld] = []
    documents = 0  # PDFs and office/Hangul documents: each may have max_pdf_pages
    for attachment in _all_attachments(mail):
        if attachment.truncated:
            withheld.append(_withheld(attachment, "too_large"))
            continue
        kind = _kind(attachment, by_content=options.pictures_by_content)
        paged = kind in {"pdf", *OFFICE_KINDS, *HANGUL_KINDS}
        if paged and (documents >= options.max_pdf_attachments or output.budget_hit):
            withheld.append(_withheld(attachment, "budget"))
        elif paged:
            documents += 1
            withheld.extend(_paged(kind, attachment, place))
        elif kind == "image" and not output.budget_hit:
            if (attachment.content_id or "").lower() in used_cids:
                continue  # shown in the body where the HTML places it
            withheld.extend(_picture(attachment, place))
        elif kind == "text" and attachment.size <= options.max_text_attachment_bytes:
            withheld.extend(_text_attachment(attachment, place))
        else:
            withheld.append(
                _withheld(
                    attachment, _not_drawn_reason(attachment) if kind == "other" else "budget"
                )
            )
    return withheld


def _not_drawn_reason(attachment: Attachment) -> str:
    """Why an attachment of a kind never drawn is withheld: a winmail.dat or S/MIME part
    left as an attachment is one the parser could not read (one it read became the mail's
    parts; the mail's security notes say which and why)."""
    if attachment.content_type in {"application/ms-tnef", "application/vnd.ms-tnef"}:
        return "unreadable_tnef"
    if attachment.content_type in {"application/pkcs7-mime", "application/x-pkcs7-mime"}:
        return "smime_not_shown"  # one whose signed content was read became the mail's parts
    return "not_rendered_type"


def _withheld_before_drawing(mail: ParsedMail, options: RenderOptions) -> list[Withheld]:
    """The parts ``_attachments`` will withhold whatever happens while drawing (too large to
    keep, a type not drawn, text over its limit), so that the body's picture can name them;
    a part withheld only later (a broken PDF, the byte budget) is in the manifest alone."""
    found = []
    for attachment in _all_attachments(mail):
        kind = _kind(attachment, by_content=options.pictures_by_content)
        if attachment.truncated:
            found.append(_withheld(attachment, "too_large"))
        elif kind == "other":
            found.append(_withheld(attachment, _not_drawn_reason(attachment)))
        elif kind == "text" and attachment.size > options.max_text_attachment_bytes:
            found.append(_withheld(attachment, "budget"))
    return found


def _kind(attachment: Attachment, *, by_content: bool = False) -> str:
    """ "pdf", an office or Hangul kind ("docx", "hwp", ...), "image", "text" or "other";
    ``by_content``: a part whose bytes start as a picture's is an "image" whatever its type."""
    name = attachment.filename.lower()
    if attachment.content_type in PDF_TYPES or (
        name.endswith(".pdf") and attachment.data.startswith(b"%PDF")
    ):
        return "pdf"
    document = document_kind(attachment.filename, attachment.content_type, attachment.data[:8])
    if document is not None:
        return document
    if name.endswith((".txt", ".csv")) and attachment.content_type == "application/octet-stream":
        return "text"  # plain text that its mailer did not label
    if _is_picture(attachment, by_content=by_content):
        return "image"
    if attachment.content_type in TEXT_ATTACHMENT_TYPES:
        return "text"
    return "other"


def _is_picture(attachment: Attachment, *, by_content: bool) -> bool:
    """Labelled a picture (SVG is not drawn: it is a document with scripts), or, ``by_content``,
    unlabelled and its bytes start as a picture's."""
    if attachment.content_type.startswith("image/"):
        return attachment.content_type != "image/svg+xml"
    data = attachment.data
    webp = data.startswith(b"RIFF") and data[8:12] == b"WEBP"
    return by_content and (webp or data.startswith(PICTURE_SIGNATURES))


def _paged(kind: str, attachment: Attachment, place: _Place) -> list[Withheld]:
    """A PDF, office or Hangul document as pages; what cannot be drawn, withheld with why."""
    if kind == "pdf":
        return _pdf(attachment, place, attachment.data)
    if kind in HANGUL_KINDS:
        return _hangul(kind, attachment, place)
    if place.converter is None:
        reason = "office_unavailable" if place.options.office_documents else "not_rendered_type"
        return [_withheld(attachment, reason)]
    seconds = _office_seconds_left(place)
    if seconds < MIN_OFFICE_SHARE * place.options.office_wall_seconds:
        return [_withheld(attachment, "office_skipped")]
    try:
        pdf = place.converter.convert(attachment.data, kind, seconds)
    except MailsafeError as exc:
        return [_withheld(attachment, exc.code)]
    return _pdf(attachment, place, pdf)


def _office_seconds_left(place: _Place) -> float:
    """Wall-clock seconds the next office document may take: its own limit, within the mail's
    (OFFICE_MAIL_SHARE documents' worth), so that hanging documents cost their own
    attachments and never the render worker's limit for the whole mail."""
    output, limit = place.output, place.options.office_wall_seconds
    now = time.monotonic()
    if not output.office_deadline:
        output.office_deadline = now + OFFICE_MAIL_SHARE * limit
    return min(limit, output.office_deadline - now)


def _hangul(kind: str, attachment: Attachment, place: _Place) -> list[Withheld]:
    """An HWP or HWPX document's text as pages (mailsafe.office.hangul says why not layout)."""
    try:
        found = hangul_text(attachment.data, kind, ExtractLimits())
    except MailsafeError as exc:
        return [_withheld(attachment, exc.code)]
    if found.preview_only:
        place.output.notes.append(note("hwp_preview_only", name=attachment.filename))
    options, output, text = place.options, place.output, found.text
    source = f"attachment:{attachment.filename}"
    if place.masker is not None:
        text = place.masker.text(text, source)
    document = (
        f"<html><body><p><b>{html_escape.escape(attachment.filename)}</b></p>"
        f'<pre style="white-space: pre-wrap">{html_escape.escape(text)}</pre></body></html>'
    )
    rendered = render_tiles(document, options, options.max_pdf_pages)
    if rendered.cut:
        output.notes.append(
            note("document_pages_cut", name=attachment.filename, limit=options.max_pdf_pages)
        )
    for index, tile in enumerate(rendered.images):
        if not output.add(tile, source, index):
            break
    return []


def _pdf(attachment: Attachment, place: _Place, data: bytes) -> list[Withheld]:
    """The PDF's pages as pictures, up to the page cap; a page too large to show is named in a
    note and skipped, the others are shown. With masking, each page is redacted first."""
    options, output, masker = place.options, place.output, place.masker
    name = attachment.filename
    seen, shown, total = 0, 0, 0
    source = f"attachment:{name}"
    prepare = (
        functools.partial(masker.pdf_page, source=source, digest=attachment.sha256)
        if masker
        else None
    )
    try:
        pages = pdf_page_images(data, options, options.max_pdf_pages, options.pdf_dpi, prepare)
        for index, (page, page_count) in enumerate(pages):
            total = page_count
            if isinstance(page, PageTooLarge):
                output.notes.append(_too_large(name, index + 1, page))
            elif not output.add(page, source, index):
                break
            else:
                shown += 1
            seen += 1
    except MailsafeError as exc:
        if seen == 0:
            return [_withheld(attachment, exc.code)]
        output.notes.append(note("pdf_page_failed", name=name, page=seen + 1))
    if total > seen:
        output.notes.append(
            note("pdf_pages_capped", name=name, shown=shown, total=total,
                 limit=options.max_pdf_pages)
        )  # fmt: skip
    return []


def _too_large(name: str, page: int, size: PageTooLarge) -> str:
    width, height = round(size.width_pt), round(size.height_pt)
    return note("pdf_page_too_large", name=name, page=page, width=width, height=height)


def _picture(attachment: Attachment, place: _Place) -> list[Withheld]:
    picture = decode_picture(attachment.data, place.options)
    if picture is None:
        return [_withheld(attachment, "bad_or_too_big_image")]
    source = f"attachment:{attachment.filename}"
    if place.masker is not None:
        picture = place.masker.picture(picture, source, digest=attachment.sha256)
    place.output.add(picture, source, 0, photo=True)
    return []


def _text_attachment(attachment: Attachment, place: _Place) -> list[Withheld]:
    options, output = place.options, place.output
    text = guess_unlabelled(attachment.data)
    if place.masker is not None:
        text = place.masker.text(text, f"attachment:{attachment.filename}")
    document = (
        f"<html><body><p><b>{html_escape.escape(attachment.filename)}</b></p>"
        f'<pre style="white-space: pre-wrap">{drawn_text(text)}</pre></body></html>'
    )
    rendered = render_tiles(document, options, 2)
    for index, tile in enumerate(rendered.images):
        if not output.add(tile, f"attachment:{attachment.filename}", index):
            break
    return []
