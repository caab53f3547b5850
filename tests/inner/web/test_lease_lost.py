"""The standby's 503 says what was not saved, by the path the refused write came to: a
decision keeps the page D80 gave every write; a rule, a directory change, an absence are named
as what they are."""

from __future__ import annotations

import html

import pytest

from inner_agent.web.app import LEASE_LOST_PAGE
from inner_agent.web.lease_lost import lease_lost_html, lease_lost_page


@pytest.mark.parametrize(("path", "korean", "english"), [
    ("/requests/r-1/decide", "결정을", "nothing was stored"),
    ("/requests/bulk", "결정을", "nothing was stored"),
    ("/my/sent/m-1/withdraw", "메일 회수를", "the withdrawal was not saved"),
    ("/policy/outbound/save", "규칙을", "the rule was not saved"),
    ("/policy/inbound/save", "규칙을", "the rule was not saved"),
    ("/policy/outbound/toggle", "규칙 켜기·끄기를", "the rule switched on or off was not saved"),
    ("/policy/outbound/move", "규칙 순서 변경을", "the rule's new place was not saved"),
    ("/policy/outbound/versions/3/restore", "규칙 되돌리기를", "the version restored was not"),
    ("/directory/person", "디렉터리의 사람 정보를", "the person's directory entry was not"),
    ("/directory/import/apply", "인사 자료 가져오기를", "the HR import was not saved"),
    ("/absence", "부재 설정을", "the absence was not saved"),
    ("/absence/12/cancel", "부재 종료를", "the absence's end was not saved"),
])  # fmt: skip
def test_the_page_names_what_was_not_saved(path, korean, english):
    page = lease_lost_page(path)
    assert page.startswith(f"이 서버는 대기 서버로 넘어가는 중이어서 {korean} 저장하지 않았습니다.")
    assert "잠시 후 다시 시도해 주십시오." in page
    assert "This agent no longer holds its state's lease; " in page
    assert english in page
    assert ("결정" in page) is (korean == "결정을")


@pytest.mark.parametrize("path", ["/requests/r-1/decide", "/requests/bulk"])
def test_a_decision_keeps_the_decisions_page_word_for_word(path):
    assert lease_lost_page(path) == LEASE_LOST_PAGE
    assert "결정을 저장하지 않았습니다" in LEASE_LOST_PAGE


@pytest.mark.parametrize("path", ["/elsewhere", "/policy/outbound/save/extra",
                                  "/absence/12/cancel/x", "/requests/r-1"])  # fmt: skip
def test_a_write_the_table_lacks_is_a_change_not_a_decision(path):
    page = lease_lost_page(path)
    assert page.startswith("이 서버는 대기 서버로 넘어가는 중이어서 변경을 저장하지 않았습니다.")
    assert "the change was not saved" in page
    assert "결정" not in page


@pytest.mark.parametrize("path", ["/policy/outbound/save", "/requests/r-1/decide", "/elsewhere"])
def test_a_browser_gets_the_same_words_as_a_page_a_phone_lays_out_at_its_width(path):
    korean, english = lease_lost_page(path).split(" (", 1)
    page = lease_lost_html(path)
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<html lang="ko">' in page
    assert f'<p class="alarm" id="not-saved">{korean}</p>' in page
    assert f'<p class="muted" lang="en">{html.escape(english.rstrip(")"))}</p>' in page
    assert "<script" not in page
