"""Identifiers read back from what OCR made of them, where the identifier itself says what it
was: a passport's machine-readable zone by its check digits, a passport number by its label.

Tesseract reads a screenshot's MRZ ``P<KORHONG<<MINJI<<<...`` as ``PKKORHONGCCMINII KKK KEE``
(the filler ``<`` as ``K``, ``C``, ``«``, ``¢``, ``{``), spaces the number line into pieces and
swaps ``O``/``0``, ``S``/``5``/``$``, ``G``/``6``, ``I``/``1``, ``B``/``8``. The number line
carries three check digits (document number, birth, expiry; ICAO 9303): a reading is accepted
only when, with the confusions undone field by field, at least ``MRZ_CHECKS_NEEDED`` of them
hold -- the same rule the detector applies to text as written. The name line has no check
digit; it is read back only directly above a number line so accepted.

A passport number under its label (``여권번호: 605452849``) whose letter was read as a digit
gets the letter back (``G05452849``): a passport number always starts with a letter, and the
label says it is one. Nothing here runs on text that did not come out of OCR.

A private key's armour line whose dashes OCR lost (``~----BEGIN RSA PRIVATE KEY``) gets them
back: the words name it. A hyphen between digits with a space on one side only
(``23-19-577364- 14``) loses the space: one number's groups share one separator. A resident
number's birth date split by a space (``980 127 - 6925483``) is joined when its six digits
are a date with the gender digit after the hyphen. A vendor's
token, a URL's password and an address that OCR cut with a space are joined again.

A passport number's letter read as a digit without a label (``647693842`` for G47693842) is
not given back from the text: ``mailsafe.extract.ocr`` looks at the word's pixels, and the
rules it applies to what it sees are here (``passport_suspect``, ``passport_from_latin``,
``wide_first_glyph``, ``unlike_its_twins``; D84). A licence number under its label whose
space OCR lost (``대전 58 14412435``) gets its groups 2-6-2 back.

``read_back(ocr_text)`` returns the text with each accepted MRZ reading added as a line after
the line it was read from (the reading as OCR gave it stays: it may hold other words),
passport numbers and key armour lines repaired in place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from mailsafe.pii.checks import is_valid_birth_date
from mailsafe.pii.text_finders import MRZ_CHECKS_NEEDED, mrz_check_ok

__all__ = [
    "MAX_PASSPORT_REREADS",
    "ReadBackLine",
    "mrz_number_line",
    "passport_from_latin",
    "passport_suspect",
    "read_back",
    "read_back_lines",
    "unlike_its_twins",
    "unread_mrz",
    "wide_first_glyph",
    "with_leading_letter",
]

MRZ_LINE_CHARS: Final = 44  # a TD3 (passport) line
# What OCR makes of the filler "<" in a screenshot: symbols, and letters that are letters too.
_FILLER_SYMBOLS: Final = "<«‹¢{([£"
_FILLER_READINGS: Final = _FILLER_SYMBOLS + "KkCcE"
# Confusions undone in a field of digits, and in a field of letters.
_AS_DIGIT: Final = str.maketrans(
    {**dict.fromkeys("OoQDU", "0"), **dict.fromkeys("Il|iL", "1"), **dict.fromkeys("Zz", "2"),
     **dict.fromkeys("Ss$", "5"), **dict.fromkeys("Gb", "6"), "B": "8", "T": "7", "A": "4",
     **dict.fromkeys("gq", "9")}
)  # fmt: skip
_AS_LETTER: Final = str.maketrans("01256$8(", "OIZSGSBC")
# The number line without spaces: document number (9) and check, nationality (3), birth (6)
# and check, sex, expiry (6) and check, then the optional data (14, fillers OCR added or lost
# allowed for) and the two last check digits.
_ANY: Final = r"[A-Za-z0-9<«‹¢{(\[$|£]"
_NUMBER_LINE_RE: Final = re.compile(
    rf"(?P<doc>{_ANY}{{9}})(?P<doc_check>{_ANY})(?P<nation>{_ANY}{{3}})"
    rf"(?P<birth>{_ANY}{{6}})(?P<birth_check>{_ANY})(?P<sex>[MFX<«‹¢{{(KkCcH])"
    rf"(?P<expiry>{_ANY}{{6}})(?P<expiry_check>{_ANY})"
    rf"(?P<data>{_ANY}{{10,16}}?)(?P<last>[0-9OoIlSBZG]{{2}})(?![0-9])"
)
# A passport's letter read as a digit, under its label: "여권번호: 605452849" is G05452849.
_PASSPORT_LABEL_RE: Final = re.compile(r"(?i:여권|passport)")
_MISREAD_PASSPORT_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?P<letter>[56$0])(?P<rest>[0-9]{8}|[0-9]{3}[A-Z][0-9]{4})(?![0-9A-Za-z])"
    r"(?![ ]?(?:개|명|건|원|만|억|%|년))"  # a count or an amount
)
_PASSPORT_LETTER: Final = {"5": "S", "$": "S", "6": "G", "0": "O"}
# A passport number under its label with a digit read as a letter or cut by a space
# ("Passport No. RO5 7N3719" is R057N3719): a letter, then nine characters less one, read as
# the two shapes a Korean passport number has; most of them must already be digits.
_LABELLED_TOKEN_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])[A-Z][0-9A-Za-z]{1,7} ?[0-9A-Za-z]{1,7}(?![0-9A-Za-z])"
    r"(?![ ]?(?:개|명|건|원|만|억|%|년))"  # a count or an amount
)
_PASSPORT_SHAPE_RE: Final = re.compile(r"[A-Z](?:[0-9]{8}|[0-9]{3}[A-Z][0-9]{4})")
PASSPORT_DIGITS_AS_READ: Final = 5  # of the eight after the letter, at least
PASSPORT_LABEL_BEFORE_CHARS: Final = 40  # as the detector's context window
# A private key's armour line whose dashes OCR lost or misread ("~----BEGIN RSA PRIVATE KEY"):
# the words say what it is; the dashes are given back so the detector knows the key.
_KEY_ARMOUR_RE: Final = re.compile(
    r"^[\s\-~—–_=.“”\"'‘’]*(BEGIN|END) ((?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?)"
    r"[\s\-~—–_=.:“”\"'‘’]*$"
)


# A stretch of digit groups separated by a space or a hyphen (with or without spaces).
_DIGIT_STRETCH_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])[0-9]+(?:(?: ?[-–] ?| )[0-9]+)+(?![0-9A-Za-z])"
)
_GROUP_SEPARATOR_RE: Final = re.compile(r" ?[-–] ?| ")
# A hyphen between digits with a space OCR put on one side only ("577364- 14", "59 -413885 -
# 77"): the groups of one number are written with one separator, so in a stretch holding a
# lopsided one every hyphen loses its spaces.
_LOPSIDED_HYPHEN_RE: Final = re.compile(r"(?<=[0-9])(?: [-–](?! )|(?<! )[-–] )(?=[0-9])")
_SPACED_HYPHEN_RE: Final = re.compile(r" ?[-–] ?")
# Digits OCR read one by one with a space between (wide or full-width digits on screen:
# "19 - 0 1- 9 9 02 6 2 - 6 3", "5 3 5 9 6 7 6 0 7"): a reader sees one number. A stretch is
# read as spaced out when at least SPACED_DIGITS_NEEDED of its groups, and half of them, are
# single digits; its spaces go, its hyphens stay.
SPACED_DIGITS_NEEDED: Final = 4


# A resident or foreigner number's birth date that OCR cut in two with a space ("980 127 -
# 6925483"): joined again when the six digits are a date and the digit after the hyphen a
# gender digit for it -- what the number's own first half must be; the detector then judges
# the number as written (check digit, label) like any other.
_SPLIT_BIRTH_DATE_RE: Final = re.compile(
    r"(?<![0-9A-Za-z])(?<![0-9][ .,])(?P<head>[0-9]{2,4}) (?P<tail>[0-9]{2,4})"
    r"(?P<rest> ?[-–] ?(?P<gender>[0-9])[0-9]{6}(?![0-9]))"
)


# A vendor's token that OCR cut into pieces with spaces ("sk-proj-MSsxDX3DxbW GutNHGzSHzg
# RhP6FX..."): its prefix, then fragments. A fragment is joined on only when it looks random
# (a digit, or upper and lower case): "sk-telecom partners" stays apart.
_TOKEN_PIECES_RE: Final = re.compile(
    r"(?<![A-Za-z0-9_\-])(?:sk-(?:proj-|ant-)?|gh[pousr]_|github_pat_|xox[abposr]-|glpat-|npm_"
    r"|[sr]k_live_|AKIA|ASIA|AIza)[A-Za-z0-9_\-]+(?: [A-Za-z0-9_\-]+)+"
)
# A URL's password or an address cut by a space OCR put in: "user:OvxMcxrF %52@host",
# "s.park52 @korea.kr".
_CUT_USERINFO_RE: Final = re.compile(r"(://[^\s:/@]{1,64}:[^\s@/]{1,64}) ([^\s@/]{1,64}@)")
# ... or after the "@" ("U1tuDkZl#09@ db.corp.example:5432"): the host follows.
_CUT_HOST_RE: Final = re.compile(r"(://[^\s:/@]{1,64}:[^\s@/]{1,64}@) ([A-Za-z0-9\-]+\.[A-Za-z])")
_CUT_ADDRESS_RE: Final = re.compile(
    r"(?<![A-Za-z0-9._%+\-])([A-Za-z0-9][A-Za-z0-9._%+\-]{0,63}) (@[A-Za-z0-9\-]+\.[A-Za-z])"
)
# ... but not when the word before the space is an ordinary word of a sentence: "follow us
# @acme.co" names a handle after "us", it is no address "us@acme.co". English function words
# (pronouns, articles, prepositions, conjunctions) and the verbs that go before a handle; no
# mailbox name (info, sales, contact, admin): those are addresses' own local parts.
ORDINARY_WORDS: Final = frozenset(
    {"a", "an", "the", "i", "we", "you", "he", "she", "it", "they", "us", "me", "him", "her",
     "them", "my", "our", "your", "his", "its", "their",
     "at", "to", "by", "via", "on", "in", "of", "for", "from", "with", "and", "or", "but", "is",
     "are",
     "follow", "find", "join", "see", "visit", "tag", "mention", "ping", "dm", "message", "reach",
     "like"}
)  # fmt: skip


def read_back(ocr_text: str) -> str:
    """``ocr_text`` with accepted MRZ readings added after their lines, passport numbers under
    their label given their letter back and key armour lines their dashes."""
    return "\n".join(line.text for line in read_back_lines(ocr_text))


@dataclass(frozen=True)
class ReadBackLine:
    """One line of :func:`read_back`'s text: ``text``, read from the line ``source`` (its
    index) of the OCR text; ``repaired`` when it is that line with repairs in place (the
    same words, some joined, split or with characters changed), not a passport zone's line
    read back whole from it."""

    text: str
    source: int
    repaired: bool


def read_back_lines(ocr_text: str) -> list[ReadBackLine]:
    """The lines of :func:`read_back`'s text, each with the OCR line it was read from: where
    a finding in it is in the picture (``mailsafe.extract.ocr_words``)."""
    lines = ocr_text.split("\n")
    out: list[ReadBackLine] = []
    for index, line in enumerate(lines):
        separators = _birth_date_joined(_DIGIT_STRETCH_RE.sub(_stretch_read, line))
        repaired = _joined(_passport_letters(_licence_regrouped(_key_armour(separators))))
        out.append(ReadBackLine(repaired, index, repaired=True))
        number_line = mrz_number_line(line)
        if number_line is None:
            continue
        above = _name_line_index_above(lines, index)
        if above is not None:
            out.append(ReadBackLine(_name_line(lines[above].strip()), above, repaired=False))
        out.append(ReadBackLine(number_line, index, repaired=False))
    return out


# A run of fillers as OCR reads them ("<<<<<", "KKK KK", "CCKK<"): a zone may be in the picture.
_FILLER_HINT_RE: Final = re.compile(rf"(?:[{re.escape(_FILLER_READINGS)}] ?){{5,}}")


def unread_mrz(ocr_text: str) -> bool:
    """Whether ``ocr_text`` shows a zone's fillers but no whole zone was read (a number line
    accepted, a name line above it): worth a second reading of the picture."""
    if _FILLER_HINT_RE.search(ocr_text) is None:
        return False
    lines = ocr_text.split("\n")
    return not any(
        mrz_number_line(line) and _name_line_above(lines, index) for index, line in enumerate(lines)
    )


def mrz_number_line(untrusted_line: str) -> str | None:
    """The MRZ number line OCR read as ``untrusted_line``, with its confusions undone, when
    enough of its check digits hold; else None."""
    packed = "".join(untrusted_line.split())
    if len(packed) < MRZ_LINE_CHARS - 4:
        return None
    for start in range(len(packed) - MRZ_LINE_CHARS + 5):
        match = _NUMBER_LINE_RE.match(packed, start)
        line = None if match is None else _checked_number_line(match)
        if line is not None:
            return line
    return None


def _checked_number_line(match: re.Match[str]) -> str | None:
    birth = match["birth"].translate(_AS_DIGIT)
    expiry = match["expiry"].translate(_AS_DIGIT)
    checks = [c.translate(_AS_DIGIT) for c in (match["doc_check"], match["birth_check"],
                                                match["expiry_check"])]  # fmt: skip
    if not (_is_date(birth) and _is_date(expiry)):
        return None
    document = _document_number(match["doc"], checks[0])
    held = (
        document is not None,
        mrz_check_ok(birth, checks[1]),
        mrz_check_ok(expiry, checks[2]),
    )
    if sum(held) < MRZ_CHECKS_NEEDED:
        return None
    nation = match["nation"].translate(_AS_LETTER).upper()
    sex = match["sex"] if match["sex"] in "MFX" else "<"
    line = (
        f"{document or _as_document(match['doc'])}{checks[0]}{nation}{birth}{checks[1]}{sex}"
        f"{expiry}{checks[2]}{_optional_data(match['data'])}{match['last'].translate(_AS_DIGIT)}"
    )
    return line if len(line) == MRZ_LINE_CHARS and nation.isalpha() else None


def _is_date(digits: str) -> bool:
    """YYMMDD with a month and a day that exist (any year: the century is not written)."""
    return digits.isdigit() and 1 <= int(digits[2:4]) <= 12 and 1 <= int(digits[4:]) <= 31


def _as_document(untrusted: str) -> str:
    """A document number as read: a letter first, fillers as "<"."""
    first = untrusted[0].translate(_AS_LETTER).upper()
    return first + "".join("<" if c in _FILLER_SYMBOLS else c.upper() for c in untrusted[1:])


def _document_number(untrusted: str, check: str) -> str | None:
    """The reading of a Korean document number whose check digit holds: a letter, then eight
    digits, or three digits, a letter and four digits. Only these two readings are tried --
    each reading tried is another chance for a check digit to hold by accident."""
    first = untrusted[0].translate(_AS_LETTER).upper()
    digits = untrusted[1:].translate(_AS_DIGIT)
    readings = (first + digits, first + digits[:3] + digits[3].translate(_AS_LETTER) + digits[4:])
    for reading in readings:
        if reading[0].isalpha() and mrz_check_ok(reading, check):
            return reading
    return None


def _optional_data(untrusted: str) -> str:
    """The optional data, 14 characters: fillers OCR added or lost made up to 14."""
    data = "".join("<" if c in _FILLER_READINGS else c.translate(_AS_DIGIT) for c in untrusted)
    return data.rstrip("<")[:14].ljust(14, "<")


# OCR loses characters of a run of fillers: a name line read is shorter than 44, but not this.
MIN_NAME_LINE_CHARS: Final = 12


def _name_line_above(lines: list[str], index: int) -> str | None:
    """The name line of the zone whose number line is ``lines[index]``: the nearest non-blank
    line above, when it starts with "P"."""
    above = _name_line_index_above(lines, index)
    return None if above is None else _name_line(lines[above].strip())


def _name_line_index_above(lines: list[str], index: int) -> int | None:
    """Where :func:`_name_line_above`'s line is in ``lines`` (None: there is none)."""
    for above in range(index - 1, -1, -1):
        line = lines[above]
        if not line.strip():
            continue
        if line.lstrip()[:1] != "P" or len("".join(line.split())) < MIN_NAME_LINE_CHARS:
            return None
        return above
    return None


