"""Candidate finders working on normalised text: one pass for the kinds that start with a
digit (``find_numbers``), one for licences that start with a region name, one for passports.

Each finder yields ``Candidate``s with a score built from named parts: how strong the shape
is, whether its check digit holds, and what the context says. ``detect`` keeps those at or
above ``REPORT_THRESHOLD``. Shapes that are arithmetically impossible (bad date, wrong
gender digit, failing Luhn, unknown region code) are never candidates at all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from functools import lru_cache
from string import ascii_letters, digits
from typing import Final, NamedTuple

from mailsafe.pii.checks import (
    CORPORATE_REGISTRY_PREFIXES,
    FOREIGNER_GENDER_DIGITS,
    born_after_check_digits_ended,
    card_prefix_ok,
    child_number_without_check_digit,
    child_of_the_2000s,
    corporate_check_digit_ok,
    ean13_check_digit_ok,
    is_valid_birth_date,
    luhn_ok,
    registration_check_digit_ok,
)
from mailsafe.pii.context import (
    ContextIndex,
    kin_named_before,
    named_before,
    product_cue_near,
    whose_row,
)
from mailsafe.pii.types import PiiType

# A candidate is reported from this score up.
REPORT_THRESHOLD: Final = 0.5
# What context adds or takes away; a negative word outweighs any shape but a checked one.
CONTEXT_BONUS: Final = 0.35
NEGATIVE_CONTEXT_PENALTY: Final = 0.5
# Confidence added by a valid resident-number check digit (absent on numbers from Oct 2020).
CHECK_DIGIT_BONUS: Final = 0.3

# Shape scores: how sure the shape alone makes us.
RRN_HYPHENATED: Final = 0.6  # 800101-1234567: the form everyone writes
RRN_SPACED: Final = 0.5  # 800101 1234567 or 800101.1234567
RRN_BARE: Final = 0.35  # 8001011234567: needs its check digit or a context word
CARD_GROUPED: Final = 0.6  # 4111-1111-1111-1111 with one separator kind throughout
CARD_BARE: Final = 0.5  # 4111111111111111: Luhn and issuer prefix already hold
LICENSE_REGION_NAME: Final = 0.75  # 서울 12-345678-90
LICENSE_NUMERIC: Final = 0.6  # 11-12-345678-90
LICENSE_BARE: Final = 0.3  # 111234567890: needs a context word
PASSPORT_2021: Final = 0.65  # M123A4567
PASSPORT_OLD: Final = 0.55  # M12345678
PASSPORT_LOWERCASE_PENALTY: Final = 0.2  # m12345678: unusual, so it needs a context word
BANK_SHAPED: Final = 0.25  # a known bank layout; never reported without a context word
BANK_BARE: Final = 0.15  # 10-14 bare digits; never reported without a context word
PHONE_MOBILE: Final = 0.6  # 010-1234-5678: nothing else is written so
PHONE_MOBILE_BARE: Final = 0.5  # 01012345678
PHONE_LANDLINE: Final = 0.5  # 02-123-4567, 031-123-4567
PHONE_LANDLINE_BARE: Final = 0.3  # 0311234567: needs a context word
HEALTH_INSURANCE_BARE: Final = 0.15  # 11 digits; never reported without a context word

_BEFORE: Final = r"(?<![0-9A-Za-z])(?<![0-9A-Za-z]-)"
_AFTER: Final = r"(?![0-9A-Za-z])(?!-[0-9])"  # hex dumps, codes: a letter glued on ends no number
_SEP: Final = r"(?:[ ]?[-.][ ]?|[ ]{1,2})"

_REGISTRATION_RE: Final = re.compile(rf"{_BEFORE}(\d{{6}})({_SEP}?)([1-8]\d{{6}}){_AFTER}")
# Factored on the first four digits (Python's re does not factor alternatives itself).
_CARD_RE: Final = re.compile(
    rf"{_BEFORE}\d{{4}}(?:"
    rf"({_SEP})\d{{4}}\1\d{{4}}\1\d{{4}}(?:\1\d{{3}})?"  # 16 or 19 digits
    rf"|({_SEP})\d{{6}}\2\d{{4,5}}"  # Amex 4-6-5, Diners 4-6-4
    rf"|\d{{9,15}}"  # 13-19 digits, no separators
    rf"){_AFTER}"
)
_REGIONS: Final = (
    "경기남부", "경기북부", "서울", "부산", "경기", "강원", "충북", "충남", "전북", "전남",
    "경북", "경남", "제주", "대구", "인천", "광주", "대전", "울산", "세종",
)  # fmt: skip
# The separators may be left out ("서울 1234567890"): the region name says enough.
_LICENSE_REGION_RE: Final = re.compile(
    rf"(?:{'|'.join(_REGIONS)})[ ]?\d{{2}}({_SEP}?)\d{{6}}\1\d{{2}}{_AFTER}"
)
# Numeric region codes 11-28 (11 Seoul ... 26 Ulsan, 28 northern Gyeonggi).
_LICENSE_NUMERIC_RE: Final = re.compile(
    rf"{_BEFORE}(?:1[1-9]|2[0-8])(?:({_SEP})\d{{2}}\1\d{{6}}\1\d{{2}}|\d{{10}}){_AFTER}"
)
# The letter comes first and the look-behind after it, so the engine can skip ahead to the
# next M, S, R, O, D or G instead of testing a look-behind at every character. A letter or
# digit glued on by a hyphen ("M37514912-K", "KR-M37514912") makes a code, not a passport.
_PASSPORT_RE: Final = re.compile(
    r"[MSRODGmsrodg](?<![0-9A-Za-z][MSRODGmsrodg])(?<![0-9A-Za-z]-[MSRODGmsrodg])"
    r"(?:\d{8}|\d{3}[A-Za-z]\d{4})(?![0-9A-Za-z])(?!-[0-9A-Za-z])"
)
# Digit-group layouts of Korean banks (KB, Shinhan, Woori, Hana, NH, IBK, Kakao, Toss, SC,
# K bank, post office, MG, Suhyup, regional banks).
BANK_LAYOUTS: Final[frozenset[tuple[int, ...]]] = frozenset(
    {
        (6, 2, 6), (3, 2, 4, 3), (3, 3, 6), (3, 2, 6), (4, 3, 6), (3, 6, 5), (3, 4, 4, 2),
        (3, 6, 2, 3), (4, 2, 7), (4, 4, 4), (3, 3, 5), (4, 4, 5), (3, 4, 4, 3), (6, 3, 5),
        (3, 2, 7), (3, 7, 4), (4, 2, 6), (4, 4, 4, 1),
    }
)  # fmt: skip


def _bank_pattern() -> re.Pattern[str]:
    """The layouts as a trie (Python's re does not factor alternatives itself, and trying
    seventeen layouts at every digit was the slowest part of detection); the separator is
    captured after the first group and must repeat; then bare digits."""
    branches = []
    for number, first in enumerate(sorted({layout[0] for layout in BANK_LAYOUTS})):
        tails = [layout[1:] for layout in BANK_LAYOUTS if layout[0] == first]
        separator = f"s{number}"
        branches.append(
            rf"\d{{{first}}}(?P<{separator}>[ ]?-[ ]?|[ ])" + _trie(tails, separator, first=True)
        )
    return re.compile(rf"{_BEFORE}(?:{'|'.join(branches)}|(?P<bare>\d{{10,14}})){_AFTER}")


def _trie(tails: list[tuple[int, ...]], separator: str, *, first: bool = False) -> str:
    """Alternatives for the remaining groups, longest first so a longer layout wins."""
    heads = sorted({tail[0] for tail in tails if tail}, reverse=True)
    options = []
    for head in heads:
        rest = [tail[1:] for tail in tails if tail and tail[0] == head]
        lead = rf"\d{{{head}}}" if first else rf"(?P={separator})\d{{{head}}}"
        options.append(lead + _trie(rest, separator))
    if not options:
        return ""
    ending = "" if all(tails) else "?"
    return f"(?:{'|'.join(options)}){ending}"


_BANK_RE: Final = _bank_pattern()
# Korean phone numbers: mobile 010/011/016-019, Seoul 02, other areas 031-064, internet 070,
# personal 050x; grouped 3-4 then 4 digits with one separator kind, or bare (10-11 digits).
_PHONE_RE: Final = re.compile(
    rf"{_BEFORE}(?:(?P<mobile>01[016789])|02|0[3-6][1-5]|070|050\d?)"
    rf"(?:(?P<separator>{_SEP})\d{{3,4}}(?P=separator)\d{{4}}"
    rf"|(?<=01[016789])\d{{7,8}}|(?<=02)\d{{8}}|(?<=0[3-6][1-5]|070)\d{{7,8}}){_AFTER}"
)
# A landline (or mobile) with its area code in brackets, as Koreans write it: "(02) 1234-5678",
# "(031)123-4567", "02)1234-5678", "(02)-1234-5678". The number starts at the area code's "0"
# (a literal first, so the engine skips ahead to zeros); a "(" before it is not part of the
# finding, so the masked form keeps the bracket and shows the area code only. An amount or a
# count right after ("(02) 1000-2000원") says it is no phone number.
_BRACKETED_PHONE_RE: Final = re.compile(
    r"0(?<![0-9A-Za-z]0)(?<![0-9A-Za-z][(]0)(?:(?P<mobile>1[016789])|2|[3-6][1-5]|70)"
    r"[ ]?\)(?:[ ]?-)?[ ]?"
    r"(?P<middle>[0-9]{3,4})(?P<separator>[ ]?[-.][ ]?|[ ])?(?P<last>[0-9]{4})"
    rf"{_AFTER}(?![ ]?(?:원|만|억|천|개|명|건|%|년|KRW|won))"
)
_YEAR_RE: Final = re.compile(r"19[0-9]{2}|20[0-9]{2}")
# The same numbers written for abroad: "+82-10-1234-5678", "+82 2 1234 5678", "+82 (0)2 ...",
# "+821012345678" (the leading 0 of the area code dropped, or kept in brackets).
_INTERNATIONAL_PHONE_RE: Final = re.compile(
    r"\+82[ .\-]?(?:\(0\)[ ]?)?(?:(?P<mobile>1[016789])|2|[3-6][1-5]|70)"
    r"(?P<separator>[ .\-]?)[0-9]{3,4}(?P=separator)[0-9]{4}"
    rf"{_AFTER}"
)
# A health-insurance card number (건강보험증번호): 11 digits, only with its label.
_HEALTH_INSURANCE_RE: Final = re.compile(rf"{_BEFORE}\d{{11}}{_AFTER}")
_PHONE_LIKE_RE: Final = re.compile(r"0\d{1,2}\D*\d{3,4}\D*\d{4}|01[016789]\d{7,8}|0\d{8,10}")


class Candidate(NamedTuple):  # a tuple: tens of thousands are made per large table
    type: PiiType
    start: int
    end: int
    score: float


def _scored(
    context_index: ContextIndex, kind: PiiType, start: int, end: int, shape: float
) -> float:
    """The shape's score moved by the context words around the candidate (at most 1)."""
    return _moved(shape, context_index.context_of(start, end, kind))


