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

import time
from collections.abc import Callable, Iterable, Set
from typing import Final

from mailsafe.extract.attachments import attachment_locations
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.types import Location
from mailsafe.pii import PiiType, detect
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
) -> tuple[tuple[PiiType, str], ...]:
    """(type, value) of every finding of ``types`` in the text of ``documents`` ((name,
    bytes) pairs), once each, in order; at most MAX_MASK_VALUES, each a value
    ``RenderOptions.mask_values`` takes."""
    budget = Budget(limits, clock)
    found: dict[tuple[PiiType, str], None] = {}
    for name, data in documents:
        for place in attachment_locations(name, data, budget):
            if isinstance(place, Location):  # an unreadable part keeps the detector's masking
                found.update(dict.fromkeys(_values(place.text, types)))
    return tuple(found)[:MAX_MASK_VALUES]


def _values(text: str, types: Set[str]) -> list[tuple[PiiType, str]]:
    found = ((finding.type, finding.text.strip()) for finding in detect(text))
    return [(kind, value) for kind, value in found
            if kind in types and value and len(value) <= MAX_MASK_VALUE_CHARS]  # fmt: skip