# A filler read as a letter: two or more in a row, or one before a space OCR put after it.
# A run does not start with E: OCR reads a filler as E only after others ("KKKKE"), and a
# name ends in E often (LEE, where "LEECC" is LEE<<, not L<<<<).
_FILLER_RUN_RE: Final = re.compile(
    rf"(?![Ee])[{re.escape(_FILLER_READINGS)}]{{2,}}|(?![Ee])[{re.escape(_FILLER_READINGS)}](?= )"
)


def _name_line(untrusted: str) -> str:
    """P<, the issuing state, then the names: filler readings become fillers, spaces go."""
    nation = untrusted[2:5].translate(_AS_LETTER).upper()
    names = _FILLER_RUN_RE.sub(lambda run: "<" * len(run[0]), untrusted[5:]).replace(" ", "")
    names = "".join(c if c.isascii() and c.isalpha() else "<" for c in names.upper())
    return f"P<{nation}{names}"[:MRZ_LINE_CHARS].ljust(MRZ_LINE_CHARS, "<")


def _passport_letters(line: str) -> str:
    """A passport number after its label on ``line``, its letter read as a digit, given the
    letter back (same length)."""
    label = _PASSPORT_LABEL_RE.search(line)
    if label is None:
        return line

    def under_label(match: re.Match[str]) -> bool:
        return label.end() <= match.start() <= label.end() + PASSPORT_LABEL_BEFORE_CHARS

    def repaired(match: re.Match[str]) -> str:
        return _PASSPORT_LETTER[match["letter"]] + match["rest"] if under_label(match) else match[0]

    def read_as_passport(match: re.Match[str]) -> str:
        reading = _passport_reading(match[0]) if under_label(match) else None
        return match[0] if reading is None else reading

    line = _MISREAD_PASSPORT_RE.sub(repaired, line)
    return _LABELLED_TOKEN_RE.sub(read_as_passport, line)