def _moved(shape: float, context: int) -> float:
    """The shape's score moved by what the context says (+1, 0, -1; at most 1)."""
    if context > 0:
        return min(shape + CONTEXT_BONUS, 1.0)
    if context < 0:
        return shape - NEGATIVE_CONTEXT_PENALTY
    return shape


Regions = list[tuple[int, int]]

# Every number-based type spans at least 10 digits and separators, so the number finders
# only look where such a run is: one cheap pass instead of four full ones.
_NUMBER_RUN_RE: Final = re.compile(r"[0-9][0-9 .\-]{8,}[0-9]")
# Runs closer than this are searched as one region: fewer, longer searches are cheaper.
_MERGE_GAP: Final = 48
# Room before a run for a region name and a space ("경기북부 "), after it for look-aheads.
_REGION_NAME_ROOM: Final = 5
_LOOKAHEAD_ROOM: Final = 2
_NON_DIGIT_RE: Final = re.compile(r"[^0-9]")


# ---- ASCII text searched through its shape ----------------------------------------------------
# Most mail text is ASCII. Its whole-text searches (four digits in a row, number runs,
# passports) run on its shape: a copy of the same length in which every digit is "0", every
# passport letter "M" and every other letter "a". The patterns then begin with a literal ("0",
# "M0"), which the regex engine skips ahead to; a leading character class is instead tested
# position by position, several times slower. Positions in the shape are positions in the text.
_SHAPES: Final = str.maketrans(
    {
        **dict.fromkeys(ascii_letters, "a"),
        **dict.fromkeys("MSRODGmsrodg", "M"),
        **dict.fromkeys(digits, "0"),
    }
)
_NUMBER_RUN_SHAPE_RE: Final = re.compile(r"0[0 .\-]{8,}0")  # _NUMBER_RUN_RE on the shape
_PASSPORT_SHAPE_RE: Final = re.compile(  # _PASSPORT_RE on the shape
    r"M0(?<![0aM]M0)(?<![0aM]-M0)(?:0{7}|00[aM]0000)(?![0aM])(?!-[0aM])"
)
FOUR_DIGITS_SHAPE: Final = "0000"


