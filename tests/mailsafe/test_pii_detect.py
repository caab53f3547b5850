"""Detectors one by one: shapes, arithmetic, context, normalisation, positions, masking."""

from __future__ import annotations

import itertools
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.pii import PII_TYPES, detect, detectors, mask_text
from mailsafe.pii.checks import is_valid_birth_date, luhn_ok, registration_check_digit_ok
from mailsafe.pii.context import ContextIndex
from mailsafe.pii.detectors import NUMBER_PATTERNS
from mailsafe.pii.normalize import TRANSLATION, normalize


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in detect(text)]


# ---- resident and foreigner registration numbers -------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("주민번호 800101-1234560", [("rrn", "800101-1234560")]),  # check digit valid
        ("주민번호 800101-1234567", [("rrn", "800101-1234567")]),  # post-2020: no check digit
        ("040229-4123456", [("rrn", "040229-4123456")]),  # 29 Feb 2004, digit 4, no context
        ("외국인등록번호 900101-5123456", [("foreigner_id", "900101-5123456")]),
        ("ARC 050505-7123456", [("foreigner_id", "050505-7123456")]),
        ("주민등록번호 8001011234567", [("rrn", "8001011234567")]),  # bare, context
        ("8001011234560", [("rrn", "8001011234560")]),  # bare, check digit holds
        ("800101 1234567", [("rrn", "800101 1234567")]),
    ],
)
def test_registration_numbers_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert kinds(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "주민번호 801301-1234567",  # month 13
        "주민번호 800230-1234567",  # 30 February
        "주민번호 010229-3123456",  # 29 February 2001 (not a leap year)
        "주민번호 800101-9234567",  # gender digit 9 (1800s) is out of scope
        "주민번호 800101-0234567",
        "8001011234567",  # bare, wrong check digit, no context
        "주문번호 8001011234560",  # bare with a check digit, but an order number
        "법인등록번호 110111-1234567",  # corporate number, same layout
        "800101-12345678",  # one digit too many
        "ORD-800101-1234567",  # part of a longer code
    ],
)
def test_registration_lookalikes_refused(text: str) -> None:
    assert [k for k, _ in kinds(text) if k in ("rrn", "foreigner_id")] == []


def test_check_digit_only_raises_confidence() -> None:
    (checked,) = detect("800101-1234560")
    (unchecked,) = detect("800101-1234567")
    assert checked.confidence > unchecked.confidence >= 0.5


def test_birth_date_and_check_digit_arithmetic() -> None:
    assert is_valid_birth_date("000229", "3")  # 2000 is a leap year
    assert not is_valid_birth_date("000229", "1")  # 1900 is not
    assert not is_valid_birth_date("800101", "9")
    assert registration_check_digit_ok("8001011234560")
    assert not registration_check_digit_ok("8001011234567")


# ---- driver's licences -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("운전면허 11-12-345678-90", "11-12-345678-90"),
        ("28-99-123456-01", "28-99-123456-01"),
        ("서울 12-345678-90", "서울 12-345678-90"),
        ("면허: 경기북부 20-123456-78", "경기북부 20-123456-78"),
        ("운전면허번호 111234567890", "111234567890"),
        ("Driver's license 13 12 345678 90", "13 12 345678 90"),
    ],
)
def test_driver_licenses_found(text: str, value: str) -> None:
    assert kinds(text) == [("driver_license", value)]


@pytest.mark.parametrize(
    "text",
    ["10-12-345678-90", "29-12-345678-90", "111234567890", "주문번호 11-12-345678-90"],
)
def test_driver_license_lookalikes_refused(text: str) -> None:
    assert kinds(text) == []


# ---- passports -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("여권번호 M12345678", "M12345678"),
        ("Passport: M123A4567", "M123A4567"),
        ("S98765432 만료 2030", "S98765432"),
        ("여권 ｍ１２３ａ４５６７".upper(), "Ｍ１２３Ａ４５６７"),
    ],
)
def test_passports_found(text: str, value: str) -> None:
    assert kinds(text) == [("passport", value)]


@pytest.mark.parametrize(
    "text",
    ["M1234567", "M123456789", "MX12345678", "A12345678", "모델 M12345678", "SKU M123A4567"],
)
def test_passport_lookalikes_refused(text: str) -> None:
    assert kinds(text) == []


# ---- cards -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        "4111-1111-1111-1111",
        "4111 1111 1111 1111",
        "4111111111111111",
        "5555 5555 5555 4444",
        "3782-822463-10005",  # Amex 4-6-5
        "9410-1234-5678-9010",  # domestic (BC) card
        "4111.1111.1111.1111",
    ],
)
def test_cards_found(value: str) -> None:
    assert luhn_ok("".join(ch for ch in value if ch.isdigit()))
    assert kinds(f"카드번호 {value}") == [("credit_card", value)]


