"""Landline numbers in the forms Koreans write them (issue 19, Done line 1): a bracketed area
code, a closing bracket only, a telephone mark or a business card's letter before it, an
extension kept apart, the "+82" form; and the bracketed look-alikes (list items, years,
amounts) refused.

Every bracketed form was missed: the bracket breaks the run of digits the number finders
look in, so "(02) 1234-5678" was never a candidate (29 of the labelled set's 244 phones).
"""

from __future__ import annotations

import pytest

from mailsafe.pii import detect
from mailsafe.pii.checks import registration_check_digit_ok


def phones(text: str) -> list[tuple[str, str]]:
    return [(f.text, f.masked) for f in detect(text) if f.type == "phone"]


@pytest.mark.parametrize(
    ("text", "value", "masked"),
    [
        ("연락처: (02) 1234-5678", "02) 1234-5678", "02) ****-****"),
        ("(02) 1234-5678", "02) 1234-5678", "02) ****-****"),
        ("담당자 (031)123-4567", "031)123-4567", "031)***-****"),
        ("(031) 123 4567 로 연락 주세요", "031) 123 4567", "031) *** ****"),
        ("(02)-1234-5678", "02)-1234-5678", "02)-****-****"),
        ("(051)234.5678", "051)234.5678", "051)***.****"),
        ("(010) 1234-5678", "010) 1234-5678", "010) ****-****"),
        ("（02）1234－5678", "02）1234－5678", "02）****－****"),
        ("Call me at (070) 1234-5678 after 3pm.", "070) 1234-5678", "070) ****-****"),
        ("연락처 (02)12345678", "02)12345678", "02)********"),
    ],
)
def test_bracketed_area_codes(text: str, value: str, masked: str) -> None:
    """Found, and masked to the area code: the digits after the bracket are hidden."""
    assert phones(text) == [(value, masked)]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("02)1234-5678", "02)1234-5678"),
        ("담당 김민지 031)123-4567", "031)123-4567"),
    ],
)
def test_closing_bracket_only(text: str, value: str) -> None:
    assert [found for found, _ in phones(text)] == [value]


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("☎ 0212345678", "0212345678"),
        ("☏0312345678", "0312345678"),
        ("T. 0212345678", "0212345678"),
        ("F. 0312345678", "0312345678"),
        ("Tel. 0212345678", "0212345678"),
        ("직통 0212345678", "0212345678"),
        ("대표번호 0212345678", "0212345678"),
    ],
)
def test_telephone_marks_label_a_bare_landline(text: str, value: str) -> None:
    """A bare landline needs a word saying it is one; these marks are such words."""
    assert [found for found, _ in phones(text)] == [value]
    assert phones(value) == []  # the control: bare, it is nothing


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("02-1234-5678 내선 123", "02-1234-5678"),
        ("☎ 02-1234-5678(내선 1234)", "02-1234-5678"),
        ("(02) 1234-5678 내선 12", "02) 1234-5678"),
        ("Tel. 02-123-4567 ext. 4321", "02-123-4567"),
    ],
)
def test_an_extension_is_kept_apart(text: str, value: str) -> None:
    """The number is found without its extension, and the extension is no finding."""
    assert [(f.type, f.text) for f in detect(text)] == [("phone", value)]


@pytest.mark.parametrize(
    "text",
    [
        "(2023) 1234-5678",  # a year in brackets
        "(12) 3456-7890",  # a list item: no area code
        "(03) 1234-5678",  # no such area code
        "제2항 (02) 1998-2003",  # item 2, then a span of years
        "(02) 1000-2000원",  # an amount
        "(031) 1500-3000 개",  # a count
        "주문번호 (02) 1234-5678",  # a bracketed order number under its label
        "A(02)1234-5678",  # a code: a letter glued on
        "(02) 1234-56789",  # too long
    ],
)
def test_bracketed_lookalikes_refused(text: str) -> None:
    assert phones(text) == []


@pytest.mark.parametrize(
    ("text", "value", "masked"),
    [
        ("Mobile +82-10-1234-5678", "+82-10-1234-5678", "+82-10-****-****"),
        ("T. +82 2 1234 5678", "+82 2 1234 5678", "+82 2 **** ****"),
        ("+82 (0)2 1234 5678", "+82 (0)2 1234 5678", "+82 (0)2 **** ****"),
        ("+82.31.123.4567", "+82.31.123.4567", "+82.31.***.****"),
        ("+821012345678", "+821012345678", "+8210********"),
    ],
)
def test_numbers_written_for_abroad(text: str, value: str, masked: str) -> None:
    """A signature's "+82" form was missed: the digit before "10" or "2" ended every match."""
    assert phones(text) == [(value, masked)]


@pytest.mark.parametrize("text", ["+82-2-1234-56789", "+8210123456789", "주문번호 +82-2-123-4567"])
def test_international_lookalikes_refused(text: str) -> None:
    assert phones(text) == []


def test_a_letter_mark_does_not_hide_a_resident_number() -> None:
    """ "T." raises a phone number; it is no label overriding a resident number's check digit."""
    twelve = "800101123456"
    rrn = twelve + next(d for d in "0123456789" if registration_check_digit_ok(twelve + d))
    text = f"AT&T. {rrn[:6]}-{rrn[6:]}"
    assert [(f.type, f.text) for f in detect(text)] == [("rrn", f"{rrn[:6]}-{rrn[6:]}")]