@lru_cache(maxsize=1)  # the detector asks three times for the same text
def ascii_shape(text: str) -> str | None:
    """The shape of ``text`` (see above), or None when it is not ASCII."""
    return text.translate(_SHAPES) if text.isascii() else None


def number_runs(text: str) -> Regions:
    """Where the number finders should look: runs of 10+ digits and separators, merged."""
    regions: Regions = []
    shape = ascii_shape(text)
    runs = _NUMBER_RUN_RE.finditer(text) if shape is None else _NUMBER_RUN_SHAPE_RE.finditer(shape)
    for match in runs:
        if regions and match.start() - regions[-1][1] <= _MERGE_GAP:
            regions[-1] = (regions[-1][0], match.end())
        else:
            regions.append((match.start(), match.end()))
    return regions


# A number start: a digit no letter, digit or "digit-" stands before, as ``_BEFORE`` says
# (written after the digit, so the engine skips ahead to digits instead of testing the
# look-behinds everywhere). Group 1 is the rest of its run of ASCII digits when the run can
# begin a pattern (see NUMBER_PATTERNS): 11-28, 3, 4 or 6 digits followed by a separator and
# a digit, or 10-19 digits. Other runs are no match at all: no pattern could begin there.
# The match goes on over the rest of the chain ("110-012-345678", "12ab"): no digit in
# it can be a start, and the engine need not try each. When a non-ASCII digit starts or
# continues the run (``\d`` matches those too) there is no group: the run says nothing, and
# every pattern is tried. ("[0-9\d]" is ``\d``, tested faster.)
_NUMBER_START_RE: Final = re.compile(
    r"[0-9\d](?<![0-9A-Za-z].)(?<![0-9A-Za-z]-.)"
    r"(?:(?<=[0-9])((?:(?<=1)[1-9]|(?<=2)[0-8]|(?<=0)2|[0-9]{2,3}|[0-9]{5})(?=[ .\-]{1,3}\d)"
    r"|[0-9]{9,18}(?!\d))[0-9A-Za-z]*+(?:-[0-9A-Za-z]++)*+"
    r"|(?<![0-9])|(?=[0-9]*+\d))"
)


