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

Halves in reverse order, further apart, or with a blank line or other fields between (a form:
"뒷자리: 1234567 ... 앞자리: 800101") are one number when each stands under its own label
naming its half (fifth round). The finding is then the second half alone, masked ``1******``:
what stands between may hold findings of its own (a form's phone line), and a span from a
second half first would show its digits under the masking rule's seven.
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
        candidate = None
        if front is not None:
            candidate = _halves(front, back.group(), context, back.end())
        if candidate is None:
            candidate = _labelled_halves_apart(text, back)
        if candidate is not None:
            found.append(candidate)
    return found


# ---- halves apart, each under its own label (fifth round) -----------------------------------
# In reverse order ("뒷자리 1782341 이고 앞자리는 921104"), further apart than BETWEEN_CHARS, or
# across a blank line or other fields (a form: "앞자리: 850315⏎⏎뒷자리: 1234566"), the halves
# are one number only when each carries its own label naming its half, right before it.
# At most this many characters between the two halves: a form's few lines.
APART_CHARS: Final = 160
# A half's own label stands at most this far before it, on its line or a line or two above
# (HTML forms come out as "주민등록번호(뒤)⏎⏎2345678").
HALF_LABEL_REACH: Final = 24
LABEL_LINES_ABOVE: Final = 2  # line breaks between a label and its value
_LAST_DIGIT_RE: Final = re.compile(r"[0-9](?=[^0-9]*\Z)")
_BACK_LABEL_RE: Final = re.compile(
    r"(?:뒷자리|뒷번호|뒷부분|(?<![가-힣])뒤[ ]?7[ ]?자리|(?<![가-힣])뒤(?![가-힣])"
    r"|(?i:(?<![a-z])(?:last|back|second)[ ]?(?:7|seven|half|part|digits)(?![a-z])))"
    r"(?P<rest>[^0-9]*)\Z"
)
_FRONT_LABEL_RE: Final = re.compile(
    r"(?:앞자리|앞번호|앞부분|(?<![가-힣])앞[ ]?6[ ]?자리|(?<![가-힣])앞(?![가-힣])|생년월일"
    r"|(?i:(?<![a-z])(?:(?:first|front)[ ]?(?:6|six|half|part|digits)|dob|date of birth"
    r"|birth[ ]?date)(?![a-z])))"
    r"(?P<rest>[^0-9]*)\Z"
)
# A first half standing alone: six digits, or a birth date written in full.
_FRONT_HALF_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?:(?P<short>[0-9]{6})|(?P<century>19|20)(?P<yy>[0-9]{2})"
    r"(?P<sep>[.\-/][ ]?|)(?P<mm>[0-9]{2})(?P=sep)(?P<dd>[0-9]{2}))(?![0-9A-Za-z])(?!-[0-9])"
)


def _labelled_halves_apart(text: str, back: re.Match[str]) -> Candidate | None:
    """The second half as the finding when it and a first half within APART_CHARS, before or
    after it, each stand under a label naming their half: the text between may hold other
    findings (a form's phone line), and the second half is what masking hides."""
    start, end = back.span()
    if not _half_labelled(text, start, _BACK_LABEL_RE):
        return None
    gender_digit = back.group()[0]
    low, high = max(0, start - APART_CHARS - _LONGEST_FRONT), end + APART_CHARS + _LONGEST_FRONT
    for front in _FRONT_HALF_RE.finditer(text, low, high):
        gap = front.start() - end if front.start() >= end else start - front.end()
        if not 0 <= gap <= APART_CHARS:
            continue  # too far, or overlapping the second half
        if _birth_date(front, gender_digit) and _half_labelled(
            text, front.start(), _FRONT_LABEL_RE
        ):
            kind: PiiType = "foreigner_id" if gender_digit in FOREIGNER_GENDER_DIGITS else "rrn"
            return Candidate(kind, start, end, min(RRN_HALVES + CONTEXT_BONUS, 1.0))
    return None


def _half_labelled(text: str, start: int, label: re.Pattern[str]) -> bool:
    """True when ``label`` (a half's name) stands just before ``start`` with no digit after it,
    and the phrase it is in labels no other kind of number ("계좌번호 뒷자리", "사번 뒷자리")."""
    lead = text[max(0, start - HALF_LABEL_REACH) : start]
    named = label.search(lead)
    if named is None or named.group("rest").count("\n") > LABEL_LINES_ABOVE:
        return False
    digit_before = _LAST_DIGIT_RE.search(lead, 0, named.start())
    phrase = lead if digit_before is None else lead[digit_before.end() :]
    return labels_in(phrase) <= _RESIDENT_KINDS


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
