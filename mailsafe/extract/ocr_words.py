"""One OCR reading of a picture with its words' boxes, read back: what both directions search.

The outbound scan (positions of its findings, ``mailsafe.positions``) and the renderer's
masking (the boxes it paints, ``mailsafe.render.masking``) read a picture the same way
(``mailsafe.extract.ocr``): Tesseract's text, each word of the same run's TSV placed in it,
a passport number's letter looked at again in its word's pixels (in place), and then the
read-back's repaired lines (``ocr_reading.read_back``) that find what the reading does not,
after it. A finding in such a line is in the picture where the words of the line it was
read from are: each of those words is placed again in the repaired line, at the characters
it became (a space joined away, a letter given back), or over the whole line for a passport
zone's line read back whole. So a number only the read-back makes (a passport zone, a
passport number under its label, digits OCR spaced out) has boxes, in either direction.

Pure: no Tesseract, no pixels; the words' boxes are carried, not looked at.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import Final

from mailsafe.extract.ocr_reading import ReadBackLine, read_back_lines
from mailsafe.pii import detect
from mailsafe.positions import PlacedWord

__all__ = ["WordReading", "lines_with_new_findings", "read_back_placed"]


@dataclass(frozen=True)
class WordReading:
    """The text read from one picture and its words, each placed in it with its box (in the
    pixels of the picture they were read from). A word may be placed more than once: in the
    reading, and in a repaired line read from its line."""

    text: str
    words: tuple[PlacedWord, ...]

    def scaled(self, scale: float) -> WordReading:
        """The same reading with every box multiplied by ``scale`` (outward: floor, ceil)."""
        if scale == 1.0:
            return self
        return WordReading(self.text, tuple(
            PlacedWord(word.start, word.end, (
                math.floor(word.box[0] * scale), math.floor(word.box[1] * scale),
                math.ceil(word.box[2] * scale), math.ceil(word.box[3] * scale)))
            for word in self.words
        ))  # fmt: skip


def lines_with_new_findings(text: str, another: str) -> list[int]:
    """The indexes of the lines of ``another`` reading of the same picture on which personal
    data is found that ``text`` does not hold (compared by letters and digits)."""
    known = {_key(finding.text) for finding in detect(text)}
    starts = list(accumulate((len(line) + 1 for line in another.split("\n")), initial=0))
    return sorted(
        {bisect_right(starts, finding.start) - 1 for finding in detect(another)
         if _key(finding.text) not in known}
    )  # fmt: skip


def _key(value: str) -> str:
    return "".join(char for char in value if char.isalnum())


def read_back_placed(text: str, words: Sequence[PlacedWord]) -> WordReading:
    """``text``, one reading whose ``words`` are placed in it, with the read-back's lines that
    find what it does not after it, and the words of each such line's source placed in it."""
    lines = read_back_lines(text)
    repaired = "\n".join(line.text for line in lines)
    if repaired == text:
        return WordReading(text, tuple(words))
    wanted = lines_with_new_findings(text, repaired)
    if not wanted:
        return WordReading(text, tuple(words))
    source_lines = text.split("\n")
    source_starts = list(accumulate((len(line) + 1 for line in source_lines), initial=0))
    parts, placed, length = [text], list(words), len(text)
    for index in wanted:
        line = lines[index]
        length += 1  # the newline before it
        start = source_starts[line.source]
        source = source_lines[line.source]
        own = [w for w in words if start <= w.start and w.end <= start + len(source)]
        placed += _placed_again(line, source, [(w.start - start, w.end - start, w) for w in own],
                                length)  # fmt: skip
        parts.append(line.text)
        length += len(line.text)
    return WordReading("\n".join(parts), tuple(placed))


def _placed_again(
    line: ReadBackLine, source: str, own: list[tuple[int, int, PlacedWord]], offset: int
) -> list[PlacedWord]:
    """The words of ``source`` (their characters in it, ``own``) placed in ``line``, which
    starts at ``offset`` of the reading: where their characters went, for a line repaired in
    place; over the whole line, for a zone's line read back whole."""
    if not line.repaired:
        return [PlacedWord(offset, offset + len(line.text), word.box) for _, _, word in own]
    moved = _moved(source, line.text)
    again = []
    for start, end, word in own:
        first, last = moved[start], moved[end]
        if first < last:
            again.append(PlacedWord(offset + first, offset + last, word.box))
    return again


def _moved(source: str, repaired: str) -> list[int]:
    """For each character of ``source`` (and its end), where it is in ``repaired``. The
    read-back's repairs delete spaces (joined digits, tokens, addresses), insert spaces and
    dashes (a licence's groups, a hyphen's spaces) and change characters one for one (a
    passport's letter): walked side by side, a space of ``source`` that is not there is gone,
    spaces and dashes of ``repaired`` before the character are put in, and a character that
    differs otherwise is the one it became."""
    moved = [len(repaired)] * (len(source) + 1)
    at = 0
    for position, char in enumerate(source):
        after = at
        while after < len(repaired) and repaired[after] in _PUT_IN and repaired[after] != char:
            after += 1
        if after < len(repaired) and repaired[after] == char:
            at = after  # what was put in before it is skipped
        moved[position] = min(at, len(repaired))
        if at < len(repaired) and (repaired[at] == char or char != " "):
            at += 1  # the same character, or the one it became; a space gone stays put
    return moved


# What a repair puts into a line (a licence's separating space, an armour line's dashes).
_PUT_IN: Final = " -"