# A licence number under its label whose space OCR lost ("운전면허번호: 대전 58 144124 35" read
# "대전 58 14412435"): twelve digits in two groups, one of them two digits, are a licence's
# twelve in the wrong groups; they get the licence's own grouping (2, 6, 2) back.
_LICENCE_LABEL_RE: Final = re.compile(r"(?i:면허|driver'?s? ?licen[cs]e)")
_LICENCE_TWO_GROUPS_RE: Final = re.compile(
    r"(?<![0-9A-Za-z-])(?:[0-9]{2} [0-9]{8}|[0-9]{8} [0-9]{2})(?![0-9A-Za-z-])"
)
LICENCE_LABEL_BEFORE_CHARS: Final = 40  # as the detector's context window


def _licence_regrouped(line: str) -> str:
    """A licence number after its label on ``line``, its twelve digits in two groups of 2 and
    8 (or 8 and 2), written in the licence's groups of 2, 6 and 2 (one space longer)."""
    label = _LICENCE_LABEL_RE.search(line)
    if label is None:
        return line

    def regrouped(match: re.Match[str]) -> str:
        if not label.end() <= match.start() <= label.end() + LICENCE_LABEL_BEFORE_CHARS:
            return match[0]
        digits = match[0].replace(" ", "")
        return f"{digits[:2]} {digits[2:8]} {digits[8:]}"

    return _LICENCE_TWO_GROUPS_RE.sub(regrouped, line)