@pytest.mark.parametrize(
    "text",
    [
        "카드번호 4111-1111-1111-1112",  # Luhn fails
        "1111-1111-1111-1117",  # Luhn holds, no issuer starts with 1
        "4111-1111 1111-1111",  # mixed separators are not one number
        "주문번호 4111111111111111",  # negative context outweighs a bare number
        "4824249148486d24246d48",  # Luhn-valid digits inside a hex dump
    ],
)
def test_card_lookalikes_refused(text: str) -> None:
    assert [k for k, _ in kinds(text) if k == "credit_card"] == []


# ---- bank accounts ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("신한은행 110-123-456789", "110-123-456789"),
        ("입금 계좌: 우리은행 1002-123-456789", "1002-123-456789"),
        ("카카오뱅크 3333-12-1234567 (예금주 홍길동)", "3333-12-1234567"),
        ("계좌번호 123456789012", "123456789012"),
        ("Please wire to account 123-456789-12345.", "123-456789-12345"),
        ("110-123-456789 (신한은행)", "110-123-456789"),
    ],
)
def test_bank_accounts_found(text: str, value: str) -> None:
    assert kinds(text) == [("bank_account", value)]


@pytest.mark.parametrize(
    "text",
    [
        "110-123-456789",  # a bank layout, but nothing says it is an account
        "입금 확인은 010-1234-5678 로 문자 주세요",  # phone number beside a bank word
        "계좌 문의 02-123-4567",
        "입금 후 01012345678 로 연락",
        "사업자등록번호 123-45-67890",
        "송장번호 6123-4567-8901",
    ],
)
def test_bank_lookalikes_refused(text: str) -> None:
    # Phone numbers are a kind of their own since issue 19 (see test_phones_found).
    assert [k for k in kinds(text) if k[0] != "phone"] == []


# ---- normalisation, positions, counts, masking -----------------------------------------------


def test_fullwidth_digits_and_odd_separators() -> None:
    for text in (
        "８００１０１－１２３４５６０",
        "800101–1234560",
        "800101 - 1234560",
        "800101\u200b-1234560",
    ):
        (finding,) = detect(text)
        assert finding.type == "rrn"
        assert finding.text == text  # the original characters, not the normalised ones


def test_normalisation_keeps_length() -> None:
    text = "８００１０１－１２３４５６０\u3000Ｍ１２３Ａ４５６７"
    assert len(normalize(text)) == len(text)
    assert normalize(text) == "800101-1234560 M123A4567"


def test_every_lookalike_is_outside_ascii() -> None:
    """normalize() returns ASCII text untouched without searching it: that holds only while
    no ASCII character is mapped."""
    assert all(codepoint >= 0x80 for codepoint in TRANSLATION)
    assert normalize("800101-1234560 M123A4567") == "800101-1234560 M123A4567"


def test_positions_point_into_original_text() -> None:
    text = "신청인: 홍길동, 주민번호 ８００１０１－１２３４５６０, 카드 4111-1111-1111-1111."
    findings = detect(text)
    assert [f.type for f in findings] == ["rrn", "credit_card"]
    for finding in findings:
        assert text[finding.start : finding.end] == finding.text


def test_counts_each_occurrence() -> None:
    text = "\n".join(f"직원{i}, 8{i}0101-1234567" for i in range(5))
    assert [f.type for f in detect(text)] == ["rrn"] * 5


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("800101-1234560", "800101-1******"),
        ("９００１０１－５１２３４５６", "９００１０１－５******"),
        ("4111-1111-1111-1111", "4111-****-****-1111"),
        ("서울 12-345678-90", "서울 12-******-**"),
        ("11-12-345678-90", "11-**-******-**"),
        ("M123A4567", "M12******"),
    ],
)
def test_masking(text: str, masked: str) -> None:
    (finding,) = detect(text)
    assert finding.masked == masked


def test_mask_text_replaces_every_finding() -> None:
    text = "주민번호 800101-1234560, 신한은행 110-123-456789"
    assert mask_text(text, detect(text)) == "주민번호 800101-1******, 신한은행 110-***-******"


def test_overlap_keeps_one_finding() -> None:
    # 13 digits with a bank word: a valid bare RRN beats a bare bank number.
    findings = detect("급여 계좌 주민번호 8001011234560")
    assert [(f.type, f.text) for f in findings] == [("rrn", "8001011234560")]


def test_no_digits_no_work() -> None:
    assert detect("주민등록번호 없음 " * 1000) == []


def test_types_are_the_contract() -> None:
    assert set(PII_TYPES) == {
        "rrn", "foreigner_id", "driver_license", "passport", "credit_card", "bank_account",
        "health_insurance", "passport_mrz", "phone", "email", "secret",
    }  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["800101-1234560", "４１１１ １１１１ １１１１ １１１１", "계좌 ", "주민번호 ", "M123A4567", " ", "-",
             "010-1234-5678", "서울 ", "12-345678-90", "abc", "１２", "\u200b"]
        )
        | st.text(max_size=8),
        max_size=12,
    ).map("".join)
)  # fmt: skip
def test_findings_are_consistent_on_any_text(text: str) -> None:
    findings = detect(text)
    for finding in findings:
        assert text[finding.start : finding.end] == finding.text
        assert len(finding.masked) == len(finding.text)
        assert 0.5 <= finding.confidence <= 1.0
    for first, second in itertools.pairwise(findings):
        assert first.end <= second.start