def _registration(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    birth, separator, rest = match.groups()
    if not is_valid_birth_date(birth, rest[0]):
        return None
    kind: PiiType = "foreigner_id" if rest[0] in FOREIGNER_GENDER_DIGITS else "rrn"
    shape = RRN_HYPHENATED if "-" in separator else RRN_SPACED if separator else RRN_BARE
    start, end = match.span()
    said = context.context_of(start, end, kind)
    # Numbers issued since October 2020 end in any digit: a check digit there holds by chance.
    checked = registration_check_digit_ok(birth + rest)
    if checked and not born_after_check_digits_ended(birth, rest[0]):
        if not (said or separator) and _barcode_on_a_product_line(match, birth + rest):
            return None
        shape += CHECK_DIGIT_BONUS
    else:  # issued since October 2020 (any last digit), or no resident number at all
        corporate = _looks_corporate(birth + rest)
        if not said:
            said = whose_row(match.string, start, end)
            if said > 0 and corporate and rest[0] in BORN_IN_THE_1900S:
                said = 0  # born 1911-1928: a company's "110111-1..." far likelier
            elif not (said or corporate) and _named_child(match.string, start, birth, rest[0]):
                said = 1  # a child's number after the child's name ("자녀 이도윤 2206...")
            elif not said and _kin_named_child(match.string, start, birth, rest[0]):
                said = 1  # "아들 민준 2103...", "딸: 2309...": the kin word is the label
        if said <= 0 and corporate:
            return None
    return Candidate(kind, start, end, _moved(shape, said))


def _barcode_on_a_product_line(match: re.Match[str], digits: str) -> bool:
    """An unlabelled bare number that is also a valid EAN-13 barcode, on a line with a
    quantity or a product word: a product's barcode, its resident check digit chance."""
    start, end = match.span()
    return ean13_check_digit_ok(digits) and product_cue_near(match.string, start, end)


def _kin_named_child(text: str, start: int, birth: str, gender_digit: str) -> bool:
    """A number of a child born 2000-2039 after a kin word and maybe the child's given name
    ("아들 민준", "둘째 지안"), with or without a check digit, corporate-looking or not."""
    return child_of_the_2000s(birth, gender_digit) and kin_named_before(text, start)


def _named_child(text: str, start: int, birth: str, gender_digit: str) -> bool:
    """A number issued since the check digit ended, right after a person's name alone."""
    return child_number_without_check_digit(birth, gender_digit) and named_before(text, start)


# Gender digits of people born 1900-1999 (residents 1 2, foreigners 5 6). A corporate number's
# first six digits read as a birth date in 1911-1928 with them, rarely a living person's.
BORN_IN_THE_1900S: Final = frozenset("1256")


def _looks_corporate(digits: str) -> bool:
    """A corporate registration number in a resident number's shape: a registry-office prefix
    and a corporate check digit (and, checked by the caller, no resident check digit)."""
    return int(digits[:2]) in CORPORATE_REGISTRY_PREFIXES and corporate_check_digit_ok(digits)


def _phone(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    grouped = match.group("separator") is not None
    if match.group("mobile"):
        shape = PHONE_MOBILE if grouped else PHONE_MOBILE_BARE
    else:
        shape = PHONE_LANDLINE if grouped else PHONE_LANDLINE_BARE
    start, end = match.span()
    return Candidate("phone", start, end, _scored(context, "phone", start, end, shape))


def _bracketed_phone(match: re.Match[str], context: ContextIndex) -> Candidate:
    """A bracketed area code is a phone's own way of writing; without a separator after it,
    or when the groups read as a span of years ("(02) 1998-2003": item 2 of a list), the
    shape needs a context word."""
    middle, last = match.group("middle"), match.group("last")
    year_span = bool(_YEAR_RE.fullmatch(middle) and _YEAR_RE.fullmatch(last)) and middle <= last
    if match.group("separator") is None or year_span:
        shape = PHONE_LANDLINE_BARE
    else:
        shape = PHONE_MOBILE if match.group("mobile") else PHONE_LANDLINE
    start, end = match.span()
    return Candidate("phone", start, end, _scored(context, "phone", start, end, shape))


def _health_insurance(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    start, end = match.span()
    score = _scored(context, "health_insurance", start, end, HEALTH_INSURANCE_BARE)
    return Candidate("health_insurance", start, end, score)


def _card(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    value = match.group()
    digits = _NON_DIGIT_RE.sub("", value)
    if not (card_prefix_ok(digits) and luhn_ok(digits)):
        return None
    shape = CARD_BARE if digits == value else CARD_GROUPED
    start, end = match.span()
    return Candidate("credit_card", start, end, _scored(context, "credit_card", start, end, shape))


def _numeric_license(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    shape = LICENSE_NUMERIC if match.group(1) else LICENSE_BARE
    start, end = match.span()
    score = _scored(context, "driver_license", start, end, shape)
    return Candidate("driver_license", start, end, score)


def _bank_account(match: re.Match[str], context: ContextIndex) -> Candidate | None:
    value = match.group()
    if value[0] == "0" and _PHONE_LIKE_RE.fullmatch(value):  # every phone shape starts with 0
        return None
    shape = BANK_BARE if match.group("bare") else BANK_SHAPED
    start, end = match.span()
    return Candidate(
        "bank_account", start, end, _scored(context, "bank_account", start, end, shape)
    )


_NumberCheck = Callable[[re.Match[str], ContextIndex], "Candidate | None"]

# The patterns that start at a number start, each with the check of what it matched and the
# lengths its first run of digits can have. A run is followed by a non-digit, so e.g. a
# registration number's is 6 (a separator follows) or 13 (bare); lengths are exact, not
# heuristics: a run of any other length cannot begin a match of that pattern.
NUMBER_PATTERNS: Final[tuple[tuple[re.Pattern[str], _NumberCheck, frozenset[int]], ...]] = (
    (_REGISTRATION_RE, _registration, frozenset({6, 13})),
    (_CARD_RE, _card, frozenset({4, *range(13, 20)})),  # grouped 4-..., or 13-19 bare
    (_LICENSE_NUMERIC_RE, _numeric_license, frozenset({2, 12})),  # 11-..., or 12 bare
    (
        _BANK_RE,
        _bank_account,
        frozenset({*(layout[0] for layout in BANK_LAYOUTS), *range(10, 15)}),
    ),
    (_PHONE_RE, _phone, frozenset({2, 3, 4, 10, 11})),  # 02-, 010-, 0505-, or bare
    (_HEALTH_INSURANCE_RE, _health_insurance, frozenset({11})),
)
_LONGEST_FIRST_RUN: Final = max(max(lengths) for _, _, lengths in NUMBER_PATTERNS)
# Patterns whose first character is a literal digit: a phone number begins with "0", a
# numeric licence with its region code's "1" or "2". A start with another first digit is
# not tried against them (the match would fail; phones alone were a third of all tries).
_FIRST_DIGITS: Final[dict[re.Pattern[str], str]] = {_PHONE_RE: "0", _LICENSE_NUMERIC_RE: "12"}
_OTHER_FIRST: Final = "other"  # the key for a first character no pattern names


def _patterns_for(first: str) -> dict[int | None, tuple[int, ...]]:
    """Length of the rest of a run after its first digit ``first`` (None: unknown) -> the
    indexes of the patterns worth trying there."""
    return {
        rest: tuple(
            index
            for index, (pattern, _, lengths) in enumerate(NUMBER_PATTERNS)
            if (rest is None or rest + 1 in lengths) and first in _FIRST_DIGITS.get(pattern, first)
        )
        for rest in (None, *range(_LONGEST_FIRST_RUN))
    }


# First character of a start -> (rest length of its run -> the patterns worth trying there).
_PATTERNS_BY_START: Final[dict[str, dict[int | None, tuple[int, ...]]]] = {
    first: _patterns_for(first) for first in ("0", "1", "2", _OTHER_FIRST)
}


def find_numbers(text: str, context: ContextIndex, regions: Regions) -> Iterator[Candidate]:
    """Registration numbers, cards, numeric licences and bank accounts in one pass.

    Each pattern begins at a number start, so instead of four ``finditer`` passes over
    every region, the number starts are found once and only the patterns the start's run
    of digits allows are tried there (anchored). Each pattern resumes after its own previous
    match, as ``finditer`` does, so the matches are exactly those of four passes.
    """
    for start, run_end in regions:
        end = run_end + _LOOKAHEAD_ROOM  # an endpos past the text is clamped by ``re``
        resume = [0] * len(NUMBER_PATTERNS)
        for number in _NUMBER_START_RE.finditer(text, start, end):
            rest = number.group(1)
            position = number.start()
            by_rest = _PATTERNS_BY_START.get(text[position]) or _PATTERNS_BY_START[_OTHER_FIRST]
            tried = by_rest[None if rest is None else len(rest)]
            for index in tried:
                if position < resume[index]:
                    continue
                pattern, check, _ = NUMBER_PATTERNS[index]
                match = pattern.match(text, position, end)
                if match is None:
                    continue
                resume[index] = match.end()
                candidate = check(match, context)
                if candidate is not None:
                    yield candidate


def find_region_licenses(text: str, context: ContextIndex, regions: Regions) -> Iterator[Candidate]:
    """Driver's licences written with a region name ("서울 12-345678-90")."""
    for start, end in regions:
        named_from = max(0, start - _REGION_NAME_ROOM)
        for match in _LICENSE_REGION_RE.finditer(text, named_from, end + _LOOKAHEAD_ROOM):
            found, until = match.span()
            score = _scored(context, "driver_license", found, until, LICENSE_REGION_NAME)
            yield Candidate("driver_license", found, until, score)


def find_passports(text: str, context: ContextIndex, regions: Regions) -> Iterator[Candidate]:
    # The 2021 form has no run of 10 digits: passports are looked for everywhere.
    shape_of_text = ascii_shape(text)
    if shape_of_text is None:
        spans = (match.span() for match in _PASSPORT_RE.finditer(text))
    else:
        spans = (match.span() for match in _PASSPORT_SHAPE_RE.finditer(shape_of_text))
    for found, until in spans:
        value = text[found:until]
        shape = PASSPORT_OLD if value[1:].isdigit() else PASSPORT_2021
        if value[0].islower():
            shape -= PASSPORT_LOWERCASE_PENALTY
        yield Candidate("passport", found, until, _scored(context, "passport", found, until, shape))


def find_bracketed_phones(
    text: str, context: ContextIndex, regions: Regions
) -> Iterator[Candidate]:
    """Phone numbers with a bracketed area code, looked for everywhere: the bracket breaks
    the run of digits, so no number run holds them."""
    if ")" not in text:
        return
    for match in _BRACKETED_PHONE_RE.finditer(text):
        yield _bracketed_phone(match, context)


def find_international_phones(
    text: str, context: ContextIndex, regions: Regions
) -> Iterator[Candidate]:
    """Korean numbers with the country code: "+82" is no other kind's."""
    if "+82" not in text:
        return
    for match in _INTERNATIONAL_PHONE_RE.finditer(text):
        shape = PHONE_MOBILE if match.group("mobile") else PHONE_LANDLINE
        start, end = match.span()
        yield Candidate("phone", start, end, _scored(context, "phone", start, end, shape))


FINDERS: Final = (
    find_numbers, find_region_licenses, find_passports, find_bracketed_phones,
    find_international_phones,
)  # fmt: skip
