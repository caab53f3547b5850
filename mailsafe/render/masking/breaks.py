"""Findings a page break cuts in two: a value whose first characters end one page and whose
last begin the next (D105).

Pure: strings in, findings out. Each page of a document is masked on its own, and neither
half of a resident number broken over two pages is a finding there. The end of one page's
text and the start of the next, the whitespace between them left out, are searched together;
a finding that runs over the joint is a piece on each page: the characters before the joint
end the first page, those after it begin the second, each with its part of the masked form.
"""

from __future__ import annotations

from collections.abc import Set

from mailsafe.pii import Finding
from mailsafe.pii.pagebreaks import BREAK_WINDOW_CHARS
from mailsafe.pii.pagebreaks import across_break as _across
from mailsafe.render.masking.text import PLAIN_HIDING, Hiding, found_in

__all__ = ["BREAK_WINDOW_CHARS", "across_break", "cut_at_page_end", "cut_at_page_start"]


def across_break(
    before: str, after: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING
) -> tuple[list[Finding], int]:
    """The findings of ``types`` that run from the end of ``before`` (one page's text) into
    the start of ``after`` (the next page's), as :func:`mailsafe.pii.pagebreaks.across_break`
    finds them, each masked as ``hiding`` says."""
    return _across(before, after, lambda text: found_in(text, types, hiding=hiding))


def cut_at_page_start(
    page: str, before: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING
) -> list[Finding]:
    """The pieces that begin ``page`` (its text) of findings begun on the page ``before``
    it, as findings in ``page``."""
    found, joint = across_break(before, page, types, hiding=hiding)
    lead = len(page) - len(page.lstrip())
    return [_piece(page, f, lead, f.masked[joint - f.start :]) for f in found]


def cut_at_page_end(
    page: str, after: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING
) -> list[Finding]:
    """The pieces that end ``page`` (its text) of findings ended on the page ``after`` it,
    as findings in ``page``."""
    found, joint = across_break(page, after, types, hiding=hiding)
    kept = len(page.rstrip())
    return [_piece(page, f, kept - joint + f.start, f.masked[: joint - f.start]) for f in found]


def _piece(page: str, finding: Finding, start: int, masked: str) -> Finding:
    end = start + len(masked)
    return Finding(finding.type, start, end, page[start:end], masked, finding.confidence)
