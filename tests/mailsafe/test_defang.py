"""What a mail client would link in plain text is defanged; everything else reads as written."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mailsafe.defang as defang_module
from mailsafe.defang import defang_text

DEFANGED = [
    ("phish.example/login", "phish[.]example/login"),
    ("see evil.example.", "see evil[.]example."),
    ("ceo@evil.example", "ceo[@]evil[.]example"),
    ("대표 <first.last@mail.evil.co.kr>", "대표 <first[.]last[@]mail[.]evil[.]co[.]kr>"),
    ("주소는evil.example입니다", "주소는evil[.]example입니다"),
    ("bаnk.example", "bаnk[.]example"),  # Cyrillic а: clients link IDNs too
    ("x@xn--bnk-6cd.example", "x[@]xn--bnk-6cd[.]example"),
    ("invoice.zip", "invoice[.]zip"),  # .zip is a top-level domain as well as a file type
    ("https://x.example/a.b", "hxxps://x[.]example/a.b"),
    ("www.x.example", "www[.]x[.]example"),
    # S6 red team: no address, yet the name before the "@" or the hyphen is linked
    ("evil.example@", "evil[.]example@"),
    ("evil.example@한", "evil[.]example@한"),
    ("see evil.example-", "see evil[.]example-"),
]
AS_WRITTEN = ["invoice.pdf", "보고서.hwp", "e.g. 3.14 v1.2.3", "hxxps://phish[.]example", "a@b"]


@pytest.mark.parametrize(("written", "shown"), DEFANGED)
def test_names_a_client_would_link_are_bracketed(written: str, shown: str) -> None:
    assert defang_text(written) == shown
    assert defang_text(shown) == shown  # defanging twice changes nothing


def test_a_url_ends_the_run_of_a_name_before_it() -> None:
    assert defang_text("see:x.y.https://z.example") == "see:x.y.hxxps://z[.]example"


@pytest.mark.parametrize("written", AS_WRITTEN)
def test_file_names_numbers_and_defanged_text_read_as_written(written: str) -> None:
    assert defang_text(written) == written


def test_nothing_linkable_is_left_in_a_mixed_paragraph() -> None:
    text = "계좌 변경은 pay.evil.example/new 에서, 문의 help@evil.example, 첨부 내역.xlsx 참고"
    shown = defang_text(text)
    assert not re.search(r"[\w-]\.example|@evil", shown), shown
    assert "내역.xlsx" in shown


@pytest.mark.parametrize("run", ["a" * 100_000, "a." * 50_000, "가" * 100_000, "x@" * 50_000])
def test_a_long_run_is_read_once(run: str) -> None:
    """A mail's text is the sender's: a pattern that rescanned a run from each of its
    characters took seconds for 20,000 characters (quadratic); this takes milliseconds."""
    started = time.perf_counter()
    defang_text(run)
    assert time.perf_counter() - started < 2.0


_PIECES = st.sampled_from(["a", "b", "W", ".", "@", ":", "/", "-", " ", "\n", "\t", "1", "é", "한",
                           "www.", "WWW.", "http://", "HTTPS://", "ftp://", ".com", ".Co", "@x.kr",
                           "xn--p1ai", ".pdf", "%", "+", ")", "\u00a0", "\u3000", "\u202e"])  # fmt: skip


@settings(max_examples=500, deadline=None)
@given(st.lists(_PIECES, max_size=30).map("".join))
def test_reading_only_the_candidate_words_changes_nothing(text):
    """The words filter is a shortcut: the result is the whole text read run by run."""
    every_run = defang_module._LINKABLE_IN_TEXT.sub(defang_module._defanged_run, text)
    assert defang_text(text) == every_run


RAW_AUTHENTICATION_ROW = (
    "mx.google.com; spf=pass (domain of x@evil.example) smtp.mailfrom=evil.example; dkim=pass "
    "header.i=@evil.example header.s=sel header.b=AbC; dmarc=pass (p=NONE) header.from=evil.example"
    " policy.dmarc=none; auth=pass smtp.auth=x SMTP.HELO=mail.evil.example"
)


def test_authentication_results_keys_read_as_written_and_their_values_are_defanged() -> None:
    """S6 red team: ``smtp[.]mailfrom`` in the raw authentication row named no link; the keys
    read as written now, every domain and address beside them is still bracketed."""
    shown = defang_text(RAW_AUTHENTICATION_ROW)
    for key in ("smtp.mailfrom=", "header.from=", "policy.dmarc=", "smtp.auth=", "SMTP.HELO="):
        assert key in shown, key
    assert not re.search(r"evil\.example|[^\[]@evil", shown), shown
    assert "mx[.]google[.]com" in shown


@pytest.mark.parametrize(("written", "shown"), [
    ("smtp.mailfrom.evil.example", "smtp[.]mailfrom[.]evil[.]example"),  # only the whole key
    ("x@header.from", "x[@]header[.]from"),  # an address is linked whatever its domain
    ("header.md", "header[.]md"),  # .md (Moldova) is a top-level domain
    ("dns.zone", "dns[.]zone"),  # so is .zone
    ("evil.example/smtp.mailfrom", "evil[.]example/smtp.mailfrom"),
])  # fmt: skip
def test_a_key_never_shields_a_name_a_client_links(written: str, shown: str) -> None:
    assert defang_text(written) == shown


_KEY_PIECES = st.sampled_from(["smtp.mailfrom", "header.from", "SMTP.HELO", "policy.dmarc", "=",
                               ".", "@", " ", ";", "/", "-", "a", "x", ".com", ".kr", ".example",
                               ".md", "한"])  # fmt: skip  # URLs: the test above


@settings(max_examples=500, deadline=None)
@given(st.lists(_KEY_PIECES, max_size=24).map("".join))
def test_beside_a_key_no_top_level_domain_is_left_linkable(text: str) -> None:
    """Whatever stands around the keys, no name ending in a top-level domain (its last label,
    before a full stop or a hyphen) reads unbracketed."""
    shown = defang_text(text)
    tld_last = r"[\w%+-]\.(?:com|kr|example|md)(?![\w-]|[.-]+[\w%+])"
    assert not re.search(tld_last, shown, re.I), shown
    every_run = defang_module._LINKABLE_IN_TEXT.sub(defang_module._defanged_run, text)
    assert shown == every_run
