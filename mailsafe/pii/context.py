"""Context words, Korean and English: what is written just before (or after) a number.

A positive word of the candidate's type raises its confidence; a negative word (phone,
order, invoice, business registration, model...) nearest to the candidate lowers it. Words
are matched case-insensitively on the normalised text.
"""

from __future__ import annotations

import re
from typing import Final

from mailsafe.pii.types import PiiType

# How far before a candidate a context word may stand: a label and a colon, a short phrase,
# or a table header cell next to it; beyond that the word is likely about something else.
CONTEXT_BEFORE_CHARS: Final = 40
# After a candidate only a short trailer counts, e.g. "110-123-456789 (신한은행)".
CONTEXT_AFTER_CHARS: Final = 16

_BANK_NAMES: Final = (
    "국민은행", "kb국민", "신한", "우리은행", "하나은행", "농협", "nh", "기업은행", "ibk",
    "카카오뱅크", "토스뱅크", "케이뱅크", "sc제일", "제일은행", "우체국", "새마을금고",
    "신협", "수협", "부산은행", "대구은행", "경남은행", "광주은행", "전북은행", "제주은행",
    "씨티은행", "산업은행", "은행",
)  # fmt: skip

POSITIVE_WORDS: Final[dict[PiiType, tuple[str, ...]]] = {
    "rrn": (
        "주민등록번호", "주민번호", "주민등록", "주민", "생년월일", "resident registration",
        "registration no", "rrn", "ssn", "national id",
    ),
    "foreigner_id": (
        "외국인등록번호", "외국인등록", "외국인번호", "외국인", "alien registration",
        "foreigner registration", "foreign resident", "arc", "frn",
    ),
    "driver_license": (
        "운전면허번호", "운전면허", "면허번호", "면허증", "면허", "driver's license",
        "driver license", "drivers license", "driving licence", "driving license", "licence no",
        "license no", "license number", "licence number", "dl no",
    ),
    "passport": ("여권번호", "여권", "passport"),
    "credit_card": (
        "카드번호", "신용카드", "체크카드", "법인카드", "카드", "결제", "credit card", "debit card",
        "card number", "card no", "card", "visa", "mastercard", "amex", "결제수단",
    ),
    "bank_account": (
        "계좌번호", "계좌", "입금", "송금", "이체", "예금주", "통장", "환불", "account",
        "acct", "bank", "deposit", "wire", "transfer", *_BANK_NAMES,
    ),
}  # fmt: skip

NEGATIVE_WORDS: Final[tuple[str, ...]] = (
    "전화", "연락처", "휴대폰", "핸드폰", "휴대전화", "tel", "phone", "mobile", "fax", "팩스",
    "주문번호", "주문", "order", "송장", "운송장", "invoice", "tracking", "배송번호", "택배",
    "사업자", "법인등록", "법인번호", "business registration", "사업자등록번호", "brn",
    "모델", "model", "제품", "상품", "sku", "품번", "일련번호", "serial", "접수번호",
    "문서번호", "문서", "ref", "reference", "티켓", "ticket", "예약번호", "booking",
    "승인번호", "거래번호", "transaction", "part no", "부품", "시리얼",
)  # fmt: skip


def _alternation(words: list[str]) -> re.Pattern[str]:
    """Plain literals, longest first: with no look-arounds the engine can skip ahead to
    the possible first characters, several times faster on long texts."""
    ordered = sorted(set(words), key=len, reverse=True)
    return re.compile("|".join(re.escape(w.lower()) for w in ordered))


def _stands_alone(text: str, match: re.Match[str]) -> bool:
    """ASCII words must stand alone ("arc" not inside "search"); Korean words may be glued
    to particles ("계좌로", "여권의"), so they only need to start the match."""
    if not match.group().isascii():
        return True
    before = text[match.start() - 1 : match.start()]
    after = text[match.end() : match.end() + 1]
    return not (before.isascii() and before.isalpha()) and not (after.isascii() and after.isalpha())


def _labels() -> dict[str, frozenset[str]]:
    """Each context word (lower case) -> the types it supports, and "-" if it is negative."""
    labels: dict[str, set[str]] = {}
    for kind, words in POSITIVE_WORDS.items():
        for word in words:
            labels.setdefault(word.lower(), set()).add(kind)
    for word in NEGATIVE_WORDS:
        labels.setdefault(word.lower(), set()).add(NEGATIVE)
    return {word: frozenset(kinds) for word, kinds in labels.items()}


NEGATIVE: Final = "-"
_LABELS: Final = _labels()
# One pattern for every word: a window is scanned once, whatever the candidate's type.
_ALL_WORDS: Final = _alternation(list(_LABELS))


class ContextIndex:
    """Context words around candidates of one text; windows are scanned once and remembered
    (a table of numbers asks about the same window for several types)."""

    def __init__(self, text: str) -> None:
        self._text = text
        self._before: dict[int, list[tuple[int, frozenset[str]]]] = {}
        self._after: dict[int, list[frozenset[str]]] = {}

    def context_of(self, start: int, end: int, kind: PiiType) -> int:
        """+1 when a positive word of ``kind`` is the nearest context word before the
        candidate, -1 when a negative word is (a tie goes to the negative word), 0 when
        neither stands within the window; words just after count when none stand before."""
        nearest_pos = nearest_neg = -1
        for word_end, labels in self._words_before(start):
            if kind in labels:
                nearest_pos = word_end
            if NEGATIVE in labels:
                nearest_neg = word_end
        if nearest_pos < 0 and nearest_neg < 0:
            after = self._words_after(end)
            if any(kind in labels for labels in after):
                return 1
            return -1 if any(NEGATIVE in labels for labels in after) else 0
        return 1 if nearest_pos > nearest_neg else -1

    def _words_before(self, start: int) -> list[tuple[int, frozenset[str]]]:
        found = self._before.get(start)
        if found is None:
            window = self._text[max(0, start - CONTEXT_BEFORE_CHARS) : start].lower()
            found = [
                (m.end(), _LABELS[m.group()])
                for m in _ALL_WORDS.finditer(window)
                if _stands_alone(window, m)
            ]
            self._before[start] = found
        return found

    def _words_after(self, end: int) -> list[frozenset[str]]:
        found = self._after.get(end)
        if found is None:
            window = self._text[end : end + CONTEXT_AFTER_CHARS].lower()
            found = [
                _LABELS[m.group()]
                for m in _ALL_WORDS.finditer(window)
                if _stands_alone(window, m)
            ]
            self._after[end] = found
        return found
