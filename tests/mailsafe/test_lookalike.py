from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mailsafe import lookalike
from mailsafe.lookalike import (
    claimed_domain,
    comparable,
    reader_forms,
    reveal_bidi_controls,
    reveal_invisible,
)


def test_the_invisible_class_holds_every_format_and_bidi_control_character() -> None:
    """``unicodedata`` knows the categories: every Cf character, every bidi control and every
    character the table calls default-ignorable is invisible; no letter, digit or space is."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        bidi = unicodedata.bidirectional(char)
        invisible = bool(lookalike._INVISIBLE.match(char))
        if category == "Cf" or bidi in ("LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI"):
            assert invisible, f"U+{code:04X}"
        if category[0] in "NPSZ" or category in ("Lu", "Ll", "Lt", "Lm"):
            assert not invisible, f"U+{code:04X}"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ceo@bank\u200b.example", "ceo@bank.example"),
        ("ceo\uff20bank.example", "ceo@bank.example"),
        ("ＣＥＯ＠ＢＡＮＫ．ＥＸＡＭＰＬＥ", "ceo@bank.example"),
        ("ceo@b\u0430nk.\u0435xample", "ceo@bank.example"),  # Cyrillic a and ie
        ("CEO@ΒΑΝΚ.EXAMPLE", "ceo@bank.example"),  # Greek capitals
        ("ceo@bank\u3002example", "ceo@bank.example"),
        ("\u3164\ufeffceo@ba\u00adnk.exa\u2060mple\U000e0020", "ceo@bank.example"),
        ("김철수 대표", "김철수 대표"),
    ],
)
def test_comparable_form(text: str, expected: str) -> None:
    assert comparable(text) == expected


def test_reader_forms_lay_out_overrides_and_marks_as_a_client_shows_them() -> None:
    assert reader_forms("김철수 <kim@partner.example>") == ("김철수 <kim@partner.example>",)
    assert "대표이사 ceo@bank.example" in reader_forms("대표이사 \u202eelpmaxe.knab@oec")
    assert "ceo@bank.example" in reader_forms("ceo@\u202eelpmaxe.knab\u202c")
    # strong right-to-left marks in a right-to-left paragraph reverse the order of the words
    forms = reader_forms("\u200fexample\u200f.\u200fbank\u200f@\u200fceo")
    assert "ceo@bank.example" in [comparable(f) for f in forms]
    # nested overrides: the inner left-to-right part is kept as written inside the reversal
    assert reader_forms("\u202ezyx\u202d-cba\u202c\u202c")[1] == "-cbaxyz"


def test_hebrew_text_is_reordered_but_not_mistaken_for_an_address() -> None:
    forms = reader_forms("שלום ceo@partner.example")
    assert claimed_domain("שלום ceo@partner.example", ["bank.example"]) is None
    assert any("ceo@partner.example" in f for f in forms)


@pytest.mark.parametrize(
    ("text", "claimed"),
    [
        ("대표 ceo@bank\u200b.example", "bank.example"),
        ("ceo@mail.bank.example", "bank.example"),
        ("ceo @ bank.example", "bank.example"),  # what follows the last @ is read as a domain
        ('"a b"@bank.example', "bank.example"),
        ("ceo@bank.example@evil.example", "bank.example"),
        ("ceo@bank.example.evil.example", None),
        ("ceo@notbank.example", None),
        ("bank.example 고객센터", None),
        ("", None),
    ],
)
def test_claimed_domain(text: str, claimed: str | None) -> None:
    assert claimed_domain(text, ["Bank.Example"]) == (claimed and "Bank.Example")


def test_reveal_invisible_marks_each_invisible_character() -> None:
    assert reveal_invisible("ceo@bank\u200b.example") == "ceo@bank⟨U+200B⟩.example"
    assert reveal_invisible("invoice\u202egpj.exe") == "invoice⟨U+202E⟩gpj.exe"
    assert reveal_invisible("a\U000e0041b") == "a⟨U+E0041⟩b"
    assert reveal_invisible("plain ascii") == "plain ascii"
    assert reveal_invisible("대표이사 김철수") == "대표이사 김철수"


def test_emoji_sequences_stay_as_they_are_but_joiners_between_letters_do_not() -> None:
    family = "\U0001f468\u200d\U0001f469\u200d\U0001f467"
    assert reveal_invisible(f"가족 {family} ❤\ufe0f") == f"가족 {family} ❤\ufe0f"
    assert reveal_invisible("ba\u200dnk\ufe0f") == "ba⟨U+200D⟩nk⟨U+FE0F⟩"


def test_reveal_bidi_controls_leaves_other_invisible_characters() -> None:
    assert reveal_bidi_controls("a\u202eb\u200bc\u2066d") == "a⟨U+202E⟩b\u200bc⟨U+2066⟩d"


@given(st.text())
def test_revealed_text_has_no_invisible_character_left_but_emoji_joiners(text: str) -> None:
    shown = reveal_invisible(text)
    assert all(c in "\u200d\ufe0e\ufe0f" for c in lookalike._INVISIBLE.findall(shown))
    assert not lookalike._BIDI_CONTROL.search(reveal_bidi_controls(text))


_EXPLICIT = ("LRE", "RLE", "PDF", "LRO", "RLO", "LRI", "RLI", "FSI", "PDI")


@given(st.text(max_size=200))
def test_reader_forms_reorder_the_characters_and_drop_only_the_explicit_controls(
    text: str,
) -> None:
    forms = reader_forms(text)
    assert forms[0] == text
    kept = sorted(c for c in text if unicodedata.bidirectional(c) not in _EXPLICIT)
    assert all(sorted(form) == kept for form in forms[1:])
