"""The personal data in a mail's documents' text, read before they are drawn (D97).

LibreOffice lays out an office document in pages nobody reads as a whole: a value in a
narrow table cell or a wrapped spreadsheet cell is drawn over two lines, where the
detector run on each drawn page no longer sees it. Read first, as the outbound scan reads
them (``mailsafe.extract.attachments.attachment_locations``, ``mailsafe.pii.detect``), the
documents' text holds each value whole; the renderer then hides those values wherever it
draws them (``RenderOptions.mask_values``, ``mailsafe.positions.value_spans``), as an approval
preview hides the scan's (D85). A value a PDF's page break splits is read over the break
(``mailsafe.render.masking.breaks``); a document the receive filters read already for their
rules, and the findings of its text, are taken from that reading (:class:`FirstReading`, D105).
Pure apart from the clock: bytes in, (type, value) out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from dataclasses import dataclass, field
from typing import Final

from mailsafe.extract.attachments import MAIL_WIDE_REASONS, Found, attachment_locations
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.types import Location, Unreadable
from mailsafe.pii import Finding, PiiType
from mailsafe.pii.pagebreaks import detect_paged
from mailsafe.positions import TextLayout
from mailsafe.render.options import MAX_MASK_VALUE_CHARS, MAX_MASK_VALUES

__all__ = ["DOCUMENT_READ_LIMITS", "NO_FIRST_READING", "FirstReading", "document_values"]

# Reading a mail's documents before drawing them: the outbound scan's limits, but a third of
# the render worker's 60 s per mail, so LibreOffice (twice office_wall_seconds) and drawing
# keep theirs; no OCR (the renderer reads the pictures it draws itself). Past it, a document
# is drawn with the detector's masking alone, as before.
DOCUMENT_READ_LIMITS: Final = ExtractLimits(max_seconds=10.0, ocr_languages="")


@dataclass(frozen=True)
class FirstReading:
    """A reading of the same mail made before, in the same worker (the receive filters', for
    rules that read the text, D105): what each file held, by its name and the SHA-256 of its
    bytes (``mailsafe.extract.extract_locations(..., readings=)``), and the detector's
    findings of each text (``mailsafe.scan.read_mail(..., detected=)``)."""

    files: Mapping[tuple[str, str], Sequence[Found]] = field(default_factory=dict)
    findings: Mapping[str, Sequence[Finding]] = field(default_factory=dict)


NO_FIRST_READING: Final = FirstReading()


def document_values(
    documents: Iterable[tuple[str, bytes]],
    types: Set[str],
    limits: ExtractLimits = DOCUMENT_READ_LIMITS,
    clock: Callable[[], float] = time.monotonic,
    first: FirstReading = NO_FIRST_READING,
) -> tuple[tuple[PiiType, str], ...]:
    """(type, value) of every finding of ``types`` in the text of ``documents`` ((name,
    bytes) pairs), once each, in order, those a page break cuts included; at most
    MAX_MASK_VALUES, each a value ``RenderOptions.mask_values`` takes. A document the
    ``first`` reading read (the same name and bytes) is not read again, nor a text it
    searched searched again."""
    budget = Budget(limits, clock)
    found: dict[tuple[PiiType, str], None] = {}
    for name, data in documents:
        for place in _reading(name, data, budget, first.files):
            if isinstance(place, Location):  # an unreadable part keeps the detector's masking
                findings = _findings(place.text, place.layout, types, first.findings)
                found.update(dict.fromkeys(_values(findings, types)))
    return tuple(found)[:MAX_MASK_VALUES]


def _reading(
    name: str, data: bytes, budget: Budget, read_before: Mapping[tuple[str, str], Sequence[Found]]
) -> Sequence[Found]:
    """What ``data`` holds: as read before, unless that reading was stopped for the whole
    mail (its time, its file count: this reading has its own), else read now."""
    before = read_before.get((name, hashlib.sha256(data).hexdigest())) if read_before else None
    if before is None or any(
        isinstance(place, Unreadable) and place.reason in MAIL_WIDE_REASONS for place in before
    ):
        return attachment_locations(name, data, budget)
    return before


def _values(findings: Iterable[Finding], types: Set[str]) -> list[tuple[PiiType, str]]:
    found = ((finding.type, finding.text.strip()) for finding in findings)
    return [(kind, value) for kind, value in found
            if kind in types and value and len(value) <= MAX_MASK_VALUE_CHARS]  # fmt: skip


def _findings(
    text: str, layout: TextLayout, types: Set[str], detected: Mapping[str, Sequence[Finding]]
) -> list[Finding]:
    """The findings of ``text`` (as the scan's reading ``detected`` them, else now), those a
    break between two of its pages (``layout``) cuts included (``mailsafe.pii.pagebreaks``)."""
    known = detected.get(text)
    found = detect_paged(text, layout.pages) if known is None else known
    return [finding for finding in found if finding.type in types]
