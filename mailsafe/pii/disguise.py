"""Numbers written to slip past the detectors, read as a person reads them (issue 19.5).

A person reads ``8 0 0 1 0 1 - 1 2 3 4 5 6 0``, ``800101/1234560``, ``800101--1234560``,
``x800101-1234560``, ``٨٠٠١٠١-١٢٣٤٥٦٠``, ``팔공공일공일-일이삼사오육공``, a number broken over two
lines, or its halves in two table cells, as the number. ``detect`` finds what the detectors
find in the text as written, then rewrites such writing into the form the detectors know (a
*view* of the text, every character of it mapped back to the character it came from) and
adds what they find there, at the place it was written. The rewriting is confined to chains
of digit groups: nothing outside a number changes, so context words read the same.

A chain is rewritten (docs/scanning-evasions.md):

- any decimal digit (Arabic-Indic, Devanagari, mathematical bold ...) becomes its ASCII digit,
  and a run of Sino-Korean digit words (공 영 일 이 삼 사 오 육 칠 팔 구) becomes digits;
- digits spaced one by one: the separator between single digits is dropped;
- a separator the detectors do not read (``/ _ ~ : |``, ``--``) becomes ``-``;
- a comma, a tab or a line break with no other separator is dropped (two cells, a wrapped
  line: the number reads bare, so it needs its check digit or a label); one with a separator
  beside it becomes ``-``; two line breaks end the chain (a new paragraph);
- a lone letter glued to either end of a long digit group becomes a space.
"""

from __future__ import annotations

import re
import sys
import unicodedata
from bisect import bisect_right, insort
from collections import Counter
from collections.abc import Iterator
from itertools import pairwise
from string import ascii_letters
from typing import Final, NamedTuple

from mailsafe.pii.detect import detect as detect_written
from mailsafe.pii.mask import mask_value
from mailsafe.pii.normalize import normalize
from mailsafe.pii.types import Finding

__all__ = ["detect", "disguised_findings"]

# Sino-Korean digit words, and the CJK digits, each one character: a view keeps its length.
_WORD_DIGITS: Final = {
    **dict.fromkeys("공영빵", "0"), "일": "1", "이": "2", "삼": "3", "사": "4", "오": "5",
    **dict.fromkeys("육륙", "6"), "칠": "7", "팔": "8", "구": "9",
    **{cjk: str(value) for value, cjk in enumerate("〇一二三四五六七八九")},
}  # fmt: skip
# A run of fewer digit words is ordinary Korean (이사, 일일이, 사이); four is a card's group.
MIN_WORD_DIGITS: Final = 4
_WORD_RUN_RE: Final = re.compile(f"[{''.join(_WORD_DIGITS)}]{{{MIN_WORD_DIGITS},}}")
# Every decimal digit outside ASCII (Arabic-Indic, Devanagari, mathematical ...), and a table
# turning them and the digit words into ASCII digits.
_OTHER_DIGITS: Final = [chr(c) for c in range(0x80, sys.maxunicode + 1) if chr(c).isdecimal()]
# (Full-width digits are left to the detectors' own normalising.)
_OTHER_DIGITS_RE: Final = re.compile(r"[^\D0-9\uff10-\uff19]+")


def _code_point_ranges(chars: list[str]) -> str:
    """``chars`` (sorted) as a character class body of ranges."""
    ranges: list[list[str]] = []
    for char in chars:
        if ranges and ord(char) == ord(ranges[-1][1]) + 1:
            ranges[-1][1] = char
        else:
            ranges.append([char, char])
    return "".join(f"{first}-{last}" for first, last in ranges)


