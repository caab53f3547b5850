"""The notification's sender authentication in words an employee understands (issue 20.5),
the raw results kept for administrators, and an envelope sender of another domain explained."""

from __future__ import annotations

from dataclasses import replace
from email import message_from_bytes, policy

import pytest

from inner_agent.images import shrink_image
from inner_agent.notify import NotifyOptions, auth_verdict, build_notifications
from mailsafe.payload import AuthResults
from tests.inner.helpers import checked


@pytest.mark.parametrize(("spf", "dkim", "dmarc", "word"), [
    ("pass", "pass", "pass", "pass"),
    ("fail", "none", "pass", "pass"),  # DMARC passed through DKIM alignment
    ("pass", "pass", "fail", "fail"),
    ("fail", "none", "none", "fail"),
    ("none", "fail", "none", "fail"),
    ("pass", "pass", "none", "unknown"),  # passes of another domain say nothing of From
    ("temperror", "temperror", "temperror", "unknown"),
    ("not_checked", "not_checked", "not_checked", "not_checked"),
    ("", "", "", "not_checked"),
])  # fmt: skip
def test_one_word_for_people(spf, dkim, dmarc, word):
    assert auth_verdict(AuthResults(spf, dkim, dmarc)) == word


def notification(**kwargs: object) -> tuple[str, str]:
    mail = checked(mail_from=kwargs.pop("mail_from", "kim@partner.example"))
    auth = kwargs.pop("auth", None)
    if auth is not None:
        mail = replace(mail, manifest=replace(mail.manifest, auth=auth))
    (raw,) = build_notifications(mail, NotifyOptions(), shrink=shrink_image, now=1.8e9)
    message = message_from_bytes(raw, policy=policy.default)
    text = message.get_body(("plain",)).get_content()
    html = message.get_body(("html",)).get_content()
    return text, html


def test_a_failed_check_warns_in_words_and_keeps_the_raw_results():
    raw = AuthResults("fail", "none", "fail", "spf=fail dkim=none dmarc=fail (mx.corp.example)")
    text, html = notification(auth=raw)
    assert "발신 도메인 인증: 실패 — 사칭 가능성" in text
    assert "발신 인증 (원문): spf=fail dkim=none dmarc=fail (mx[.]corp[.]example)" in text
    assert "실패 — 사칭 가능성" in html


def test_nothing_checked_says_so():
    raw = AuthResults("not_checked", "not_checked", "not_checked",
                      "spf=not_checked dkim=not_checked dmarc=not_checked (not checked)")  # fmt: skip
    text, _ = notification(auth=raw)
    assert "발신 도메인 인증: 확인하지 않음" in text
    assert "spf=not_checked dkim=not_checked dmarc=not_checked (not checked)" in text


def test_a_confirmed_sender_and_the_same_envelope_domain():
    text, _ = notification()
    assert "발신 도메인 인증: 확인됨" in text
    assert "봉투 발신자: kim[@]partner[.]example\n" in text  # rows defang names (C2)


def test_an_envelope_sender_of_another_domain_is_explained():
    text, html = notification(mail_from="bounce-123@mailer.example")
    assert (
        "봉투 발신자: bounce-123[@]mailer[.]example — 보낸 사람(From)의 도메인 partner[.]example과 "
        "다릅니다" in text
    )
    assert "사칭할 때도" in html
    same_family, _ = notification(mail_from="bounce@mail.partner.example")
    assert "다릅니다" not in same_family