def _passport_reading(untrusted: str) -> str | None:
    """``untrusted`` (a letter, then digits OCR partly read as letters or cut by a space) as
    a passport number, or None when it does not read as one."""
    packed = untrusted.replace(" ", "")
    if len(packed) != 9 or sum(c.isdigit() for c in packed[1:]) < PASSPORT_DIGITS_AS_READ:
        return None
    fifth = packed[4] if packed[4].isupper() and packed[4] not in "OIS" else None
    digits = packed[1:].translate(_AS_DIGIT)
    reading = packed[0] + (digits if fifth is None else digits[:3] + fifth + digits[4:])
    return reading if _PASSPORT_SHAPE_RE.fullmatch(reading) else None


def _stretch_read(stretch: re.Match[str]) -> str:
    """A stretch of digit groups as a reader sees it: spaced-out digits joined, a lopsided
    hyphen's number written with plain hyphens; else as OCR read it."""
    digits = stretch[0]
    groups = _GROUP_SEPARATOR_RE.split(digits)
    singles = sum(len(group) == 1 for group in groups)
    if singles >= SPACED_DIGITS_NEEDED and 2 * singles >= len(groups):
        return _SPACED_HYPHEN_RE.sub("-", digits).replace(" ", "")
    if _LOPSIDED_HYPHEN_RE.search(digits):
        return _SPACED_HYPHEN_RE.sub("-", digits)
    return digits


