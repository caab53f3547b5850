"""Which letters start a Korean passport number (A4, defect 2; decision "Passport letters: the
documented six, no B").

What Korea issues: M (복수, multiple), S (단수, single), R (거주, resident), G (관용, government),
D (외교관, diplomatic) -- the passport office's own list (passport.go.kr, "여권 번호") -- and
O (official), which Microsoft Purview's Korean passport type accepts; the 2021 passports keep
the letter and put another inside (M123A4567). The finder takes exactly these six. B is in no
list: nine characters led by B (a part number, a ticket) stay what they are, as do the other
letters product codes use.
"""

from __future__ import annotations

import pytest

from mailsafe.pii import detect


def passports(text: str) -> list[str]:
    return [f.text for f in detect(text) if f.type == "passport"]


@pytest.mark.parametrize("letter", list("MSRGDO"))
@pytest.mark.parametrize(("digits", "labelled"), [("38218102", False), ("548H5935", True)])
def test_each_documented_letter_starts_a_passport_number_in_both_forms(
    letter: str, digits: str, labelled: bool
) -> None:
    number = letter + digits
    text = f"여권번호: {number}" if labelled else f"출장자 {number} 2030-05-01 만료"
    assert passports(text) == [number]


@pytest.mark.parametrize("letter", list("BTAKPEFHJ"))
@pytest.mark.parametrize(
    "row",
    ["품번 {v} 재고 있음", "주문번호 {v}", "{v}", "명단: 최수진, {v}, 개발팀", "티켓 {v} 확인"],
)
def test_another_letter_is_no_passport_number_in_rows_naming_none(letter: str, row: str) -> None:
    for number in (f"{letter}81234568", f"{letter}812A4568"):
        assert passports(row.format(v=number)) == []
