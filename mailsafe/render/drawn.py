"""Text as the picture draws it: escaped for HTML, long unbroken runs made breakable, and the
backslash set in a font that draws a backslash.

Two defects of real mail (issue 18.4):

- A line with no blank in it (a long URL, a base64 blob, a path) is wider than the page; the
  layout cannot break it and the picture cut it at the right edge with no sign. Runs of
  ``LONG_RUN`` characters or more get a zero-width space every ``BREAK_EVERY`` characters: an
  invisible place where the line may wrap (MuPDF and Chromium both honour it). It goes only
  into the HTML that is drawn, never into the text layer or the text masking reads.
- Korean fonts (NanumGothic among them) draw U+005C as the won sign, so ``C:\\Users`` and
  ``\\\\server\\share`` were shown as ``C:₩Users``. Every backslash is wrapped in a span the style
  sheet sets in the fixed-width font (NanumGothicCoding draws a real backslash).
"""

from __future__ import annotations

import html
import re
from typing import Final

__all__ = ["BACKSLASH_CLASS", "BREAK_EVERY", "LONG_RUN", "drawn_html", "drawn_text"]

# A run this long without a blank cannot be a word a reader wants kept whole; 40 characters
# fit the narrowest column the header table leaves (half the page at 11 pt).
LONG_RUN: Final = 40
# How often a long run may wrap: short enough that a wrapped piece never overflows the page.
BREAK_EVERY: Final = 20
ZERO_WIDTH_SPACE: Final = "\u200b"
BACKSLASH_CLASS: Final = "mailsafe-bs"

# One drawn character of escaped HTML text: an entity (&amp;) counts as one, never split.
_CHARACTER: Final = r"(?:&#?\w{1,10};|[^\s<>&\u200b])"
_LONG_RUN: Final = re.compile(f"{_CHARACTER}{{{LONG_RUN},}}")
_ONE: Final = re.compile(_CHARACTER)
_BACKSLASHES: Final = re.compile(r"\\+")
# Markup and style sheets of our own sanitised HTML, which are not text to draw.
_NOT_TEXT: Final = re.compile(r"(<style\b.*?</style>|<[^>]*>)", re.DOTALL | re.IGNORECASE)


def drawn_text(text: str) -> str:
    """``text`` as HTML to draw: escaped, long runs breakable, backslashes in a real-backslash
    font."""
    return _drawn(html.escape(text, quote=False))


def drawn_html(safe_html: str) -> str:
    """Our sanitised HTML with its text drawn as :func:`drawn_text` draws text; tags,
    attributes and style sheets untouched."""
    pieces = _NOT_TEXT.split(safe_html)
    # split with one group: text at even indexes, markup at odd ones
    return "".join(piece if index % 2 else _drawn(piece) for index, piece in enumerate(pieces))


def _drawn(escaped: str) -> str:
    if not escaped:
        return escaped
    breakable = _LONG_RUN.sub(_with_breaks, escaped)
    return _BACKSLASHES.sub(
        lambda found: f'<span class="{BACKSLASH_CLASS}">{found.group()}</span>', breakable
    )


def _with_breaks(run: re.Match[str]) -> str:
    characters = _ONE.findall(run.group())
    pieces = [
        "".join(characters[start : start + BREAK_EVERY])
        for start in range(0, len(characters), BREAK_EVERY)
    ]
    return ZERO_WIDTH_SPACE.join(pieces)