_FULL_WIDTH_DIGITS: Final = frozenset(chr(0xFF10 + value) for value in range(10))
_BMP_DIGITS: Final = [c for c in _OTHER_DIGITS if c <= chr(0xFFFF) and c not in _FULL_WIDTH_DIGITS]
_BMP_DIGITS_RE: Final = re.compile(f"[{_code_point_ranges(_BMP_DIGITS)}]")
_ASTRAL_RE: Final = re.compile("[\U00010000-\U0010ffff]")
_ASTRAL_DIGITS_RE: Final = re.compile(
    f"[{_code_point_ranges([c for c in _OTHER_DIGITS if c > chr(0xFFFF)])}]"
)
_DIGIT_TABLE: Final = str.maketrans(
    {**{char: str(unicodedata.decimal(char)) for char in _OTHER_DIGITS}, **_WORD_DIGITS}
)
# What may stand between two digit groups of one number: separators people type, at most
# four characters (" -- ", "\t-"); line breaks are judged in code.
_SEPARATORS: Final = " \t/_~:,.\\-|·\r\n\u00a0\u3000"
# At least ten digits (every number-based kind has ten or more; a passport's letter and
# eight digits are never disguised this way), at most four separator characters between two.
_CHAIN_RE: Final = re.compile(rf"[0-9](?:[{re.escape(_SEPARATORS)}]{{0,4}}[0-9]){{9,}}")
# Separators the detectors read as they are (with single spaces around them allowed).
_READ_AS_WRITTEN_RE: Final = re.compile(r"[ ]?[-.][ ]?|[ ]{1,2}")
# Between two cells or two lines: one comma, tab or line break with white space around it.
_CELL_BREAK_RE: Final = re.compile(r"[ \u00a0\u3000]*(?:,|\t|\r?\n)[ \t\u00a0\u3000]*")
_ONLY_SPACES_RE: Final = re.compile(r"[ \u00a0\u3000]+")
# Digits spaced one by one: at least this many single-digit groups, and most of the groups.
_SINGLE_DIGIT_GROUPS: Final = 6
# A lone letter glued to a group this long ("x800101-..."): shorter groups are model numbers,
# versions and units (A4, v2, 3D), not numbers a person hides.
_GLUED_GROUP: Final = 6
_GLUED_RE: Final = re.compile(rf"(?:^|[^0-9A-Za-z])?[A-Za-z][0-9]{{{_GLUED_GROUP}}}")
_GLUED_END_RE: Final = re.compile(rf"[0-9]{{{_GLUED_GROUP}}}[A-Za-z](?:[^0-9A-Za-z]|$)?")
# Places a disguise may be, looked for in the text's shape: its ASCII bytes with every
# digit "0", every letter "a", the separators the detectors do not read "!", anything else
# outside ASCII "?" (one byte per character, so positions are kept). A separator the
# detectors do not read before a group of three digits or more (a time's "16:09", a date's
# "12/27" and a thousands comma are left alone); a line break between digits; digits spaced
# one by one. The pattern starts with a literal,
# which the engine skips ahead to; the look-ahead turns away a digit followed by a digit.
_SHAPE: Final = bytes.maketrans(
    ascii_letters.encode() + b"0123456789" + b"\t/_~:|\\",
    b"a" * len(ascii_letters) + b"0" * 10 + b"!" * 7,
)
# After a separator the detectors do not read: three digits or more when three stood before
# it, else six (so "16:09", "12/27" and "14 ~ 2031" are no spots).
_ODD_AFTER: Final = rb"(?: ?-? ?000000|(?<=000.) ?-? ?000|(?<=000 .) ?-? ?000)"
_LINE_BREAK: Final = rb"\r?\n[ \t]?-? ?0"
# Every branch starts with a literal, which the engine tests before entering it: a branch
# starting with an optional space made this pass half again as slow. What follows the digit is
# only looked at, not taken: a spot's tail may hold the next spot ("010-1111-2222<tab>850315
# <tab>2345129": the phone's spot is inside a finding, the halves' is the next).
_SPOT_SHAPE_RE: Final = re.compile(
    rb"0(?="
    rb"!(?:" + _ODD_AFTER[3:-1] + rb"|0!0!0(?!0))"
    rb"|,(?:(?!000(?!0))" + _ODD_AFTER + rb"|0,0,0(?!0))"
    rb"|-(?:-" + _ODD_AFTER + rb"| ?" + _LINE_BREAK + rb"|0-0-0(?!0))"
    rb"| (?:[!,]"
    + _ODD_AFTER
    + rb"|--"
    + _ODD_AFTER
    + rb"|-? ?"
    + _LINE_BREAK
    + rb"|0 0 0(?!0)| 0  0  0(?!0))"
    rb"|" + _LINE_BREAK + rb"|\.0\.0\.0(?!0)"
    rb"|a(?![0a])(?<=000000a))"  # a letter glued after six digits
)
# A letter glued before six digits: found from the letter (rarer than digits in a shape).
_GLUED_BEFORE_SHAPE_RE: Final = re.compile(rb"a000000(?<![0a]a000000)")
_ALPHANUMERIC: Final = frozenset(ascii_letters + "0123456789")
# Characters in the shortest number the detectors know (ten digits; a passport's nine aside).
_SHORTEST_NUMBER: Final = 10
_ASCII_DIGIT_RE: Final = re.compile("[0-9]")
# Digits in the longest number the detectors know (a 19-digit card).
_LONGEST_NUMBER: Final = 19
# How far from a spot its chain is looked for (a number spaced out is some forty characters).
_SPOT_REACH: Final = 64
# Characters of context kept on each side of a rewritten chain when it is read again.
CONTEXT_CHARS: Final = 64
_NON_DIGITS_RE: Final = re.compile(r"[^0-9]+")
_GROUPS_RE: Final = re.compile(r"([^0-9]+)")