# ---- the one-pass number search is exactly one finditer pass per pattern --------------------


def _one_pass_per_pattern(text: str, regions: list[tuple[int, int]]) -> list[tuple[int, int]]:
    spans = []
    for pattern, _, _ in NUMBER_PATTERNS:
        for start, end in regions:
            spans.extend(m.span() for m in pattern.finditer(text, start, end + 2))
    return sorted(spans)


def _matched_spans(text: str) -> list[tuple[int, int]]:
    """Spans find_numbers tried to check: its matches, found by recording every check."""
    spans: list[tuple[int, int]] = []
    recorded = [
        (pattern, lambda m, _c: spans.append(m.span()), lengths)
        for pattern, _, lengths in NUMBER_PATTERNS
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(detectors, "NUMBER_PATTERNS", tuple(recorded))
        list(detectors.find_numbers(text, ContextIndex(text), detectors.number_runs(text)))
    return sorted(spans)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["800101", "1234567", "4111", "1111", "110", "12", "345678", "90", "11", "0123456789",
             "-", " ", ".", " - ", "a", "M", "\u0663", "\n", "신한 ", "28", "29", "10", "5",
             "1234", "  "]
        ),
        max_size=14,
    ).map("".join)
)  # fmt: skip
def test_number_starts_pass_matches_one_pass_per_pattern(text: str) -> None:
    # Run lengths decide which patterns are tried; that must never skip a match.
    regions = detectors.number_runs(text)
    assert _matched_spans(text) == _one_pass_per_pattern(text, regions)


@settings(max_examples=400, deadline=None)
@given(
    st.lists(
        st.sampled_from(
            ["M", "m", "S", "g", "O", "a", "Z", "x", "A", "1234", "12345678", "0", "9", "123",
             " ", "-", ".", "  ", "M123A4567", "m12345678", "\n", "#", "_"]
        ),
        max_size=16,
    ).map("".join)
)  # fmt: skip
def test_ascii_shape_finds_what_the_patterns_find(text: str) -> None:
    """ASCII text is searched through its shape; on any ASCII text that finds exactly the
    runs, passports and four-digit groups the patterns find on the text itself."""
    shape = detectors.ascii_shape(text)
    assert shape is not None
    assert len(shape) == len(text)
    shape_runs = [m.span() for m in detectors._NUMBER_RUN_SHAPE_RE.finditer(shape)]
    assert shape_runs == [m.span() for m in detectors._NUMBER_RUN_RE.finditer(text)]
    shape_passports = [m.span() for m in detectors._PASSPORT_SHAPE_RE.finditer(shape)]
    assert shape_passports == [m.span() for m in detectors._PASSPORT_RE.finditer(text)]
    has_four = re.search(r"\d\d\d\d", text) is not None
    assert (detectors.FOUR_DIGITS_SHAPE in shape) == has_four


def test_only_ascii_text_has_a_shape() -> None:
    assert detectors.ascii_shape("주민번호 800101-1234560") is None
    assert detectors.ascii_shape("M12345678 ab-4111.") == "M00000000 aa-0000."


def test_number_starts_pass_finds_numbers_after_non_ascii_digits() -> None:
    text = "\u0663800101-1234567 \u06634111-1111-1111-1111"
    assert _matched_spans(text) == _one_pass_per_pattern(text, detectors.number_runs(text))
    assert len(_matched_spans(text)) >= 2


def test_a_table_header_labels_every_row_whatever_column_comes_last() -> None:
    """The header's last cell ("전화") is the nearest word before the first row, but the
    header as a whole labels the columns: every row's resident and card number is found.
    A label on the number's own line still decides."""
    table = (
        "이름\t주민등록번호\t카드번호\t전화\n"
        "김철수\t970501-1269910\t4789-9143-3014-6730\t010-1763-3887\n"
        "이영희\t710616-1367065\t4649-0092-3565-8457\t010-6800-6114\n"
    )
    found = [(f.type, f.text) for f in detect(table)]
    assert found == [
        ("rrn", "970501-1269910"), ("credit_card", "4789-9143-3014-6730"),
        ("phone", "010-1763-3887"),  # a kind of its own since issue 19
        ("rrn", "710616-1367065"), ("credit_card", "4649-0092-3565-8457"),
        ("phone", "010-6800-6114"),
    ]  # fmt: skip
    assert detect("주민등록번호 목록\n주문번호 970501-1269910") == []  # its own line's label
    assert detect("전화 문의\n9705011269910") == []  # a header with only a negative word
