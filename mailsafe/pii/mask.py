"""Masking: what logs, approval mails and web pages show instead of the number."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from mailsafe.pii.normalize import normalize
from mailsafe.pii.types import Finding, PiiType

MASK_CHAR: Final = "*"
_ALPHANUMERIC: Final = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# (leading, trailing) letters and digits left visible per type: enough to tell which record
# an approver is looking at (birth date and gender; card issuer and last four), no more.
VISIBLE: Final[dict[PiiType, tuple[int, int]]] = {
    "rrn": (7, 0),  # 800101-1******
    "foreigner_id": (7, 0),  # 800101-5******
    "driver_license": (2, 0),  # 11-**-******-** ; 서울 12-******-**
    "passport": (3, 0),  # M12******
    "credit_card": (4, 4),  # 4111-****-****-1111
    "bank_account": (3, 0),  # 110-***-******
}


def mask_value(value: str, kind: PiiType, plain: str | None = None) -> str:
    """Hide the letters and digits of ``value`` except the visible ones; keep separators.
    ``plain`` is ``value`` normalised, when the caller has it already."""
    lead, trail = VISIBLE[kind]
    plain = normalize(value) if plain is None else plain
    # Only ASCII letters and digits count: "서울 12-..." keeps the region name and "12".
    significant = [i for i, ch in enumerate(plain) if ch in _ALPHANUMERIC]
    out = list(value)
    for index in significant[lead : len(significant) - trail]:
        out[index] = MASK_CHAR
    return "".join(out)


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