class _Rewrite(NamedTuple):
    """A rewritten chain: the original span, and its view with each character's origin."""

    start: int
    end: int
    view: str
    origins: tuple[int, ...]


def detect(text: str) -> list[Finding]:
    """Findings in ``text`` as written, and those a disguise hid (see the module's doc)."""
    written = detect_written(text)
    disguised = disguised_findings(text, written)
    if not disguised:
        return written
    return sorted([*written, *disguised], key=lambda finding: finding.start)


def disguised_findings(text: str, written: list[Finding]) -> list[Finding]:
    """Findings only the rewritten ``text`` shows, not overlapping ``written``."""
    if len(text) < _SHORTEST_NUMBER or (text.isascii() and _ASCII_DIGIT_RE.search(text) is None):
        return []  # most places (headers, names, short lines) end here, at once
    digits, spots = _spots(text)
    if not spots:
        return []
    found: list[Finding] = []
    taken = [(finding.start, finding.end) for finding in written]
    for rewrite in _rewrites(text, digits, spots, list(taken)):
        for finding in _read_rewrite(text, digits, rewrite):
            if not _overlaps(finding, taken):
                found.append(finding)
                insort(taken, (finding.start, finding.end))
    return found


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit and every run of digit words as ASCII digits (same
    length; the text itself when it is ASCII)."""
    ascii_text = _OTHER_DIGITS_RE.sub(_as_ascii, text)
    return _WORD_RUN_RE.sub(_as_ascii, ascii_text)


def _as_ascii(run: re.Match[str]) -> str:
    return run.group().translate(_DIGIT_TABLE)


def _rewrites(
    text: str, digits: str, spots: list[int], taken: list[tuple[int, int]]
) -> Iterator[_Rewrite]:
    """The chains of ``digits`` a disguise hid from the detectors, rewritten (a spot inside a
    finding already made, as a table's tab after a number, is none)."""
    for start, end in _disguised_chains(digits, spots, taken):
        around = slice(max(start - 1, 0), end + 1)
        for paragraph_start, paragraph_end in _paragraphs(digits, start, end):
            for piece in _outside_findings(digits, paragraph_start, paragraph_end, taken):
                for first, last in (piece, *_halves_in_cells(digits, *piece)):
                    rewrite = _rewrite(digits, first, last)
                    if rewrite.view != text[first:last] or text[around] != digits[around]:
                        yield rewrite


# A registration number's halves in two cells: six digits, then a gender digit and six more.
_FIRST_HALF_CELL_RE: Final = re.compile(r"[0-9]{6}")
_SECOND_HALF_CELL_RE: Final = re.compile(r"[1-8][0-9]{6}")


def _halves_in_cells(digits: str, start: int, end: int) -> list[tuple[int, int]]:
    """Two neighbouring cells of a chain of three or more that hold a registration number's
    halves ("1<tab>850315<tab>2345129": a row number before them). The whole chain joins into
    one run no number is read in; these two are read on their own too."""
    breaks = list(_CELL_BREAK_RE.finditer(digits, start, end))
    if len(breaks) < 2:
        return []  # one or two cells: the whole chain is the pair
    bounds = [start, *(edge for cut in breaks for edge in cut.span()), end]
    cells = list(zip(bounds[::2], bounds[1::2], strict=True))
    return [
        (first[0], second[1])
        for first, second in pairwise(cells)
        if _FIRST_HALF_CELL_RE.fullmatch(digits, *first)
        and _SECOND_HALF_CELL_RE.fullmatch(digits, *second)
    ]


def _outside_findings(
    digits: str, start: int, end: int, taken: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """The stretches of the chain no finding already made covers, from a digit to a digit:
    a number found as written is no part of another ("김민수<tab>850315<tab>2345129<tab>
    010-1111-2222": the halves are one number, the phone after them another)."""
    index = bisect_right(taken, (start, start))  # taken is sorted and does not overlap
    if index and taken[index - 1][1] > start:
        index -= 1
    inside = []
    while index < len(taken) and taken[index][0] < end:
        inside.append(taken[index])
        index += 1
    if not inside:
        yield start, end
        return
    position = start
    for found_start, found_end in inside:
        yield from _digit_to_digit(digits, position, found_start)
        position = found_end
    yield from _digit_to_digit(digits, position, end)


def _digit_to_digit(digits: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """``digits[start:end]`` without separators at its ends, when it holds a number's digits."""
    piece = digits[start:end]
    stripped = piece.strip(_SEPARATORS)
    if len(_NON_DIGITS_RE.sub("", stripped)) >= _SHORTEST_NUMBER:
        first = start + len(piece) - len(piece.lstrip(_SEPARATORS))
        yield first, first + len(stripped)


def _disguised_chains(
    digits: str, spots: list[int], taken: list[tuple[int, int]]
) -> Iterator[tuple[int, int]]:
    """Each chain holding a disguise once, widened over a glued letter. Only the places a
    disguise may be are looked at (a handful in most texts): going through every chain of
    a spreadsheet would make reading four times slower."""
    end = 0
    starts = [first for first, _ in taken]  # findings are sorted and do not overlap
    for spot in spots:
        if spot < end or _inside(spot, taken, starts) or _after_long_run(digits, spot):
            continue
        lowest = max(spot - _SPOT_REACH, end)
        for chain in _CHAIN_RE.finditer(digits, lowest, min(spot + _SPOT_REACH, len(digits))):
            if chain.end() < spot:
                continue
            if chain.start() <= spot + 1:
                start = _unglued_start(digits, chain.start())
                end = _unglued_end(digits, chain.end())
                if not _in_a_word(digits, start, end):
                    yield start, end
            break


def _overlaps(finding: Finding, taken: list[tuple[int, int]]) -> bool:
    index = bisect_right(taken, (finding.start, finding.end))
    before = taken[index - 1] if index else None
    after = taken[index] if index < len(taken) else None
    return (before is not None and before[1] > finding.start) or (
        after is not None and after[0] < finding.end
    )


def _after_long_run(digits: str, spot: int) -> bool:
    """True when the digit at ``spot`` ends a run longer than any number (a block of digits
    wrapped over lines, a hash): no number continues it past a separator."""
    run = digits[max(spot - _LONGEST_NUMBER, 0) : spot + 1]
    return len(run) > _LONGEST_NUMBER and run.isdigit()


def _inside(position: int, taken: list[tuple[int, int]], starts: list[int]) -> bool:
    index = bisect_right(starts, position) - 1
    return index >= 0 and position < taken[index][1]


def _spots(text: str) -> tuple[str, list[int]]:
    """(``text`` with its digits in ASCII, where a disguise may be in it). A glued letter's
    spot is the digit beside it."""
    digits = text
    if not text.isascii() and _other_digits(text):
        digits = _ascii_digits(text)  # another script's digits or digit words: rarely
    shape = digits.encode("ascii", "replace").translate(_SHAPE)
    spots = [match.start() for match in _SPOT_SHAPE_RE.finditer(shape)]
    spots += [match.start() + 1 for match in _GLUED_BEFORE_SHAPE_RE.finditer(shape)]
    if digits is not text:
        spots += [match.start() for match in _OTHER_DIGITS_RE.finditer(text)]
        spots += [match.start() for match in _WORD_RUN_RE.finditer(text)]
    return digits, sorted(spots)


def _in_a_word(digits: str, start: int, end: int) -> bool:
    """True when the chain is glued to letters or digits (a hex dump wrapped over lines, a
    code): the detectors read no number there, however it is rewritten."""
    return (start > 0 and digits[start - 1] in _ALPHANUMERIC) or (
        end < len(digits) and digits[end] in _ALPHANUMERIC
    )


def _other_digits(text: str) -> bool:
    """True when ``text`` holds a digit of another script or a run of digit words. Tested
    as ranges of code points (far faster than a Unicode category test), the few digits
    outside the Basic Multilingual Plane only when the text has any character there."""
    if _BMP_DIGITS_RE.search(text) or _WORD_RUN_RE.search(text):
        return True
    return _ASTRAL_RE.search(text) is not None and _ASTRAL_DIGITS_RE.search(text) is not None


def _unglued_start(digits: str, start: int) -> int:
    """``start`` moved back over a lone letter glued to a long digit group."""
    glued = start and _GLUED_RE.fullmatch(digits, max(start - 2, 0), start + _GLUED_GROUP)
    return start - 1 if glued else start


def _unglued_end(digits: str, end: int) -> int:
    glued = end < len(digits) and _GLUED_END_RE.fullmatch(digits, end - _GLUED_GROUP, end + 2)
    return end + 1 if glued else end


def _paragraphs(digits: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    """The chain split where a separator holds two line breaks (a new paragraph)."""
    position = start
    for match in _NON_DIGITS_RE.finditer(digits, start, end):
        if match.group().count("\n") > 1:
            yield position, match.start()
            position = match.end()
    yield position, end


def _rewrite(digits: str, start: int, end: int) -> _Rewrite:
    """The chain at ``digits[start:end]`` in the form the detectors read."""
    pieces = _GROUPS_RE.split(digits[start:end])
    groups, separators = pieces[::2], pieces[1::2]
    singles = sum(len(group) == 1 for group in groups)
    spaced_out = singles >= _SINGLE_DIGIT_GROUPS and singles * 2 > len(groups)
    spacing = Counter(separators).most_common(1)[0][0] if spaced_out else None
    view: list[str] = []
    origins: list[int] = []
    position = start
    for index, group in enumerate(groups):
        view.append(group)
        origins.extend(range(position, position + len(group)))
        position += len(group)
        if index < len(separators):
            separator = separators[index]
            replacement = "" if separator == spacing else _separator_as_read(separator)
            replacement = " " if separator.isalpha() else replacement  # a glued letter
            view.append(replacement)
            origins.extend([position] * len(replacement))
            position += len(separator)
    return _Rewrite(start, end, "".join(view), tuple(origins))


def _separator_as_read(separator: str) -> str:
    """A separator as the detectors read it: a hyphen; or nothing between two cells or two
    lines (a comma, a tab, a line break with nothing else), so the digits read as a bare
    number, which needs its check digit or a label: a CSV row "240101,1500000" (a date and
    an amount) is no resident number, "800101,1234560" with its check digit is."""
    if _READ_AS_WRITTEN_RE.fullmatch(separator):
        return separator
    if _CELL_BREAK_RE.fullmatch(separator):
        return ""
    return " " if _ONLY_SPACES_RE.fullmatch(separator) else "-"


def _read_rewrite(text: str, digits: str, rewrite: _Rewrite) -> Iterator[Finding]:
    """What the detectors find in the rewritten chain with its context, placed in ``text``."""
    before = max(rewrite.start - CONTEXT_CHARS, 0)
    after = min(rewrite.end + CONTEXT_CHARS, len(digits))
    window = digits[before : rewrite.start] + rewrite.view + digits[rewrite.end : after]
    offset = rewrite.start - before
    for finding in detect_written(window):
        first, last = finding.start - offset, finding.end - 1 - offset
        if last < 0 or first >= len(rewrite.view):
            continue  # wholly in the context: the text as written has it (or not) already
        start = _origin(rewrite, first, before)
        end = _origin(rewrite, last, before) + 1
        value = text[start:end]
        plain = normalize(digits[start:end])
        masked = mask_value(value, finding.type, plain)
        yield Finding(finding.type, start, end, value, masked, finding.confidence)


def _origin(rewrite: _Rewrite, index: int, before: int) -> int:
    """Where the character at ``index`` of the view (negative or past it: the context)
    came from in the text."""
    if index < 0:
        return rewrite.start + index
    if index >= len(rewrite.view):
        return rewrite.end + index - len(rewrite.view)
    return rewrite.origins[index]
