"""Issue 19, fifth round (text detector): a resident number's halves apart, a child's number
after a kin word and a given name, barcodes on a product's line (docs/decisions.md, "Text
detector, fifth round"). The rows here are the round's own examples, not its held-out set
(``test_pii_fifth_round_rows.py``).

Every test named "... was missed" or "... was flagged" fails on the detector before this round.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.pii import detect
from mailsafe.pii.checks import (
    child_of_the_2000s,
    ean13_check_digit_ok,
    is_valid_birth_date,
    registration_check_digit_ok,
)
from mailsafe.pii.halves import APART_CHARS
from mailsafe.pii.mask import mask_value


def kinds(text: str) -> list[tuple[str, str]]:
    return [(f.type, f.text) for f in detect(text)]


# ---- 1. halves apart: reversed, far, across a blank line -------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "value"),
    [
        ("주민 뒷자리 2918450, 앞자리 760830", "rrn", "2918450"),
        ("주민등록번호 앞자리: 760830 (생년월일이에요) 그리고 나머지 뒷자리는 보안상 따로 적어"
         " 보내드릴게요. 확인 부탁드립니다. 뒷자리: 2918450", "rrn", "2918450"),  # 40+ apart
        ("앞자리\n760830\n\n뒷자리\n2918450", "rrn", "2918450"),
        ("생년월일: 1976.08.30\n\n주민번호 뒷자리: 2918450", "rrn", "2918450"),
        ("back half 2918450 / front half 760830", "rrn", "2918450"),
        ("외국인등록번호 앞자리: 950228\n\n뒷자리: 6123451", "foreigner_id", "6123451"),
        ("주민번호 뒤 7자리: 2918450\n\n앞 6자리: 760830", "rrn", "2918450"),
        # A look-alike of D94 ("a blank line between: two paragraphs"); both halves labelled.
        ("생년월일 870722\n\n뒷자리 1234567", "rrn", "1234567"),
    ],
)  # fmt: skip
def test_halves_apart_each_under_its_label_were_missed(text: str, kind: str, value: str) -> None:
    assert kinds(text) == [(kind, value)]


def test_halves_apart_keep_a_finding_between_them() -> None:
    text = "주민번호 앞자리: 760830\n휴대폰: 010-2345-6789\n\n주민번호 뒷자리: 2918450"
    assert kinds(text) == [("phone", "010-2345-6789"), ("rrn", "2918450")]


def test_a_second_half_alone_shows_its_gender_digit_only() -> None:
    (finding,) = detect("뒷자리: 2918450\n\n앞자리: 760830")
    assert finding.masked == "2******"
    assert mask_value("２９１８４５０", "rrn") == "２******"
    assert mask_value("6123451", "foreigner_id") == "6******"


@pytest.mark.parametrize(
    "text",
    [
        "계좌 뒷자리 2918450 / 앞자리 760830",  # an account's halves
        "사원번호 뒷자리: 2918450\n\n앞자리: 760830",
        "뒷자리 2918450\n\n입사일 760830",  # the first half unlabelled
        "2918450\n\n앞자리: 760830",  # the second half unlabelled
        "뒷자리: 2918450 앞자리: 761330",  # no such date
        "생년월일: 2016.08.30\n\n뒷자리: 2918450",  # born in the 2000s, a 1900s gender digit
        "뒤로 2918450 앞으로 760830",  # no half words
        "뒷자리: 2918450" + " 다음 항목" * 40 + " 앞자리: 760830",  # further than a form
    ],
)
def test_halves_apart_without_both_labels_or_a_birth_date_stay_out(text: str) -> None:
    assert kinds(text) == []


def test_halves_apart_reach_no_further_than_apart_chars() -> None:
    filler = "가" * (APART_CHARS - len(" 앞자리: "))
    assert kinds(f"뒷자리: 2918450{filler} 앞자리: 760830") == [("rrn", "2918450")]
    assert kinds(f"뒷자리: 2918450{filler}가가 앞자리: 760830") == []


# ---- 2. a child's number after a kin word and the child's given name ------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("부양가족 - 장녀 하린 2211054123457", "2211054123457"),  # post-2020
        ("손자 도현: 2107203123450", "2107203123450"),  # post-2020
        ("아기 2304124123450 출생신고 완료", "2304124123450"),  # the kin word alone
        ("차남 준서 220210-3466448", "220210-3466448"),  # a corporate check digit by chance
        ("막내 아린이 1503014123452", "1503014123452"),  # born 2015, no check digit
    ],
)
def test_a_childs_number_after_a_kin_word_was_missed(text: str, value: str) -> None:
    assert kinds(text) == [("rrn", value)]


@pytest.mark.parametrize(
    "text",
    [
        "딸기우유 2103154823911",  # a kin word inside a word
        "아이템 2103154823911",
        "둘째 줄 2403153234567",  # one syllable: no name
        "자녀 수당 2403153234567",  # what a kin word is about, no name
        "자녀 학자금 2403153234567",
        "아들 민준 9503141234560",  # born 1995 without its check digit: as before, no
        "아이 주문 2403153234567",  # an order's
    ],
)
def test_a_kin_word_before_no_name_or_an_adults_number_stays_out(text: str) -> None:
    assert kinds(text) == []


def test_a_child_of_the_2000s_is_born_2000_to_2039() -> None:
    assert child_of_the_2000s("150301", "3")
    assert child_of_the_2000s("391231", "8")
    assert not child_of_the_2000s("400101", "3")  # Korea's barcodes read as 2088
    assert not child_of_the_2000s("950314", "1")


# ---- 3. a barcode on a product's line ----------------------------------------------------------

# Each holds a valid EAN-13 check digit and, by chance, a resident number's.
_BARCODES = ("8804151344189", "8806111222247", "8804262656911")


def test_the_barcodes_hold_both_check_digits() -> None:
    for code in _BARCODES:
        assert ean13_check_digit_ok(code)
        assert registration_check_digit_ok(code)
        assert is_valid_birth_date(code[:6], code[6])
    assert not ean13_check_digit_ok("8801234567890")


@pytest.mark.parametrize(
    "text",
    [
        "오뚜기 진라면 120g 8804151344189 1,200원",
        "8806111222247\t참치캔\t24개",
        "UPC/EAN 8804262656911",
        "품목: 8804151344189 (냉동)",
    ],
)
def test_a_barcode_on_a_products_line_was_flagged(text: str) -> None:
    assert kinds(text) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("김지훈 8806111222247", [("rrn", "8806111222247")]),  # a name, no product
        ("주민번호 8804262656911 (수량 1)", [("rrn", "8804262656911")]),  # a label decides
        ("환불 대상 8804151344189 35,000원", [("rrn", "8804151344189")]),  # an amount: no product
        ("8806111222247 입니다", [("rrn", "8806111222247")]),  # "입" of 입니다 is no count
        ("8804151344189-1 120g", []),  # glued to "-1": a code, as before this round
    ],
)
def test_a_number_holding_a_barcodes_check_digit_elsewhere_is_read_as_before(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert kinds(text) == expected


# ---- bounded: masking never shows a second half, whatever stands between -------------------

_FILLER = st.text(alphabet="가나다 주민번호앞뒤자리:/\n,.()", max_size=60)


@settings(max_examples=200, deadline=None)
@given(between=_FILLER, reverse=st.booleans())
def test_no_masked_finding_shows_the_second_halfs_six_digits(between: str, reverse: bool) -> None:
    front, back = "앞자리: 760830", "뒷자리: 2918450"
    text = f"{back}{between}{front}" if reverse else f"{front}{between}{back}"
    for finding in detect(text):
        assert "918450" not in finding.masked
