"""Masking: what logs, approval mails and web pages show instead of the number."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

from mailsafe.pii.normalize import normalize
from mailsafe.pii.types import Finding, PiiType

MASK_CHAR: Final = "*"
# Every ASCII letter and digit to the mask character (a translation: no regex per finding).
_HIDE_SIGNIFICANT: Final = str.maketrans(
    dict.fromkeys("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz", MASK_CHAR)
)
# Every character but spaces and line breaks: a private key keeps its line count, not its text.
_VISIBLE_CHARACTER_RE: Final = re.compile(r"\S")
# (leading, trailing) letters and digits left visible per type: enough to tell which record
# an approver is looking at (birth date and gender; card issuer and last four), no more.
VISIBLE: Final[dict[PiiType, tuple[int, int]]] = {
    "rrn": (7, 0),  # 800101-1******
    "foreigner_id": (7, 0),  # 800101-5******
    "driver_license": (2, 0),  # 11-**-******-** ; 서울 12-******-**
    "passport": (3, 0),  # M12******
    "credit_card": (4, 4),  # 4111-****-****-1111
    "bank_account": (3, 0),  # 110-***-******
    "health_insurance": (2, 0),  # 12*********
    "passport_mrz": (2, 0),  # P<******<<*******<<<... ; M1*******<**...
    "phone": (3, 0),  # 010-****-**** ; 02-1**-****
    "email": (1, 0),  # h*******@example.com: the domain stays (see mask_value)
    "secret": (1, 0),  # never used: a secret shows nothing (see mask_value)
}


def mask_value(value: str, kind: PiiType, plain: str | None = None) -> str:
    """Hide the letters and digits of ``value`` except the visible ones; keep separators.
    ``plain`` is ``value`` normalised, when the caller has it already."""
    if kind == "secret":  # nothing of a password or key helps an approver
        return _VISIBLE_CHARACTER_RE.sub(MASK_CHAR, value)
    if kind == "email":  # the domain names the firm, not the person
        local, at, domain = value.rpartition("@")
        return _mask_significant(local, "email", normalize(local)) + at + domain if at else value
    plain = normalize(value) if plain is None else plain
    if kind in _REGISTRATION_KINDS and len(plain) == BACK_HALF_DIGITS and plain.isdigit():
        # A registration number's second half alone (its halves apart, mailsafe.pii.halves):
        # the gender digit shows, as in 800101-1******; the seven leading digits would be all.
        return value[:1] + MASK_CHAR * (BACK_HALF_DIGITS - 1)
    return _mask_significant(value, kind, plain)


_REGISTRATION_KINDS: Final = frozenset({"rrn", "foreigner_id"})
BACK_HALF_DIGITS: Final = 7  # a gender digit and six more


def _mask_significant(value: str, kind: PiiType, plain: str) -> str:
    """``value`` with its ASCII letters and digits hidden but ``VISIBLE[kind]`` of them."""
    trail = VISIBLE[kind][1]
    # Only ASCII letters and digits count: "서울 12-..." keeps the region name and "12".
    # Every type shows some (runs per finding). A phone's prefix written apart ("0 1 0 1 2 3 ...",
    # found by the evasion pass) shows its first significant characters as any other type
    # does; a value with no head to show is hidden whole, never shown whole.
    shown_head = _SHOWN_HEAD[kind].match(plain) or _NTH_SIGNIFICANT[VISIBLE[kind][0]].match(plain)
    first_hidden = 0 if shown_head is None else shown_head.end()
    last_hidden = len(plain) - _after_nth_significant(plain[::-1], trail) if trail else len(plain)
    if first_hidden >= last_hidden:
        return value
    middle = plain[first_hidden:last_hidden].translate(_HIDE_SIGNIFICANT)
    if value != plain:
        # Separators are kept as written (a full-width hyphen stays full-width).
        middle = "".join(
            MASK_CHAR if masked == MASK_CHAR and original != MASK_CHAR else original
            for original, masked in zip(value[first_hidden:last_hidden], middle, strict=True)
        )
    return value[:first_hidden] + middle + value[last_hidden:]


def _after_nth_significant(text: str, count: int) -> int:
    """Index just after the ``count``-th ASCII letter or digit of ``text`` (0 for none)."""
    if count == 0:
        return 0
    pattern = _NTH_SIGNIFICANT.get(count)
    if pattern is None:
        pattern = _NTH_SIGNIFICANT[count] = _nth_significant_re(count)
    found = pattern.match(text)
    return len(text) if found is None else found.end()


def _nth_significant_re(count: int) -> re.Pattern[str]:
    # Unrolled rather than "(?:...){n}": re runs a repeated group far slower than a sequence.
    return re.compile("[^0-9A-Za-z]*[0-9A-Za-z]" * count)


# One pattern per count in VISIBLE (a match is a C loop; this runs twice per finding).
_NTH_SIGNIFICANT: Final[dict[int, re.Pattern[str]]] = {
    count: _nth_significant_re(count) for pair in VISIBLE.values() for count in pair if count
}
# Each type's leading visible part (VISIBLE leads are never 0).
_SHOWN_HEAD: Final[dict[PiiType, re.Pattern[str]]] = {
    **{kind: _NTH_SIGNIFICANT[lead] for kind, (lead, _) in VISIBLE.items()},
    # The area or mobile prefix: 02-***-****, +82-10-****-****, +82 (0)2 **** ****.
    "phone": re.compile(r"02|0[0-9]{2}|\+82[ .\-]?(?:\(0\)[ ]?)?(?:1[016789]|2|[3-7][0-9])"),
}


def mask_text(text: str, findings: Iterable[Finding]) -> str:
    """``text`` with every finding replaced by its masked form (findings must not overlap)."""
    pieces: list[str] = []
    position = 0
    for finding in sorted(findings, key=lambda f: f.start):
        if finding.start < position:
            continue
        pieces.append(text[position : finding.start])
        pieces.append(finding.masked)
        position = finding.end
    pieces.append(text[position:])
    return "".join(pieces)