def _birth_date_joined(line: str) -> str:
    """A registration number's birth date that OCR split with a space, joined again."""

    def joined(match: re.Match[str]) -> str:
        birth = match["head"] + match["tail"]
        if len(birth) != 6 or not is_valid_birth_date(birth, match["gender"]):
            return match[0]
        return birth + match["rest"]

    return _SPLIT_BIRTH_DATE_RE.sub(joined, line) if " " in line else line


def _key_armour(line: str) -> str:
    """A private key's BEGIN or END line with its five dashes each side."""
    if "PRIVATE KEY" not in line:
        return line
    armour = _KEY_ARMOUR_RE.match(line)
    return line if armour is None else f"-----{armour[1]} {armour[2]}-----"


def _joined(line: str) -> str:
    """Tokens, URL passwords and addresses OCR cut with a space, joined again."""
    if " " not in line:
        return line
    line = _TOKEN_PIECES_RE.sub(_token_joined, line)
    if "://" in line:
        line = _CUT_HOST_RE.sub(r"\1\2", _CUT_USERINFO_RE.sub(r"\1\2", line))
    return _CUT_ADDRESS_RE.sub(_address_joined, line) if " @" in line else line


def _address_joined(match: re.Match[str]) -> str:
    """An address cut before its "@" joined again, unless its "local part" is an ordinary
    word (ORDINARY_WORDS): a sentence naming a handle, not a cut address."""
    if match[1].lower() in ORDINARY_WORDS:
        return match[0]
    return match[1] + match[2]


