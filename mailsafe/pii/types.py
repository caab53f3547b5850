"""The kinds of personal data mailsafe finds, and one finding."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

PiiType = Literal[
    "rrn", "foreigner_id", "driver_license", "passport", "credit_card", "bank_account",
    "health_insurance", "passport_mrz", "phone", "email", "secret",
]  # fmt: skip

# In the order overlapping candidates are resolved: an earlier type wins a tie in confidence.
PII_TYPES: Final[tuple[PiiType, ...]] = (
    "rrn",
    "foreigner_id",
    "credit_card",
    "driver_license",
    "passport",
    "bank_account",
    "health_insurance",
    "passport_mrz",
    "phone",
    "email",
    "secret",
)
# The identifiers of issue 5's six types: one of them alone is personal data. The other kinds
# (phone numbers, e-mail addresses) are normal in business mail until there are many of them.
IDENTIFIER_TYPES: Final[tuple[PiiType, ...]] = PII_TYPES[:6]
# Kinds whose finding is a person's contact: a few are a signature, a list is a customer list.
CONTACT_TYPES: Final[tuple[PiiType, ...]] = ("phone", "email")


@dataclass(frozen=True, init=False)
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

    # The dataclass's own signature (positional, a field named ``type``): callers are unchanged.
    def __init__(  # noqa: PLR0917
        self,
        type: PiiType,  # noqa: A002
        start: int,
        end: int,
        text: str,
        masked: str,
        confidence: float,
    ) -> None:
        # The generated frozen __init__ sets each field through object.__setattr__ (1 us a
        # finding, a tenth of a dense list's scan); writing the instance's dict is the same
        # result, three times faster. Fields still cannot be assigned afterwards.
        fields = self.__dict__
        fields["type"], fields["start"], fields["end"] = type, start, end
        fields["text"], fields["masked"], fields["confidence"] = text, masked, confidence
