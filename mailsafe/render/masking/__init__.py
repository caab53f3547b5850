"""Masking personal data before a mail becomes pixels (``RenderOptions.mask_types``).

One :class:`Masker` per mail, made by the renderer only when ``mask_types`` is not empty
(otherwise nothing here runs: no detection, no OCR). It masks, in the order the renderer
meets them:

- the header fields, attachment names and plain-text bodies of the parsed mail and its
  forwarded mails (:meth:`Masker.mail`), so the header block, the notes, the manifest and the
  text layer only ever hold the masked form (``800101-1******``);
- the sanitised HTML body, text nodes and visible attributes (:meth:`Masker.html`);
- pictures (inline, attached) by OCR with word boxes, painted over (:meth:`Masker.picture`);
- PDF pages, redacted before rasterising, each with the text of the pages around it, so a
  value a page break cuts is hidden on both (:meth:`Masker.pdf_page`, D105).

It keeps count of what it masked where, and of the pictures it could not read (OCR not
installed, the mail's OCR budget spent, Tesseract failed): :meth:`Masker.report` gives the
manifest's ``masked`` and ``unchecked`` entries and the notes saying both.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import Counter
from typing import Any

from PIL import Image

from mailsafe.extract import file_places
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import image_reading, ocr_languages_available, tesseract_path
from mailsafe.invitation import CalendarEvent
from mailsafe.mime import Address, Attachment, ParsedMail
from mailsafe.notes import note
from mailsafe.payload import Masked, Unchecked
from mailsafe.pii import PII_TYPES, Finding
from mailsafe.positions import Position
from mailsafe.render.masking.breaks import BREAK_WINDOW_CHARS
from mailsafe.render.masking.pdf import Around, mask_page, page_text
from mailsafe.render.masking.pictures import boxes_to_paint, paint, scaled_boxes
from mailsafe.render.masking.text import Hiding, mask_html, mask_plain
from mailsafe.render.options import RenderOptions
from mailsafe.scan import masked_where

__all__ = ["Masker"]

# Seconds of the OCR budget's clock kept for what follows the pictures (the rule of
# mailsafe.extract.ocr.ocr_allowed, which keeps this much of the budget's max_seconds back).
_OCR_CLOCK_RESERVE_SECONDS = 2.0
# Places named in one note; a mail masked in more places names the first ones.
MAX_PLACES_NAMED = 5


class Masker:
    """Masks one mail's text and pixels for ``options.mask_types`` and keeps the tally."""

    def __init__(self, options: RenderOptions) -> None:
        self.types = options.mask_types
        self.options = options
        self.hiding = Hiding(whole=options.mask_whole, known=options.mask_known,
                             values=options.mask_values)  # fmt: skip
        # A document's pages hide what a cell too narrow shows of a value, too (D105).
        self._page_hiding = dataclasses.replace(self.hiding, pieces=True)
        # The last page masked, by (source, digest, number), the end of its text as it was and
        # the text of the page after it: the next page of the same document finds what a page
        # break cut over it.
        self._last_page: tuple[tuple[str, str, int], str, str] = (("", "", 0), "", "")
        self._budget: Budget | None = None
        self._counts: Counter[tuple[str, str, int, str]] = Counter()
        self._unchecked: list[Unchecked] = []
        # The positions others found, by the place the renderer draws them: attached
        # pictures ("attachment:<name>", page 0) and PDF pages ("attachment:<name>", page).
        self._positions: dict[tuple[str, int], list[tuple[str, Position]]] = {}
        for kind, position in options.mask_positions:
            drawn_as = (f"{position.part}:{position.file}", position.page)
            self._positions.setdefault(drawn_as, []).append((kind, position))
        # The places the scan named each file by, by the file's SHA-256 (learn_files): the
        # renderer draws a forwarded mail's attachments and an HTML body's data: pictures under
        # names of its own, so their positions are found by the file's bytes.
        self._places: dict[str, tuple[str, ...]] = {}

    def learn_files(self, mail: ParsedMail) -> None:
        """Remember the place the scan names each file of ``mail`` (not yet masked) by, by its
        bytes: the places of ``options.mask_positions`` are the scan's (mailsafe.extract).
        Nothing to look up (the receive filters): nothing is walked or hashed."""
        if not self._positions:
            return
        places: dict[str, list[str]] = {}
        for where, data in file_places(mail):
            places.setdefault(hashlib.sha256(data).hexdigest(), []).append(masked_where(where))
        self._places = {digest: tuple(named) for digest, named in places.items()}

    def _known(self, source: str, page: int, digest: str) -> list[tuple[str, Position]]:
        """The positions found before in the file drawn as ``source`` (or whose bytes have
        ``digest``), on ``page``."""
        places = dict.fromkeys([source, *self._places.get(digest, ())])
        return [found for place in places for found in self._positions.get((place, page), [])]

    # ------------------------------------------------------------------ text

    def text(self, text: str, source: str, *, shown: bool = True) -> str:
        """``text`` masked; counted when it is ``shown`` (a plain alternative of an HTML body
        is masked too, but the HTML is what is drawn and counted)."""
        masked, findings = mask_plain(text, self.types, hiding=self.hiding)
        if shown:
            self._count(findings, source, 0, "text")
        return masked

    def html(self, safe_html: str, source: str) -> str:
        masked, findings = mask_html(safe_html, self.types, hiding=self.hiding)
        self._count(findings, source, 0, "text")
        return masked

    def mail(self, mail: ParsedMail) -> ParsedMail:
        """``mail`` with its header fields, attachment names and plain-text body masked (and
        those of its forwarded mails); the HTML body is masked after sanitising."""
        return dataclasses.replace(
            mail,
            subject=self.text(mail.subject, "header"),
            from_=self._addresses(mail.from_),
            to=self._addresses(mail.to),
            cc=self._addresses(mail.cc),
            reply_to=self._addresses(mail.reply_to),
            text=None if mail.text is None else self.text(mail.text, "body", shown=not mail.html),
            attachments=tuple(self._attachment(a) for a in mail.attachments),
            forwarded=tuple(self.mail(forwarded) for forwarded in mail.forwarded),
            events=tuple(self._event(event) for event in mail.events),
        )

    def _event(self, event: CalendarEvent) -> CalendarEvent:
        """An invitation's title, place and organiser masked like the body they stand in."""
        return dataclasses.replace(
            event,
            summary=self.text(event.summary, "body"),
            location=self.text(event.location, "body"),
            organizer=self.text(event.organizer, "body"),
        )

    def _addresses(self, addresses: tuple[Address, ...]) -> tuple[Address, ...]:
        return tuple(
            Address(self.text(a.display, "header"), self.text(a.addr, "header")) for a in addresses
        )

    def _attachment(self, attachment: Attachment) -> Attachment:
        name = self.text(attachment.filename, "attachment-name")
        return (
            attachment
            if name == attachment.filename
            else dataclasses.replace(attachment, filename=name)
        )

    # ------------------------------------------------------------------ pixels

    def picture(
        self, image: Image.Image, source: str, page: int = 0, *, digest: str = ""
    ) -> Image.Image:
        """``image`` with the personal data OCR reads in it painted over, and the boxes of
        the findings another reading placed in it (``options.mask_positions``, looked up as
        ``source`` and by ``digest``, the SHA-256 of the file it was decoded from); noted as
        unchecked when OCR could not read it here (the known boxes are painted all the same)."""
        known = self._known(source, page, digest)
        boxes, counts = scaled_boxes(known, image.size)
        reading = image_reading(image, self._ocr_budget())
        if isinstance(reading, str):
            self._unchecked.append(Unchecked(source, page, reading))
        else:
            read, read_counts = boxes_to_paint(reading, self.types, self.hiding)
            boxes += read
            counts = read_counts | counts  # per type, the larger of the two counts
        for kind, count in counts.items():
            self._counts[kind, source, page, "ocr"] += count
        return paint(image, boxes) if boxes else image

    def pdf_page(self, page: Any, number: int, source: str, digest: str = "") -> None:
        """Redact ``page`` (PyMuPDF, page ``number`` from 1 of attachment ``source``, whose
        bytes have the SHA-256 ``digest``) in place; the pages are masked in order."""
        known = self._known(source, number, digest)
        done = mask_page(page, self.types, self._ocr_budget(), self.options.pdf_dpi,
                         hiding=self._page_hiding, known=known,
                         around=self._around(page, (source, digest, number)))  # fmt: skip
        for (kind, method), count in done.counts.items():
            self._counts[kind, source, number, method] += count
        if done.unchecked is not None:
            self._unchecked.append(Unchecked(source, number, done.unchecked))

    def _around(self, page: Any, drawn: tuple[str, str, int]) -> Around:
        """The text of ``page`` (``drawn``: its document's source, digest and page number)
        and around it before masking: the page before it as it was (kept from its turn: it is
        redacted now), the page after it (not yet masked; kept as that page's own text for
        its turn, so each page's text is read once)."""
        source, digest, number = drawn
        last, tail, following_text = self._last_page
        previous = last == (source, digest, number - 1)
        text = following_text if previous else page_text(page)
        document, following = page.parent, page.number + 1
        after = page_text(document[following]) if following < document.page_count else ""
        self._last_page = ((source, digest, number), text[-BREAK_WINDOW_CHARS * 2 :], after)
        return Around(tail if previous else "", after[: BREAK_WINDOW_CHARS * 2], text)

    def _ocr_budget(self) -> Budget:
        """The mail's OCR budget, made at the first picture (its clock starts there)."""
        if self._budget is None:
            options = self.options
            languages = options.ocr_languages
            installed = tesseract_path() is not None and set(languages.split("+")) <= (
                ocr_languages_available()
            )
            limits = ExtractLimits(
                ocr_languages=languages if languages and installed else "",
                ocr_max_pictures=options.ocr_max_pictures,
                ocr_max_seconds=options.ocr_max_seconds,
                ocr_max_pixels=options.ocr_max_pixels,
                max_seconds=options.ocr_max_seconds + _OCR_CLOCK_RESERVE_SECONDS,
            )
            self._budget = Budget(limits)
        return self._budget

    # ------------------------------------------------------------------ tally

    def _count(self, findings: list[Finding], source: str, page: int, method: str) -> None:
        for finding in findings:
            self._counts[finding.type, source, page, method] += 1

    def report(self) -> tuple[tuple[Masked, ...], tuple[Unchecked, ...], list[str]]:
        """The manifest's ``masked`` and ``unchecked`` entries, and the notes saying them."""
        masked = tuple(
            Masked(kind, source, page, method, count)
            for (kind, source, page, method), count in sorted(self._counts.items())
        )
        return masked, tuple(self._unchecked), self._notes(masked)

    def _notes(self, masked: tuple[Masked, ...]) -> list[str]:
        notes: list[str] = []
        for kind in PII_TYPES:
            entries = [m for m in masked if m.type == kind]
            if entries:
                places = list(dict.fromkeys(_place(m.source, m.page) for m in entries))
                named = ", ".join(places[:MAX_PLACES_NAMED]) + (
                    ", ..." if len(places) > MAX_PLACES_NAMED else ""
                )
                notes.append(note(f"masked_{kind}", count=sum(m.count for m in entries),
                                  name=named))  # fmt: skip
        notes += [
            note(f"mask_unchecked_{u.reason}", name=_place(u.source, u.page))
            for u in self._unchecked
        ]
        return notes


def _place(source: str, page: int) -> str:
    return f"{source} page {page}" if page else source
