"""Context words, Korean and English: what is written just before (or after) a number.

A positive word of the candidate's type raises its confidence; a negative word (phone,
order, invoice, business registration, model...) nearest to the candidate lowers it. Words
are matched case-insensitively on the normalised text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any, Final

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
    """The words as a trie of plain literals (Python's re neither factors alternatives nor
    skips ahead past look-arounds): a longer word wins over its prefix."""
    root: dict[str, dict[str, Any]] = {}
    for word in words:
        node = root
        for char in word.lower():
            node = node.setdefault(char, {})
        node[""] = {}
    return re.compile(_trie_pattern(root))


def _trie_pattern(node: dict[str, dict[str, Any]]) -> str:
    branches = [
        re.escape(char) + _trie_pattern(child) for char, child in sorted(node.items()) if char
    ]
    if not branches:
        return ""
    group = branches[0] if len(branches) == 1 else f"(?:{'|'.join(branches)})"
    if "" in node:
        return f"(?:{group})?" if len(branches) == 1 else f"{group}?"
    return group


def _stands_alone(text: str, match: re.Match[str]) -> bool:
    """ASCII words must stand alone ("arc" not inside "search"); Korean words may be glued
    to particles ("계좌로", "여권의"), so they only need to start the match (callers skip
    this check for them)."""
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


Word = tuple[int, int, frozenset[str]]  # start, end, labels


class ContextIndex:
    """Context words around the candidates of one text.

    The words near a number run (``regions`` from the detector) are found in one scan of the
    run plus its margins and kept sorted, so the many candidates of a table share the work;
    a candidate outside every run (a passport) gets a scan of its own window.
    """

    def __init__(self, text: str, regions: Sequence[tuple[int, int]] = ()) -> None:
        self._text = text
        self._regions = regions
        self._region_starts = [start for start, _ in regions]
        self._region_words: dict[int, tuple[list[int], list[Word]]] = {}
        # The region the previous candidate fell in: finders go left to right, so most
        # candidates of a table land in the same region as the one before them.
        self._last_span = (0, -1)
        self._last_words: tuple[list[int], list[Word]] = ([], [])

    def context_of(self, start: int, end: int, kind: PiiType) -> int:
        """+1 when a positive word of ``kind`` is the nearest context word before the
        candidate on its line, -1 when a negative word is (a tie goes to the negative word);
        with no word before it on its line, the lines above (a table's header row) decide: +1
        when they hold a positive word of ``kind`` anywhere, else -1 when they hold a negative
        one ("이름 주민등록번호 전화" labels a resident number, whatever column comes last);
        0 when no word stands within the window; words just after count when none stand
        before."""
        last_start, last_end = self._last_span
        if last_start <= start and end <= last_end:
            starts, words = self._last_words
        else:
            starts, words = self._words_near(start, end)
        window = max(0, start - CONTEXT_BEFORE_CHARS)
        index = bisect_left(starts, window)
        line_start = self._text.rfind("\n", window, start)  # -1: the line starts before
        limit = end + CONTEXT_AFTER_CHARS
        count = len(words)
        nearest_pos = nearest_neg = -1
        # Words in the lines above and just after: whether any stands there, and of which kind.
        above = above_pos = above_neg = after_pos = after_neg = False
        while index < count:
            word_start, word_end, labels = words[index]
            if word_start >= limit:
                break
            index += 1
            if word_end <= line_start:
                above = True
                above_pos = above_pos or kind in labels
                above_neg = above_neg or NEGATIVE in labels
            elif word_end <= start:
                if kind in labels:
                    nearest_pos = word_end
                if NEGATIVE in labels:
                    nearest_neg = word_end
            elif word_start >= end and word_end <= limit:
                after_pos = after_pos or kind in labels
                after_neg = after_neg or NEGATIVE in labels
        if nearest_pos >= 0 or nearest_neg >= 0:
            return 1 if nearest_pos > nearest_neg else -1
        if above:
            return 1 if above_pos else -1 if above_neg else 0
        if after_pos:
            return 1
        return -1 if after_neg else 0

    def _words_near(self, start: int, end: int) -> tuple[list[int], list[Word]]:
        region = bisect_right(self._region_starts, start) - 1
        if region >= 0 and end <= self._regions[region][1]:
            found = self._region_words.get(region)
            if found is None:
                run_start, run_end = self._regions[region]
                found = self._scan(run_start, run_end)
                self._region_words[region] = found
            self._last_span = self._regions[region]
            self._last_words = found
            return found
        return self._scan(start, end)

    def _scan(self, start: int, end: int) -> tuple[list[int], list[Word]]:
        low = max(0, start - CONTEXT_BEFORE_CHARS)
        span = self._text[low : end + CONTEXT_AFTER_CHARS].lower()
        starts: list[int] = []
        words: list[Word] = []
        for match in _ALL_WORDS.finditer(span):
            word = match.group()
            if word.isascii() and not _stands_alone(span, match):
                continue
            begin, finish = match.span()
            starts.append(low + begin)
            words.append((low + begin, low + finish, _LABELS[word]))
        return starts, words
