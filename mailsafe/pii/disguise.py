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
- a separator the detectors do not read (``/ _ ~ : , |``, a tab, ``--``) becomes ``-``;
- a line break with no other separator is dropped (the line was wrapped), one with a
  separator beside it becomes ``-``; two line breaks end the chain (a new paragraph);
- a lone letter glued to either end of a long digit group becomes a space.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Iterator
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
# What may stand between two digit groups of one number: separators people type, at most
# four characters (" -- ", "\t-"); line breaks are judged in code.
_SEPARATORS: Final = " \t/_~:,.\\-|·\r\n\u00a0\u3000"
_CHAIN_RE: Final = re.compile(rf"[0-9]+(?:[{re.escape(_SEPARATORS)}]{{1,4}}[0-9]+)*")
# Separators the detectors read as they are (with single spaces around them allowed).
_READ_AS_WRITTEN_RE: Final = re.compile(r"[ ]?[-.][ ]?|[ ]{1,2}")
_SPACES_RE: Final = re.compile(r"[ \t\u00a0\u3000\r]*")
_ONLY_SPACES_RE: Final = re.compile(r"[ \u00a0\u3000]+")
# Digits spaced one by one: at least this many single-digit groups, and most of the groups.
_SINGLE_DIGIT_GROUPS: Final = 6
# A lone letter glued to a group this long ("x800101-..."): shorter groups are model numbers,
# versions and units (A4, v2, 3D), not numbers a person hides.
_GLUED_GROUP: Final = 6
_GLUED_BEFORE_RE: Final = re.compile(r"(?<![0-9A-Za-z])[A-Za-z](?=[0-9]{6})")
_GLUED_AFTER_RE: Final = re.compile(r"(?<=[0-9]{6})[A-Za-z](?![0-9A-Za-z])")
# Characters of context kept on each side of a rewritten chain when it is read again.
CONTEXT_CHARS: Final = 64
_POSSIBLE_RE: Final = re.compile(r"[0-9][^A-Za-z]?[0-9]|[^\x00-\x7f]")
# The shortest number the detectors know, separators counted ("M12345678" aside).
MIN_NUMBER_CHARS: Final = 10
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
    if _POSSIBLE_RE.search(text) is None:
        return []
    digits = _ascii_digits(text)
    found: list[Finding] = []
    taken = [(finding.start, finding.end) for finding in written]
    for rewrite in _rewrites(text, digits):
        for finding in _read_rewrite(text, digits, rewrite):
            if all(finding.end <= start or finding.start >= end for start, end in taken):
                found.append(finding)
                taken.append((finding.start, finding.end))
    return found


def _ascii_digits(text: str) -> str:
    """``text`` with every decimal digit and every run of digit words as ASCII digits, and
    lone letters glued to long digit groups as spaces (same length)."""
    if not text.isascii():
        text = "".join(_ascii_digit(char) for char in text)
        text = _WORD_RUN_RE.sub(lambda run: run.group().translate(_WORD_TABLE), text)
    text = _GLUED_BEFORE_RE.sub(" ", text)
    return _GLUED_AFTER_RE.sub(" ", text)


_WORD_TABLE: Final = str.maketrans(_WORD_DIGITS)


def _ascii_digit(char: str) -> str:
    if char.isascii() or not char.isdecimal():
        return char
    return str(unicodedata.decimal(char))


def _rewrites(text: str, digits: str) -> Iterator[_Rewrite]:
    """The chains of ``digits`` a disguise hid from the detectors, rewritten."""
    for chain in _CHAIN_RE.finditer(digits):
        for start, end in _paragraphs(digits, chain.start(), chain.end()):
            if end - start < MIN_NUMBER_CHARS:
                continue
            rewrite = _rewrite(digits, start, end)
            around = slice(max(start - 1, 0), end + 1)
            if rewrite.view != text[start:end] or text[around] != digits[around]:
                yield rewrite


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
            view.append(replacement)
            origins.extend([position] * len(replacement))
            position += len(separator)
    return _Rewrite(start, end, "".join(view), tuple(origins))


def _separator_as_read(separator: str) -> str:
    if _READ_AS_WRITTEN_RE.fullmatch(separator):
        return separator
    if "\n" in separator:
        return "" if _SPACES_RE.fullmatch(separator.replace("\n", "")) else "-"
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
