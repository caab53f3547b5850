"""What a drawing shows of a value it cut short: the pieces of known values (D105).

Pure: strings in, findings out. A spreadsheet cell too narrow for its text, not wrapped,
is drawn cut at its border when the next cell is filled: LibreOffice puts only the characters
it shows into the page (``chulsoo.kim.sale`` of ``chulsoo.kim.sales@naver.com``,
``800101-1234`` of a resident number), where neither the detector nor the value's
characters (``mailsafe.positions.value_spans``) find anything. A *piece* is the start of a
value drawn at the start of a word, or its end drawn at the end of a word:

- at least ``MIN_VALUE_CHARS`` characters, and not the whole value (that is found whole);
- the value's masked form hides some of it (an address's domain alone is shown anyway);
- not an ordinary word: letters only, where the value's letters stop (``sales`` of
  ``sales@acme.com``, ``chulsoo`` of ``chulsoo.kim.sales@naver.com``);
- the drawn word stops there, or goes on with a character of another kind than the value's
  next one (``800101-1234영업부``: the next cell's text drawn against the cut one; a digit
  after the cut where the value goes on with a digit is another number).

Each piece is hidden as that part of its value's masked form (``800101-1***``).
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Final

from mailsafe.pii import Finding, PiiType, mask_value
from mailsafe.positions import MIN_VALUE_CHARS

__all__ = ["MAX_PIECE_VALUE_CHARS", "Piece", "ValuePieces", "piece_findings", "value_pieces"]

# A word as drawn: what stands between spaces and line breaks.
_WORD_RE: Final = re.compile(r"\S+")
# The longest value whose pieces are looked for: a long address is 40 characters; a value
# of n characters has 2n pieces, and a mail may pass 1,000 values of 512 (a million pieces,
# hundreds of MiB in the worker). A longer value is still hidden whole where it is drawn.
MAX_PIECE_VALUE_CHARS: Final = 80


@dataclass(frozen=True)
class Piece:
    """A start or an end of a value: its type, what of it the masked form shows, and the
    value's character beside it (after a start, before an end)."""

    kind: PiiType
    masked: str
    beside: str


@dataclass(frozen=True)
class ValuePieces:
    """The pieces of some values, by their characters: starts and ends apart."""

    starts: dict[str, Piece]
    ends: dict[str, Piece]
    longest: int
    # The first and the last MIN_VALUE_CHARS characters of every piece: most drawn words are
    # turned away by two lookups, not one per length.
    heads: frozenset[str] = frozenset()
    tails: frozenset[str] = frozenset()


@functools.lru_cache(maxsize=4)  # one mail's values, asked for on each of its pages
def value_pieces(values: tuple[tuple[PiiType, str], ...]) -> ValuePieces:
    """Every start and end of ``values`` that may be a piece (the module's first three
    rules)."""
    starts: dict[str, Piece] = {}
    ends: dict[str, Piece] = {}
    for kind, value in values:
        masked = mask_value(value, kind)
        if len(masked) != len(value) or len(value) > MAX_PIECE_VALUE_CHARS:
            continue  # a form that does not keep every character's place cannot be cut
        for size in range(MIN_VALUE_CHARS, len(value)):
            start, end = value[:size], value[-size:]
            if masked[:size] != start and not _ordinary_word(start, value[size]):
                starts.setdefault(start, Piece(kind, masked[:size], value[size]))
            if masked[-size:] != end and not _ordinary_word(end, value[-size - 1]):
                ends.setdefault(end, Piece(kind, masked[-size:], value[-size - 1]))
    longest = max(map(len, [*starts, *ends]), default=0)
    heads = frozenset(piece[:MIN_VALUE_CHARS] for piece in starts)
    tails = frozenset(piece[-MIN_VALUE_CHARS:] for piece in ends)
    return ValuePieces(starts, ends, longest, heads, tails)


def piece_findings(
    text: str, values: tuple[tuple[PiiType, str], ...], found: list[Finding]
) -> list[Finding]:
    """The pieces of ``values`` drawn in ``text`` where no finding is already, as findings."""
    pieces = value_pieces(values)
    placed: list[Finding] = []
    if not pieces.longest:
        return placed
    for word in _WORD_RE.finditer(text):
        piece = _word_piece(word.group(), pieces)
        if piece is not None:
            start = word.start() + piece[0]
            end = start + len(piece[1].masked)
            taken = [*found, *placed]
            if not any(f.start < end and start < f.end for f in taken):
                kind, masked = piece[1].kind, piece[1].masked
                placed.append(Finding(kind, start, end, text[start:end], masked, 1.0))
    return placed


def _word_piece(drawn: str, pieces: ValuePieces) -> tuple[int, Piece] | None:
    """The longest piece ``drawn`` (one word) starts or ends with: its offset in the word."""
    if drawn[:MIN_VALUE_CHARS] not in pieces.heads and drawn[-MIN_VALUE_CHARS:] not in pieces.tails:
        return None
    for size in range(min(len(drawn), pieces.longest), MIN_VALUE_CHARS - 1, -1):
        start = pieces.starts.get(drawn[:size])
        if start is not None and _stops_there(drawn[size : size + 1], start.beside):
            return 0, start
        end = pieces.ends.get(drawn[-size:])
        if end is not None and _stops_there(drawn[-size - 1 : -size], end.beside):
            return len(drawn) - size, end
    return None


def _stops_there(drawn_next: str, value_next: str) -> bool:
    """The drawn word ends where the piece does (``drawn_next`` empty), or goes on with a
    character of another kind than the value's: the next cell's text, not the same value."""
    return not drawn_next or _kind_of(drawn_next) != _kind_of(value_next)


def _kind_of(char: str) -> str:
    if char.isdigit():
        return "digit"
    if char.isalpha():
        return "latin" if char.isascii() else "letter"
    return "sign"


def _ordinary_word(piece: str, beside: str) -> bool:
    """``piece`` is letters only and the value's character ``beside`` it is none: it reads
    as a word of its own, not as a value cut short."""
    return piece.isalpha() and not beside.isalpha()
