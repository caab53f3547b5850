"""A resident or foreigner registration number written as its two halves with words between:
"생년월일 870722 주민 뒷자리 1234567", "앞자리 900101 / 뒷자리 2345678", "주민번호(앞): 760830⏎
주민번호(뒤): 2918450", "생년월일: 1969-04-12 / 주민번호 뒷자리: 1573015" (issue 19, fourth round).

People send the halves apart when a form asks for them apart, or to get past a filter that
looks for the number in one piece. A person reads the two as one number when a word between
them names a half (앞자리, 뒷자리, 뒤, back, last ...) or the number (주민, 외국인등록번호 ...),
the first is a real birth date in the century the second's gender digit names, and nothing
between them labels another kind of number ("주문일 240315 주문번호 3234567": an order's).

The finding runs from the first half's first digit to the second half's last, words between
included: that is what must be hidden (``870722 주민 뒷자리 1******``). A birth date written
in full (``1969-04-12``, ``1990.01.01``, ``19690412``) is a first half too; its century must be
the gender digit's.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

from mailsafe.pii.checks import (
    CENTURY_OF_GENDER_DIGIT,
    FOREIGNER_GENDER_DIGITS,
    born_after_check_digits_ended,
    is_valid_birth_date,
    registration_check_digit_ok,
)
from mailsafe.pii.context import ContextIndex, labels_in
from mailsafe.pii.detectors import CHECK_DIGIT_BONUS, CONTEXT_BONUS, Candidate, Regions
from mailsafe.pii.types import PiiType

# Both halves with a word between are as sure as the hyphenated form (the words are checked).
RRN_HALVES: Final = 0.6
# At most this many characters between the halves: "/ 주민번호 뒷자리: ", "이고 뒷자리는 ",
# a line break and the next line's label.
BETWEEN_CHARS: Final = 40
# The longest first half: a birth date written in full, "1969. 04. 12.".
_LONGEST_FRONT: Final = 14
# Words that name a half of the number, or the number: "앞" and "뒤" alone only as words of
# their own ("뒤로", "앞으로" are no halves); "뒤 7자리" and "first 6" carry a half's length.
_HALF_WORD_RE: Final = re.compile(
    r"[앞뒷]자리|[앞뒷]번호|[앞뒷]부분|(?<![가-힣])[앞뒤](?![가-힣])|(?<![가-힣])뒤[ ]?7[ ]?자리"
    r"|(?<![가-힣])앞[ ]?6[ ]?자리|주민(?!센터|자치|회|들)|외국인"
    # English half words only with a half's length or name: "last updated" is no half.
    r"|(?i:(?<![a-z])(?:first|front)[ ]?(?:6|six|half|part|digits)"
    r"|(?<![a-z])(?:last|back|second)[ ]?(?:7|seven|half|part|digits))"
)
# The words above as the text must hold them for the halves to be looked for at all.
_HINT_WORDS: Final = (
    "앞", "뒤", "뒷", "주민", "외국인", "first", "last", "front", "back", "second",
)  # fmt: skip


def _hint_pattern(words: tuple[str, ...]) -> re.Pattern[str]:
    """Any of ``words``, ASCII letters in either case, each alternative led by a literal: the
    engine then skips ahead to the first characters alone (an ``(?i:...)`` group made it test
    every position: a tenth of the detector's time on the labelled set, now a hundredth)."""
    alternatives: list[str] = []
    for word in words:
        rest = "".join(f"[{c.upper()}{c}]" if c.isascii() else c for c in word[1:])
        alternatives += dict.fromkeys((word[0].upper() + rest, word[0] + rest))
    return re.compile("|".join(alternatives))


_HINT_RE: Final = _hint_pattern(_HINT_WORDS)
# The second half: a gender digit and six digits standing alone (Korean may be glued on:
# "1782341입니다").
_BACK_HALF_RE: Final = re.compile(r"[1-8](?<![0-9A-Za-z][1-8])[0-9]{6}(?![0-9A-Za-z])(?!-[0-9])")
# The first half and the words up to the second: six digits, or a full date; then anything
# but a digit and a blank line (a half's length, "7자리", "last 7", may stand there).
_FRONT_AND_BETWEEN_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?:(?P<short>[0-9]{6})|(?P<century>19|20)(?P<yy>[0-9]{2})"
    r"(?P<sep>[.\-/][ ]?|)(?P<mm>[0-9]{2})(?P=sep)(?P<dd>[0-9]{2}))"
    rf"(?P<between>(?:[^0-9\n]|(?<![0-9])[67](?![0-9])|\n(?!\n)){{1,{BETWEEN_CHARS}}})\Z"
)
_RESIDENT_KINDS: Final = frozenset({"rrn", "foreigner_id"})


def find_split_halves(text: str, context: ContextIndex, regions: Regions) -> Sequence[Candidate]:
    """Registration numbers written as two halves with words between (see the module). A
    list, not a generator: most texts hold no hint, and making a generator for each costs as
    much as the search."""
    if _HINT_RE.search(text) is None:
        return ()
    found = []
    for back in _BACK_HALF_RE.finditer(text):
        start = back.start()
        if start >= 2 and text[start - 2].isdigit() and not text[start - 1].isalpha():
            continue  # "800101-1234567", "800101 1234567": one piece, no word between
        window_start = max(0, start - BETWEEN_CHARS - _LONGEST_FRONT)
        front = _FRONT_AND_BETWEEN_RE.search(text, window_start, start)
        if front is None:
            continue
        candidate = _halves(front, back.group(), context, back.end())
        if candidate is not None:
            found.append(candidate)
    return found


def _halves(front: re.Match[str], back: str, context: ContextIndex, end: int) -> Candidate | None:
    birth = _birth_date(front, back[0])
    between = front.group("between")
    if birth is None or not _names_a_half(between):
        return None
    kind: PiiType = "foreigner_id" if back[0] in FOREIGNER_GENDER_DIGITS else "rrn"
    start = front.start()
    if context.context_of(start, end, kind) < 0:  # "주문번호 870722 뒷자리 ...": an order's
        return None
    shape = RRN_HALVES
    if registration_check_digit_ok(birth + back) and not born_after_check_digits_ended(
        birth, back[0]
    ):
        shape += CHECK_DIGIT_BONUS
    return Candidate(kind, start, end, min(shape + CONTEXT_BONUS, 1.0))  # the words say so


def _birth_date(front: re.Match[str], gender_digit: str) -> str | None:
    """The first half as YYMMDD when it is a real date in the gender digit's century."""
    short = front.group("short")
    if short is None:
        if CENTURY_OF_GENDER_DIGIT.get(gender_digit) != int(front.group("century")) * 100:
            return None
        short = front.group("yy") + front.group("mm") + front.group("dd")
    return short if is_valid_birth_date(short, gender_digit) else None


def _names_a_half(between: str) -> bool:
    """True when the words between the halves name a half or the number, and none of them
    labels another kind of number."""
    if not any(char.isalpha() for char in between):
        return False  # separators only: the number as one piece, the other finders' to read
    return _HALF_WORD_RE.search(between) is not None and labels_in(between) <= _RESIDENT_KINDS
