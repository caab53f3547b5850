"""The kinds of personal data mailsafe finds, and one finding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PiiType = Literal[
    "rrn", "foreigner_id", "driver_license", "passport", "credit_card", "bank_account"
]

# In the order overlapping candidates are resolved: an earlier type wins a tie in confidence.
PII_TYPES: Final[tuple[PiiType, ...]] = (
    "rrn",
    "foreigner_id",
    "credit_card",
    "driver_license",
    "passport",
    "bank_account",
)


@dataclass(frozen=True)
class Finding:
    """One piece of personal data in a text.

    ``text`` is the match exactly as found (only ``maildiode scan --json`` shows it);
    ``masked`` is what logs, approval mails and web pages show.
    """

    type: PiiType
    start: int
    end: int
    text: str
    masked: str
    confidence: float
