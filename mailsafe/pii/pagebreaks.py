"""Findings a page break cuts in two: a value whose first characters end one page and whose
last begin the next (D105, D106).

Pure: strings in, findings out. Each page's text ends and the next one's begins with
whitespace (a blank line where pages are joined), and no detector bridges that: neither half
of a resident number broken over two pages is a finding. The end of one page and the start of
the next, the whitespace between them left out, are searched together; a finding that runs
over the joint is one cut by the break. Inbound masking hides its piece on each page
(:mod:`mailsafe.render.masking.breaks`); the outbound scan counts it in the paged text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Final

from mailsafe.pii.disguise import detect  # the public detect: the disguise pass included
from mailsafe.pii.types import Finding

__all__ = ["BREAK_WINDOW_CHARS", "across_break", "across_page_breaks", "detect_paged"]

# Characters each side of a page break searched together: more than the longest value of
# a kind we look for that is not a key (an address), with its label before it.
BREAK_WINDOW_CHARS: Final = 120

Find = Callable[[str], Sequence[Finding]]


def across_break(before: str, after: str, find: Find) -> tuple[list[Finding], int]:
    """The findings of ``find`` that run from the end of ``before`` (one page's text) into
    the start of ``after`` (the next page's), in the two joined without the whitespace
    between them; and where the joint is in that joined text."""
    end = before.rstrip()[-BREAK_WINDOW_CHARS:]
    start = after.lstrip()[:BREAK_WINDOW_CHARS]
    if not end or not start:
        return [], len(end)
    joint = len(end)
    return [f for f in find(end + start) if f.start < joint < f.end], joint


def across_page_breaks(text: str, pages: Sequence[int], find: Find) -> list[Finding]:
    """The findings cut by a page break in ``text``, whose pages start at the offsets
    ``pages``, as findings in ``text`` (their span takes in the whitespace at the break;
    their ``text`` and ``masked`` are the value as read across it)."""
    found: list[Finding] = []
    bounds = [*pages, len(text)]
    for first, joint_at, last in zip(bounds, bounds[1:], bounds[2:], strict=False):
        before, after = text[first:joint_at], text[joint_at:last]
        cut, joint = across_break(before, after, find)
        if not cut:
            continue
        window_start = first + len(before.rstrip()) - joint
        lead = len(after) - len(after.lstrip())
        for finding in cut:
            start = window_start + finding.start
            end = joint_at + lead + (finding.end - joint)
            found.append(
                Finding(finding.type, start, end, finding.text, finding.masked, finding.confidence)
            )
    return found


def detect_paged(text: str, pages: Sequence[int]) -> list[Finding]:
    """``detect`` of a paged text (its pages start at ``pages``), with the findings its page
    breaks cut, in order."""
    found = detect(text)
    if len(pages) < 2:  # a break needs two pages
        return found
    return sorted([*found, *across_page_breaks(text, pages, detect)], key=lambda f: f.start)
