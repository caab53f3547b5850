"""Context words, Korean and English: what is written just before (or after) a number.

A positive word of the candidate's type raises its confidence; a negative word (phone,
order, invoice, business registration, model...) nearest to the candidate lowers it. Words
are matched case-insensitively on the normalised text.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, Final

from mailsafe.pii.types import PiiType

# How far before a candidate a context word may stand: a label and a colon, a short phrase,
# or a table header cell next to it; beyond that the word is likely about something else.
CONTEXT_BEFORE_CHARS: Final = 40
# After a candidate only a short trailer counts, e.g. "110-123-456789 (신한은행)".
CONTEXT_AFTER_CHARS: Final = 16

_BANK_NAMES: Final = (
    "국민은행", "kb국민", "kb은행", "국민", "신한", "우리은행", "우리", "하나은행", "하나",
    "농협", "nh", "기업은행", "ibk", "기업", "카카오뱅크", "카카오", "토스뱅크", "토스",
    "케이뱅크", "k뱅크", "kbank", "sc제일", "sc은행", "제일은행", "씨티", "citi", "우체국",
    "새마을금고", "새마을",
    "신협", "수협", "부산은행", "대구은행", "경남은행", "광주은행", "전북은행", "제주은행",
    "씨티은행", "산업은행", "은행",
)  # fmt: skip
# Labels that name a phone number; for every other kind they say "not this" (see NEGATIVE).
_PHONE_WORDS: Final = (
    "전화번호", "전화", "연락처", "휴대폰", "핸드폰", "휴대전화", "hp", "h.p", "tel", "phone",
    "mobile", "cell", "fax", "팩스", "휴대폰번호", "연락",
)  # fmt: skip
# Marks of a business card and a signature ("☎ 02...", "T. 02...", "M. 010...", "F. 02...")
# and of an office's lines ("대표번호", "직통", "내선" before an extension): they raise a
# phone number only. A letter and a dot are too little to count against another kind
# ("AT&T. 800101-..." is still a resident number), so they are no label of the next number.
_PHONE_MARKS: Final = ("☎", "☏", "📞", "t.", "m.", "f.", "대표번호", "대표전화", "직통", "내선")

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
    "health_insurance": (
        "건강보험증번호", "건강보험증", "건강보험번호", "건강보험", "보험증번호", "보험증",
        "health insurance", "nhis",
    ),
    "phone": (*_PHONE_WORDS, *_PHONE_MARKS),
}  # fmt: skip
# A number's own label, when it names a different kind, wins over the number's shape
# ("카드번호 110-123-456789" is no account). Resident and foreigner labels are left out:
# people label a foreigner's number 주민번호, and the gender digit decides between them.
EXPLICIT_LABELS: Final[tuple[str, ...]] = (
    "카드번호", "계좌번호", "운전면허번호", "면허번호", "여권번호", "건강보험증번호",
    "건강보험번호", "보험증번호", *_PHONE_WORDS,
)  # fmt: skip

NEGATIVE_WORDS: Final[tuple[str, ...]] = (
    "전화", "연락처", "휴대폰", "핸드폰", "휴대전화", "tel", "phone", "mobile", "fax", "팩스",
    "주문번호", "주문", "order", "송장", "운송장", "invoice", "tracking", "배송번호", "택배",
    "사업자", "법인등록", "법인번호", "business registration", "사업자등록번호", "brn",
    "모델", "model", "제품", "상품", "sku", "품번", "일련번호", "serial", "접수번호",
    "문서번호", "문서", "ref", "reference", "티켓", "ticket", "예약번호", "booking",
    "승인번호", "거래번호", "transaction", "part no", "부품", "시리얼",
    # Fourth round: registered mail and parcels ("우체국 등기 6865012345678": the post office
    # is a bank's name too, and its tracking numbers are 13 digits); barcodes (Korea's EAN-13
    # codes begin 880: a birth date in 1988 or 2088).
    "등기", "소포", "바코드", "barcode",
)  # fmt: skip
# Labels of numbers that are no personal data (issue 19). Like EXPLICIT_LABELS they name the
# number right after them: a number further on, past another number, is not theirs.
OTHER_NUMBER_LABELS: Final[tuple[str, ...]] = (
    "법인등록번호", "계약번호", "고객번호", "회원번호", "사번", "사원번호", "직원번호", "제품번호",
    "학번", "관리번호", "증권번호", "청구번호", "발주번호", "견적번호", "영수증", "receipt",
    "contract no", "customer no", "customer id", "employee id", "employee no", "member no",
    "po no", "product no", "item no", "우편번호", "zip",
    # Third round (held-out rows): numbers of forms, shipments, cases and payments.
    "신청번호", "조회번호", "출고번호", "입고번호", "사건번호", "전표번호", "납부번호", "고지번호",
    "인증번호", "쿠폰번호", "등기번호", "과제번호", "처리번호", "민원번호", "lot no", "batch no",
    "case no", "application no",
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
    for word in (*EXPLICIT_LABELS, *OTHER_NUMBER_LABELS):
        labels.setdefault(word.lower(), set()).add(LABEL_OF_NEXT)
    return {word: frozenset(kinds) for word, kinds in labels.items()}


NEGATIVE: Final = "-"
# A label of another kind of number: against a candidate only when no digit stands between
# them ("계좌번호 110-123-456789 김영희 800101-1234567": the account label is not the RRN's).
LABEL_OF_NEXT: Final = "!"
_DIGIT_RE: Final = re.compile(r"\d")
# A word right after a number, a bracket or a Korean particle between ("010-... 로 연락 주세요",
# "02-123-4567 (fax)"): a trailer about that number, not a label of the next one.
_TRAILER_RE: Final = re.compile(r"[0-9][ ()\[\]]*(?:으로|로|에게|에|는|은)?[ ]*\Z")
TRAILER_REACH: Final = 8  # characters before the word: a number, a bracket, a particle
# A value of its own is as long as the shortest kind's (a passport's eight digits; "02-123-4567"
# has nine): "110123456789 신한은행 12345" (a branch code, a memo) keeps the bank name's trailer.
VALUE_DIGITS: Final = 8
# A word after a candidate followed, within a short phrase, by a number of its own: it is the
# label of that next value ("Bank account: 8610-...", "입금 계좌: KB국민은행 207-..."). A
# word followed by words only is a trailer ("110-... 신한은행 예금주: 김영희").
# A date, an amount or a count is no such value ("110123456789 신한은행 2023년 3월").
_OWN_VALUE_RE: Final = re.compile(
    r"[ ]*(?:[^\W\d_]+[ ]*){0,3}[.:：]?[ ]*(?:[^\W\d_]+[ ]*)?[(#]?"
    rf"(?=\d(?:[ .\-]?[0-9A-Z]){{{VALUE_DIGITS - 1}}})\d"  # a passport's letter may be inside
    r"(?![0-9,]*[ ]?(?:년|월|일|원|만|억|천|개|명|건|시|분|초|세|살|층|%))"
)
# A label, a few more words and the value's first VALUE_DIGITS digits with their separators.
OWN_VALUE_REACH: Final = 40
# What separates the cells of a table row in extracted text: XLSX, DOCX, HWPX and HTML cells
# come out tab-separated, CSV files as they were written.
CELL_SEPARATORS: Final = "\t,;|"
_CELL_SEPARATOR_RE: Final = re.compile("[\t,;|]")
# Lines from the top of a table block looked at for its header (a title line may come first).
HEADER_LINES_TRIED: Final = 3
# Blank lines a table block may hold between two rows (HTML rows come out so).
BLANK_LINES_IN_TABLE: Final = 2
_LABELS: Final = _labels()
_AGAINST: Final = frozenset({NEGATIVE, LABEL_OF_NEXT})  # what a header or line above says
# One pattern for every word: a window is scanned once, whatever the candidate's type.
_ALL_WORDS: Final = _alternation(list(_LABELS))
# Number runs with their margins whose context words are remembered (a few hundred kB at most).
WINDOWS_REMEMBERED: Final = 4096


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
        self._columns = ColumnHeaders(text)

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
        limit = end + CONTEXT_AFTER_CHARS
        count = len(words)
        if index == count or starts[index] >= limit:  # no word near: only a header can say
            return self._columns.context_of(start, kind)
        line_start = self._text.rfind("\n", window, start)  # -1: the line starts before
        nearest_pos = nearest_neg = -1
        # Words in the lines above: whether any stands there, and of which kind; words just
        # after, weighed only when nothing else decides (most candidates never need them).
        above = above_pos = above_neg = False
        after: list[Word] = []
        while index < count:
            word_start, word_end, labels = words[index]
            if word_start >= limit:
                break
            index += 1
            if word_end <= line_start:
                above = True
                above_pos = above_pos or kind in labels
                above_neg = above_neg or (not labels.isdisjoint(_AGAINST) and kind not in labels)
            elif word_end <= start:
                if kind in labels:  # a word of the kind's own is never against it
                    nearest_pos = word_end
                elif LABEL_OF_NEXT in labels:
                    if self._labels_next(word_start, word_end, start):
                        nearest_neg = word_end
                elif NEGATIVE in labels:
                    nearest_neg = word_end
            elif word_start >= end and word_end <= limit:
                after.append(words[index - 1])
        on_line = 0 if nearest_pos == nearest_neg else 1 if nearest_pos > nearest_neg else -1
        return self._decided(
            start, kind, nearest=max(nearest_pos, nearest_neg), on_line=on_line,
            above=_vote(above_pos, above_neg) if above else None,
            after=after,
        )  # fmt: skip

    def _labels_next(self, word_start: int, word_end: int, start: int) -> bool:
        """True when the label of another kind (or of a phone number) ending at ``word_end``
        names the candidate at ``start``: its reach stops at the first value after it
        ("Tel. 010 0045 2861 / 26-93-288285-85": the licence is not the phone label's), and
        a phone word right after a number talks about that number ("053-2853-1045 로 연락
        주세요. / 서울 03-698354-69")."""
        if _DIGIT_RE.search(self._text, word_end, start) is not None:
            return False
        before = self._text[max(0, word_start - TRAILER_REACH) : word_start]
        return _TRAILER_RE.search(before) is None

    def _labels_own(self, word_end: int) -> bool:
        """True when the word ending at ``word_end`` (after a candidate) is the label of a
        value of its own that follows it ("... / Bank account: 8610-60-...", "연락처: 010
        ..."), so it says nothing about the candidate before it."""
        return _OWN_VALUE_RE.match(self._text, word_end, word_end + OWN_VALUE_REACH) is not None

    def _decided(
        self, start: int, kind: PiiType, *, nearest: int, on_line: int, above: int | None,
        after: list[Word],
    ) -> int:  # fmt: skip
        """The nearest word on the candidate's line decides, unless it stands in another cell
        of a table row and the column's header says something; then the header, the lines
        above (``None``: no word there), the words just after."""
        if on_line:
            # A word in another cell is about that cell: the column's header says more.
            if _CELL_SEPARATOR_RE.search(self._text, nearest, start) is not None:
                header = self._columns.context_of(start, kind)
                if header:
                    return header
            return on_line
        header = self._columns.context_of(start, kind)
        if header:
            return header
        return self._after_vote(after, kind) if above is None else above

    def _after_vote(self, after: list[Word], kind: PiiType) -> int:
        """What the words just after a candidate say of it: +1 a word of ``kind``, -1 a
        negative word, 0 nothing; a word that labels a value of its own says nothing."""
        positive = negative = False
        for _, word_end, labels in after:
            if kind in labels:
                positive = positive or not self._labels_own(word_end)
            elif NEGATIVE in labels and not negative:
                negative = not self._labels_own(word_end)
        return _vote(positive, negative)

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
        found = _words_in(self._text[low : end + CONTEXT_AFTER_CHARS])
        if not low:
            return [begin for begin, _, _ in found], list(found)
        words = [(low + begin, low + finish, labels) for begin, finish, labels in found]
        return [begin for begin, _, _ in words], words


@lru_cache(maxsize=WINDOWS_REMEMBERED)
def _words_in(span: str) -> tuple[Word, ...]:
    """The context words in ``span``, at positions within it. Remembered by content: quoted
    replies repeat a signature's "연락처 010-1234-5678" once per message in the thread, and
    a template's lines repeat in every mail made from it."""
    lowered = span.lower()
    words: list[Word] = []
    for match in _ALL_WORDS.finditer(lowered):
        word = match.group()
        if word.isascii() and not _stands_alone(lowered, match):
            continue
        begin, finish = match.span()
        words.append((begin, finish, _LABELS[word]))
    return tuple(words)


def _vote(positive: bool, negative: bool) -> int:
    return 1 if positive else -1 if negative else 0


def labels_in(text: str) -> frozenset[str]:
    """Every label of every context word in ``text`` (a header cell)."""
    found: set[str] = set()
    lowered = text.lower()
    for match in _ALL_WORDS.finditer(lowered):
        word = match.group()
        if not word.isascii() or _stands_alone(lowered, match):
            found |= _LABELS[word]
    return frozenset(found)


class ColumnHeaders:
    """The header cell above a table cell: a customer list names its columns once
    ("이름, 주민등록번호, 계좌") and its rows carry no label at all.

    A table is a block of consecutive lines holding the same cell separator; its header is the
    first of its top lines whose cell in the candidate's column holds a context word. Blocks
    and header cells are worked out once per text, so a table's thousand rows share them.
    """

    def __init__(self, text: str) -> None:
        self._text = text
        self._block_top: dict[tuple[int, str], int] = {}  # (line start, separator) -> top line
        self._header_cells: dict[tuple[int, str, int], frozenset[str]] = {}
        self._rows: dict[int, tuple[str, int]] = {}  # line start -> (separator, top line)

    def context_of(self, start: int, kind: PiiType) -> int:
        """+1 when the column's header names ``kind``, -1 when it names something else, else 0."""
        text = self._text
        line_start = text.rfind("\n", 0, start) + 1
        row = self._rows.get(line_start)
        if row is None:
            row = self._rows[line_start] = self._row_at(line_start)
        separator, top = row
        if not separator:
            return 0
        column = text.count(separator, line_start, start)
        labels = self._header_labels(top, line_start, separator, column)
        if kind in labels:
            return 1
        return 0 if labels.isdisjoint(_AGAINST) else -1

    def _row_at(self, line_start: int) -> tuple[str, int]:
        """The line's cell separator ("" for none) and the first line of its table block."""
        text = self._text
        line_end = text.find("\n", line_start)
        line_end = len(text) if line_end < 0 else line_end
        for separator in CELL_SEPARATORS:
            if text.find(separator, line_start, line_end) >= 0:
                return separator, self._top_of(line_start, separator)
        return "", line_start

    def _top_of(self, line_start: int, separator: str) -> int:
        """The first line of the block of lines holding ``separator`` that ``line_start`` is in."""
        text, visited, position = self._text, [], line_start
        while True:
            top = self._block_top.get((position, separator))
            if top is not None:
                break
            visited.append(position)
            previous = self._line_above(position)
            if previous < 0 or text.find(separator, previous, position - 1) < 0:
                top = position
                break
            position = previous
        for line in visited:
            self._block_top[line, separator] = top
        return top

    def _line_above(self, position: int) -> int:
        """The start of the nearest non-blank line above (HTML tables come out with blank
        lines between their rows), or -1."""
        text = self._text
        for _ in range(BLANK_LINES_IN_TABLE + 1):
            if position == 0:
                return -1
            previous = text.rfind("\n", 0, position - 1) + 1
            if not text[previous : position - 1].isspace() and previous < position - 1:
                return previous
            position = previous
        return -1

    def _header_labels(self, top: int, row: int, separator: str, column: int) -> frozenset[str]:
        key = (top, separator, column)
        found = self._header_cells.get(key)
        if found is None:
            found = frozenset()
            position, tried = top, 0
            while tried < HEADER_LINES_TRIED and position < row:
                line_end = self._text.find("\n", position)
                line = self._text[position:line_end]
                position = line_end + 1
                if not line or line.isspace():
                    continue
                tried += 1
                cells = line.split(separator)
                found = labels_in(cells[column]) if column < len(cells) else frozenset()
                if found:
                    break
            self._header_cells[key] = found
        return found


# ---- a person's row: name, number, address (issue 19: post-2020 resident numbers) ----------

# The commonest Korean surnames (over 99 % of people), one syllable or two.
_SURNAMES: Final = frozenset(
    (*"김이박최정강조윤장임한오서신권황안송류유전홍고문양손배백허남심노하곽성차주우구민진나지엄채"
     "원천방공현함변염여추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부태피",
     "남궁", "황보", "제갈", "선우", "독고", "사공", "서문")
)  # fmt: skip
# A name standing alone just before the number: 2-4 syllables, maybe 님 or 씨 (not read as the
# name's last syllable: "이상민님"), then spaces, a tab, a comma, a colon or a bracket. Not
# after ")" or "㈜": "(주)한빛 110111-..." is a company.
_NAME_BEFORE_RE: Final = re.compile(
    r"(?:^|(?<=[ \t,;|/:\n]))([가-힣]{2,4}?)(?:[ ]?(?P<honorific>님|씨))?[ ]*[\t,;|:(]?[ ]*\Z"
)
# Words of business text that begin with a surname's syllable (정산, 고객명, 주문서...): before a
# number they are a line's label, not a name. Read where a name alone says whose number it is.
_NOUNS_LIKE_NAMES: Final = frozenset((
    "정산", "고객", "주문", "배송", "전표", "송장", "조회", "진행", "이용", "이름",
    "신청", "금액", "제품", "모델", "명세", "현황", "정보", "문의", "전체", "변경",
    "기간", "서울", "부산", "대구", "인천", "광주", "대전", "경기", "강원", "전북",
    "전남", "경북", "경남", "제주", "지점", "사업", "사원", "최종", "최근", "오늘",
    "금일", "전일", "우편", "소포", "반품", "안내", "공지", "구분", "유형", "상태",
    "결과", "장비", "차량", "지역", "주소", "연락", "전화", "성명", "성별", "나이",
    "번호", "코드", "기타", "비고", "합계", "총액", "차액", "잔액", "임시", "임대",
    "하자", "마감", "허가", "공사", "공급", "공고", "주간", "월간",
))  # fmt: skip
# What ends a company's or an office's name, and words that stand before a company's name.
_NOT_A_PERSON_RE: Final = re.compile(
    r"(?:건설|산업|상사|전자|화학|물산|기업|회사|그룹|법인|은행|증권|보험|재단|협회|조합|센터|병원"
    r"|학교|공사|공단|사무소|지점|본점|본사|지사|상회|마트|식품|약품|제약|카드)\Z"
)
_COMPANY_BEFORE_RE: Final = re.compile(r"(?:주식회사|유한회사|\(주\)|㈜|법인|회사명|상호)[ ]*\Z")
# A company's name just before the number: "(주)한빛", "㈜ 한빛", "한빛건설", then a separator.
_COMPANY_NAME_BEFORE_RE: Final = re.compile(
    r"(?:(?:\(주\)|㈜)[ ]?[가-힣A-Za-z0-9]{1,10}|[가-힣]{1,8}(?:건설|산업|상사|전자|화학|물산"
    r"|기업|회사|그룹|공사|공단|상회|식품|제약)|[가-힣A-Za-z0-9]{1,10}[ ]?(?:\(주\)|㈜))"
    r"[ ]*[\t,;|:]?[ ]*\Z"
)
NAME_REACH: Final = 16  # a name, 님 and a separator before the number
# An address just after: a province or a city, then a district, town or road
# ("서울시 마포구", "경기도 성남시", "부산광역시 해운대구", "서울 마포구 월드컵로").
_ADDRESS_AFTER_RE: Final = re.compile(
    r"[ ]*[\t,;|]?[ ]*(?:(?:서울|부산|대구|인천|광주|대전|울산|세종|경기|강원|충북|충남|전북|전남"
    r"|경북|경남|제주|충청|전라|경상)[가-힣]{0,5}|[가-힣]{1,4}(?:시|도))"
    r"[ ]+[가-힣0-9]{1,6}(?:시|군|구|동|읍|면|로|길)(?![가-힣])"
)
# Or a mobile number just after: a contact list's row.
_MOBILE_AFTER_RE: Final = re.compile(r"[ ]*[\t,;|/]?[ ]*01[016789][ .\-]?\d{3,4}[ .\-]?\d{4}")
ADDRESS_REACH: Final = 32


def whose_row(text: str, start: int, end: int) -> int:
    """Whose number a registration-shaped number without a check digit is, by what stands
    around it: +1 a person's (their name just before, their address or mobile number just
    after: "김영희 040811-3519915 서울시 마포구", a customer list's row without a label), -1 a
    company's ("(주)한빛 110111-...", "한빛건설 110111-...": a corporate registration
    number), 0 when nothing says."""
    owner, _, _ = _owner_before(text, start)
    if owner <= 0:
        return owner
    after = text[end : end + ADDRESS_REACH]
    person = _ADDRESS_AFTER_RE.match(after) or _MOBILE_AFTER_RE.match(after)
    return 0 if person is None else 1


def named_before(text: str, start: int) -> bool:
    """True when a person's name stands just before ``start`` as a name alone is written: a
    surname and a two-syllable given name ("이도윤"), a two-syllable surname and a given name
    ("남궁민수"), or any name with 님 or 씨; and it is no word of business text that begins like
    one ("정산", "고객명"). Two-syllable words are mostly nouns ("정리", "이번", "김치")."""
    owner, name, honorific = _owner_before(text, start)
    if owner <= 0 or name in _NOUNS_LIKE_NAMES or name[:2] in _NOUNS_LIKE_NAMES:
        return False
    surname = 2 if name[:2] in _SURNAMES else 1
    return honorific or len(name) == surname + 2


# Words for a child or a family member's place among children, as 연말정산 lists and parents
# write them before the child's given name ("아들 민준", "딸: 서연", "둘째 지안", "자녀 이도윤").
_KIN_WORDS: Final = (
    "자녀", "아들", "딸", "첫째", "둘째", "셋째", "넷째", "막내", "장남", "장녀", "차남", "차녀",
    "삼남", "삼녀", "손자", "손녀", "외손자", "외손녀", "조카", "아이", "아기", "애기",
)  # fmt: skip
# A kin word standing alone (not "딸기", "아이디"), then a colon, a bracket or a space, then a
# given name of two to four syllables (any syllables: "시우", "아린"; "민준이" as parents say it)
# or nothing, then the separator before the number. A one-syllable word is no name here
# ("첫째 주", "둘째 날"), so the kin word is no label of a number after such a word.
_KIN_BEFORE_RE: Final = re.compile(
    rf"(?<![가-힣])(?:{'|'.join(sorted(_KIN_WORDS, key=len, reverse=True))})"
    r"(?:[ ]*[:(][ ]*|[ ]+)(?:(?P<name>[가-힣]{2,4})[ ]*[)\t,;|:(]?[ ]*)?\Z"
)


# What follows a kin word in HR and tax mail that is no name: "자녀 수당", "자녀 학자금".
_KIN_MATTERS: Final = frozenset((
    "수당", "학자금", "교육비", "공제", "세액", "명의", "등록", "출생", "보육", "양육", "돌봄",
    "급식", "용돈", "선물", "생일", "일정", "보험", "의료비", "수수료", "관련", "계좌",
))  # fmt: skip


def kin_named_before(text: str, start: int) -> bool:
    """True when a kin word, maybe with the child's given name, stands just before ``start``:
    "아들 민준 2103...", "딸: 2309...", "자녀: 예준, 2301...". The name must not be a word of
    business text or a label ("첫째 주문 2403...")."""
    found = _KIN_BEFORE_RE.search(text, max(0, start - NAME_REACH), start)
    if found is None:
        return False
    name = found.group("name")
    if name is None:
        return True
    return not (
        name in _NOUNS_LIKE_NAMES
        or name[:2] in _NOUNS_LIKE_NAMES
        or name[:2] in _KIN_MATTERS
        or name[:3] in _KIN_MATTERS
        or labels_in(name)
    )


# What a product's line holds beside its barcode: a quantity with a unit ("240g", "5개입",
# "20박스", "500ml") or a word of a product list or an order. An EAN-13 barcode whose digits
# hold a resident number's check digit by chance (one Korean barcode in ninety) is told by
# these; the EAN check digit alone is not enough, one person's number in ten holds it (D104).
_PRODUCT_CUE_RE: Final = re.compile(
    r"(?<![0-9A-Za-z.,])[0-9][0-9.,]*[ ]?(?:개입|개|입|박스|봉|팩|병|캔|포|매|롤|세트"
    r"|(?i:kg|mg|g|ml|l|ea|box|pcs|kcal))(?![가-힣A-Za-z])"
    r"|품목|품명|상품|제품|규격|단가|입수|재고|발주|입고|출고|유통기한|소비기한|제조일|용량|중량|수량"
    r"|(?i:(?<![a-z])(?:ean|gtin|upc)(?![a-z]))"
)
# How far on the number's line a product cue is looked for.
PRODUCT_CUE_BEFORE: Final = 40
PRODUCT_CUE_AFTER: Final = 32


def product_cue_near(text: str, start: int, end: int) -> bool:
    """True when the line of the number at ``start:end`` holds a product cue near it (the
    number itself left out)."""
    line_start = text.rfind("\n", 0, start) + 1
    line_end = text.find("\n", end)
    line_end = len(text) if line_end < 0 else line_end
    before_from = max(line_start, start - PRODUCT_CUE_BEFORE)
    after_to = min(line_end, end + PRODUCT_CUE_AFTER)
    return (
        _PRODUCT_CUE_RE.search(text, before_from, start) is not None
        or _PRODUCT_CUE_RE.search(text, end, after_to) is not None
    )


def _owner_before(text: str, start: int) -> tuple[int, str, bool]:
    """(1, the name, whether 님 or 씨 follows it) when a person's name stands just before
    ``start``; -1 when a company's name stands there or before the name; 0 when neither."""
    before = text[max(0, start - NAME_REACH) : start]
    if _COMPANY_NAME_BEFORE_RE.search(before):
        return -1, "", False
    name = _NAME_BEFORE_RE.search(before)
    if name is None:
        return 0, "", False
    word = name.group(1)
    if word[0] not in _SURNAMES and word[:2] not in _SURNAMES:
        return 0, "", False
    if _NOT_A_PERSON_RE.search(word) or word.lower() in _LABELS:
        return 0, "", False
    name_start = start - len(before) + name.start()
    if _COMPANY_BEFORE_RE.search(text, max(0, name_start - NAME_REACH), name_start):
        return -1, "", False
    return 1, word, name.group("honorific") is not None
