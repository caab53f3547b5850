"""Length-preserving normalisation: full-width digits and letters, odd dashes and spaces.

Every character maps to exactly one character, so a position in the normalised text is the
same position in the original: findings point at the text as the sender wrote it.
"""

from __future__ import annotations

import re
from typing import Final

_FULLWIDTH_DIGITS = {0xFF10 + i: ord("0") + i for i in range(10)}
_FULLWIDTH_UPPER = {0xFF21 + i: ord("A") + i for i in range(26)}
_FULLWIDTH_LOWER = {0xFF41 + i: ord("a") + i for i in range(26)}
# Hyphen look-alikes people (and word processors) put between digit groups.
_DASHES = {
    cp: ord("-")
    for cp in (
        0x00AD, 0x2010, 0x2011, 0x2012, 0x2013, 0x2014, 0x2015, 0x2043, 0x2212,
        0x30FC, 0xFE58, 0xFE63, 0xFF0D, 0x2500, 0x3161,
    )
}  # fmt: skip
# Spaces of every width, and zero-width characters used to split numbers past filters.
# (Not tabs: a tab separates table cells, and two cells are not one number.)
_SPACES = {
    cp: ord(" ")
    for cp in (
        0x00A0, 0x2000, 0x2001, 0x2002, 0x2003, 0x2004, 0x2005, 0x2006, 0x2007, 0x2008,
        0x2009, 0x200A, 0x200B, 0x200C, 0x200D, 0x2060, 0x202F, 0x205F, 0x3000, 0xFEFF,
    )
}  # fmt: skip
_DOTS = {0xFF0E: ord("."), 0x3002: ord("."), 0x00B7: ord(".")}
# Full-width brackets around an area code: "（02）1234-5678".
_BRACKETS = {0xFF08: ord("("), 0xFF09: ord(")")}

TRANSLATION: Final[dict[int, int]] = {
    **_FULLWIDTH_DIGITS,
    **_FULLWIDTH_UPPER,
    **_FULLWIDTH_LOWER,
    **_DASHES,
    **_SPACES,
    **_DOTS,
    **_BRACKETS,
}


_LOOKALIKE: Final = "[" + "".join(re.escape(chr(cp)) for cp in TRANSLATION) + "]"
# Any character the table changes; most text has none, and searching is faster than translating.
_LOOKALIKE_RE: Final = re.compile(_LOOKALIKE)
# A run of them ("４９１４－５１７" is one), translated in one call. Not "[...]+": a pattern that
# starts with a repeat gets no first-character test, so every position would be tried.
_LOOKALIKE_RUN_RE: Final = re.compile(_LOOKALIKE + _LOOKALIKE + "*")


def normalize(text: str) -> str:
    """Return ``text`` with look-alike characters replaced one for one (same length)."""
    # Every look-alike is outside ASCII, and isascii() costs nothing (str keeps the flag).
    if text.isascii() or _LOOKALIKE_RE.search(text) is None:
        return text
    # Replacing only what differs beats translating every character of a long text.
    return _LOOKALIKE_RUN_RE.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    return match.group().translate(TRANSLATION)