def _token_joined(match: re.Match[str]) -> str:
    """The token's pieces joined while each looks random; the rest as it was."""
    first, *pieces = match[0].split(" ")
    kept = [first]
    for number, piece in enumerate(pieces):
        if not _looks_random(piece):
            return "".join(kept) + " " + " ".join(pieces[number:])
        kept.append(piece)
    return "".join(kept)


def _looks_random(piece: str) -> bool:
    return any(c.isdigit() for c in piece) or (piece.lower() != piece and piece.upper() != piece)


# ---- a passport number whose letters the Korean model read as digits ------------------------
#
# Unlabelled (a roster, a number alone), "G47693842" comes out of the Korean model as
# "647693842" and "O746J3993" as "074613993": nine digits, which the detector rightly does not
# take for a passport. The word's own pixels, read again by the Latin model alone, often show
# the letters ("G47693842"). Only a nine-character word whose first character is a digit OCR
# makes of a passport's letter is read again, and the Latin reading is taken only when it is a
# passport's shape and differs from the Korean one by those confusions alone: a real nine-digit
# number read again as digits stays digits.

# Words read again per picture, at most: each costs one more (small) Tesseract run.
MAX_PASSPORT_REREADS: Final = 4
# The first character as the Korean model reads a passport's letter, and the letters it was.
_LEADING_LOOKALIKES: Final = {"0": "OQD", "5": "S", "$": "S", "6": "G", "8": "B"}
# The fifth character (the letter of "M123A4567") as read, and the letters it may have been.
_INNER_LOOKALIKES: Final = {"1": "JIL", "0": "OQD", "5": "S", "8": "B", "3": "J"}
_SUSPECT_WORD_RE: Final = re.compile(r"^[^0-9A-Za-z$]*(?P<token>[056$8][0-9]{8})[^0-9A-Za-z]*$")


