"""The personal data in a mail's documents' text, read before they are drawn (D97).

LibreOffice lays out an office document in pages nobody reads as a whole: a value in a
narrow table cell or a wrapped spreadsheet cell is drawn over two lines, where the
detector run on each drawn page no longer sees it. Read first, as the outbound scan reads
them (``mailsafe.extract.attachments.attachment_locations``, ``mailsafe.pii.detect``), the
documents' text holds each value whole; the renderer then hides those values wherever it
draws them (``RenderOptions.mask_values``, ``mailsafe.positions.value_spans``), as an approval
preview hides the scan's (D85). Pure apart from the clock: bytes in, (type, value) out.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence, Set
from typing import Final

from mailsafe.extract.attachments import MAIL_WIDE_REASONS, Found, attachment_locations
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.types import Location, Unreadable
from mailsafe.pii import Finding, PiiType, detect
from mailsafe.positions import TextLayout
from mailsafe.render.masking.breaks import across_break
from mailsafe.render.options import MAX_MASK_VALUE_CHARS, MAX_MASK_VALUES

__all__ = ["DOCUMENT_READ_LIMITS", "document_values"]

# Reading a mail's documents before drawing them: the outbound scan's limits, but a third of
# the render worker's 60 s per mail, so LibreOffice (twice office_wall_seconds) and drawing
# keep theirs; no OCR (the renderer reads the pictures it draws itself). Past it, a document
# is drawn with the detector's masking alone, as before.
DOCUMENT_READ_LIMITS: Final = ExtractLimits(max_seconds=10.0, ocr_languages="")


def document_values(
    documents: Iterable[tuple[str, bytes]],
    types: Set[str],
    limits: ExtractLimits = DOCUMENT_READ_LIMITS,
    clock: Callable[[], float] = time.monotonic,
    read_before: Mapping[tuple[str, str], Sequence[Found]] | None = None,
) -> tuple[tuple[PiiType, str], ...]:
    """(type, value) of every finding of ``types`` in the text of ``documents`` ((name,
    bytes) pairs), once each, in order, those a page break cuts included; at most
    MAX_MASK_VALUES, each a value ``RenderOptions.mask_values`` takes. A document
    ``read_before`` (by its name and the SHA-256 of its bytes: the receive filters' reading
    for their rules) is not read again."""
    budget = Budget(limits, clock)
    found: dict[tuple[PiiType, str], None] = {}
    for name, data in documents:
        for place in _reading(name, data, budget, read_before or {}):
            if isinstance(place, Location):  # an unreadable part keeps the detector's masking
                found.update(dict.fromkeys(_values(place.text, place.layout, types)))
    return tuple(found)[:MAX_MASK_VALUES]


def _reading(
    name: str, data: bytes, budget: Budget, read_before: Mapping[tuple[str, str], Sequence[Found]]
) -> Sequence[Found]:
    """What ``data`` holds: as read before, unless that reading was stopped for the whole
    mail (its time, its file count: this reading has its own), else read now."""
    before = read_before.get((name, hashlib.sha256(data).hexdigest())) if read_before else None
    again = before is None or any(
        isinstance(place, Unreadable) and place.reason in MAIL_WIDE_REASONS for place in before
    )
    return attachment_locations(name, data, budget) if again or before is None else before


def _values(text: str, layout: TextLayout, types: Set[str]) -> list[tuple[PiiType, str]]:
    found = ((finding.type, finding.text.strip()) for finding in _findings(text, layout, types))
    return [(kind, value) for kind, value in found
            if kind in types and value and len(value) <= MAX_MASK_VALUE_CHARS]  # fmt: skip


def _findings(text: str, layout: TextLayout, types: Set[str]) -> list[Finding]:
    """The findings of ``text``, and those a break between two of its pages (``layout``)
    cuts, read over the break (``mailsafe.render.masking.breaks``)."""
    found = detect(text)
    starts = [*layout.pages, len(text)]
    for before, start, end in zip(starts, starts[1:], starts[2:], strict=False):
        cut, _ = across_break(text[before:start], text[start:end], types)
        found += cut
    return found