def passport_suspect(word: str) -> tuple[int, int] | None:
    """Where in the OCR ``word`` (punctuation around it allowed: "068953794,") nine digits
    stand that may be a passport number whose letter was read as a digit; else None."""
    match = _SUSPECT_WORD_RE.match(word)
    return None if match is None else match.span("token")


# The screenshot's font draws the letter O wider than the digit 0 (10 pixels against 7 at
# 15-pixel text), as proportional fonts do, while every digit has one width: a first glyph at
# least WIDE_GLYPH_SHARE of the other eight's median width is the letter. Past
# MERGED_GLYPH_SHARE it is two glyphs run together, not a letter. A font that draws O and 0
# alike (monospaced) never passes: the number stays digits, as before.
WIDE_GLYPH_SHARE: Final = 1.25
MERGED_GLYPH_SHARE: Final = 1.75


def wide_first_glyph(widths: list[int]) -> bool:
    """Whether the first of nine glyphs of ``widths`` (pixel columns, in order) is wider than
    a digit of the same font: a letter O where OCR read the digit 0."""
    if len(widths) != 9:
        return False
    others = sorted(widths[1:])
    median = (others[3] + others[4]) / 2
    return median > 0 and WIDE_GLYPH_SHARE * median <= widths[0] < MERGED_GLYPH_SHARE * median


# A screen draws one digit the same way each time it occurs (the same pixels; a scan or a
# JPEG nearly so), and a letter differently: a first glyph read as a digit whose pixels
# differ from every other glyph of the word read as that digit, by at least
# UNLIKE_GLYPH_DIFFERENCE (mean difference of grey levels, 0-255; S against 5 is 34, G against
# 6 is 56, the same digit twice 0), is the letter OCR took for that digit.
UNLIKE_GLYPH_DIFFERENCE: Final = 25.0


def unlike_its_twins(differences: list[float]) -> bool:
    """Whether a glyph whose ``differences`` from the other glyphs read as the same digit are
    these is not that digit: it has at least one such twin and differs from each."""
    return bool(differences) and min(differences) >= UNLIKE_GLYPH_DIFFERENCE


def with_leading_letter(reading: str, as_read: str) -> str:
    """``reading`` with its first character, a digit, as the letter OCR reads as the digit
    ``as_read`` starts with (5 is S, 6 G, 8 B, 0 O)."""
    if not reading[:1].isdigit() and reading[:1] != "$":
        return reading
    return _LEADING_LOOKALIKES[as_read[0]][0] + reading[1:]


def passport_from_latin(as_read: str, latin: str) -> str | None:
    """The Latin model's ``latin`` reading of the nine characters OCR gave as ``as_read``,
    when it is a passport number's shape and every character in which the two differ is a
    letter OCR reads as that digit; else None."""
    if len(latin) != len(as_read) or _PASSPORT_SHAPE_RE.fullmatch(latin) is None:
        return None
    lookalikes = {0: _LEADING_LOOKALIKES, 4: _INNER_LOOKALIKES}
    for index, (read, seen) in enumerate(zip(as_read, latin, strict=True)):
        if read != seen and seen not in lookalikes.get(index, {}).get(read, ""):
            return None
    return latin
