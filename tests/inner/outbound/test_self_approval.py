"""Issue 15.5: approvers were chosen from the envelope sender's department and the From:
header was ignored, so ``MAIL FROM:<kim@…>`` with ``From: lee@…`` made lee (kim's head) the
approver of lee's own mail. Now the sender is resolved from both; when they disagree the mail
is held for a security officer, and nobody the mail shows as its sender is ever asked."""

from __future__ import annotations

import email
import email.policy
import smtplib

import pytest

from inner_agent.outbound.approval import Event, State
from inner_agent.outbound.senders import check_sender
from mailsafe.mime import Address
from tests.inner.outbound.test_web import client_for, csrf_of, sign_in, token_of
from tests.inner.outbound.test_workflow import accept, notices, text_of
from tests.support.outbound import (
    RecordingPublisher,
    approval_app,
    build_workflow,
    plain_mail,
    rrn_mail,
    start_outbound,
    wait_for,
)

KIM, LEE, PARK, CHOI, JUNG = (
    f"{name}@corp.example" for name in ("kim", "lee", "park", "choi", "jung")
)
OFFICERS = (JUNG,)


@pytest.fixture
def parts(tmp_path):
    return build_workflow(tmp_path)


def held_for(parts, envelope: str, header_from: str) -> tuple[str, object]:
    mail_id = accept(parts, rrn_mail(sender=header_from), sender=envelope)
    return mail_id, parts.state.request_for_mail(mail_id)


def audited(parts, mail_id: str, step: str) -> dict:
    return next(f for m, s, f in parts.audit.events if m == mail_id and s == step)


# ------------------------------------------------------------------------------ the attack


def test_the_attack_envelope_of_a_subordinate_from_of_the_head(parts):
    mail_id, request = held_for(parts, KIM, LEE)
    assert LEE not in request.approvers  # failed before the fix: (lee, park)
    assert request.approvers == OFFICERS
    held = audited(parts, mail_id, "held")
    assert held["route"] == "security-officer"
    assert f"봉투 {KIM}, From: {LEE}" in held["note"]
    assert "different people" in held["note"]
    (asking,) = notices(parts, "request")
    assert asking.rcpt == JUNG
    assert f"보안 확인: 보내는 사람 불일치: 봉투 {KIM}, From: {LEE}" in text_of(asking.data)
    told = notices(parts, "notice:held")[0]
    assert told.rcpt == KIM
    assert "보내는 사람 불일치" in text_of(told.data)


def test_the_attack_over_smtp_and_the_web(tmp_path):
    """The whole path: the forged mail over SMTP, then lee cannot see or decide it on the
    approval pages, and the security officer can."""
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail(KIM, ["partner@example.com"], rrn_mail(sender=LEE))
        state = running.service.workflow.state
        (request,) = wait_for(state.pending_requests, what="held mail")
        assert request.approvers == OFFICERS
        officer_mail = wait_for(lambda: running.internal.to(JUNG), what="request to the officer")
        assert not any("[승인 요청]" in s for s in running.internal.subjects_to(LEE))
        message = email.message_from_bytes(officer_mail[0].data, policy=email.policy.default)
        assert str(message["Subject"]).startswith(f"[승인 요청] {KIM}:")
    finally:
        running.stop()
    assert publisher.published == []


def test_the_head_cannot_decide_it_on_the_pages_and_the_officer_can(parts):
    mail_id, request = held_for(parts, KIM, LEE)
    app = approval_app(parts)
    lee = client_for(app)
    sign_in(lee, LEE)
    assert request.request_id not in lee.get("/requests").text
    assert lee.get(f"/requests/{request.request_id}").status_code == 404
    forged = parts.workflow.issue_token(request, LEE)  # even a genuine token does not help
    assert lee.get(f"/requests/{request.request_id}?t={forged}").status_code == 403
    jung = client_for(app)
    sign_in(jung, JUNG)
    page = jung.get(f"/requests/{request.request_id}")
    assert "보내는 사람 불일치" in page.text
    done = jung.post(
        f"/requests/{request.request_id}/decide",
        data={"csrf": csrf_of(page.text), "token": token_of(page.text), "action": "approve"},
    )
    assert done.status_code == 303
    assert parts.state.mail(mail_id).state == "sending"
    assert parts.state.mail(mail_id).decided_by == JUNG


# ------------------------------------------------------------------------------ mismatches


@pytest.mark.parametrize(
    ("envelope", "header_from", "why"),
    [
        (KIM, LEE, "different people"),
        (KIM, "x@other.example", "not both in the directory"),  # From: unknown
        ("x@other.example", KIM, "not both in the directory"),  # envelope unknown
        ("", KIM, "not both in the directory"),  # a null envelope sender
        ("x@other.example", "y@other.example", "neither in the directory"),
        (KIM, f'"{LEE}" <{KIM}>', "display name shows another person"),
        (KIM, f'"이영희 {LEE.upper()}" <{KIM}>', "display name shows another person"),
        (KIM, f"{KIM}, {LEE}", "different people"),  # two From: addresses
    ],
)
def test_a_mismatch_is_held_for_a_security_officer(parts, envelope, header_from, why):
    mail_id, request = held_for(parts, envelope, header_from)
    assert request.approvers == OFFICERS
    assert why in audited(parts, mail_id, "held")["note"]
    assert audited(parts, mail_id, "scanned")["sender_mismatch"]


@pytest.mark.parametrize(
    ("envelope", "header_from", "approvers"),
    [
        (KIM, KIM, (LEE, PARK)),  # the ordinary case
        (KIM, KIM.upper(), (LEE, PARK)),
        (KIM, f"김철수 <{KIM}>", (LEE, PARK)),
        (KIM, f'"{KIM}" <{KIM}>', (LEE, PARK)),
        (LEE, LEE, (PARK,)),  # a head sending: the delegate
        (PARK, PARK, (LEE,)),
    ],
)
def test_the_same_person_is_approved_as_before(parts, envelope, header_from, approvers):
    mail_id, request = held_for(parts, envelope, header_from)
    assert request.approvers == approvers
    held = audited(parts, mail_id, "held")
    assert "route" not in held
    assert "sender_mismatch" not in audited(parts, mail_id, "scanned")
    assert all("보안 확인" not in text_of(n.data) for n in notices(parts, "request"))


def test_a_mail_without_from_is_judged_by_its_envelope(parts):
    data = rrn_mail().replace(f"From: {KIM}\r\n".encode(), b"", 1)
    assert b"\nFrom:" not in data
    mail_id = accept(parts, data, sender=KIM)
    assert parts.state.request_for_mail(mail_id).approvers == (LEE, PARK)


def test_a_mismatch_is_held_for_an_officer_even_when_the_scan_lets_it_go(parts):
    """The issue's Done line: "an envelope/From mismatch is held for a security officer".
    Before, a mismatch only changed who approved a mail the policy held anyway, so a plain
    mail sent as the head went out unasked."""
    mail_id = accept(parts, plain_mail(sender=LEE), sender=KIM)
    assert parts.state.mail(mail_id).state == "held"
    request = parts.state.request_for_mail(mail_id)
    assert request.approvers == OFFICERS
    held = audited(parts, mail_id, "held")
    assert held["route"] == "security-officer"
    assert held["rule"] == "sender-mismatch"
    assert "different people" in held["note"]
    scanned = audited(parts, mail_id, "scanned")
    assert (scanned["action"], scanned["rule"]) == ("approve", "sender-mismatch")
    assert scanned["policy_action"] == "allow"  # the scan alone lets it go


def test_a_mismatch_does_not_hold_mail_the_policy_lets_go_when_set_to_route(tmp_path):
    """``[outbound] sender_mismatch = "route"``: who approves changes; whether the policy
    holds does not (the behaviour before the default became "hold")."""
    parts = build_workflow(tmp_path, sender_mismatch="route")
    mail_id = accept(parts, plain_mail(sender=LEE), sender=KIM)
    assert parts.state.mail(mail_id).state == "sending"
    assert "different people" in audited(parts, mail_id, "scanned")["sender_mismatch"]
    _held_id, request = held_for(parts, KIM, LEE)
    assert request.approvers == OFFICERS  # a held mismatch still goes to an officer


def auto_reply(header_from: str, data: bytes | None = None, kind: str = "auto-replied") -> bytes:
    """``data`` (a plain mail from ``header_from`` by default) with ``Auto-Submitted: kind``."""
    data = data if data is not None else plain_mail(sender=header_from)
    return f"Auto-Submitted: {kind}\r\n".encode() + data


def test_an_auto_reply_is_not_a_mismatch(parts):
    """A vacation reply (RFC 3834): null envelope sender, ``Auto-Submitted: auto-replied`` and
    one From: of a directory user. It is that user's mail, by that user's rules."""
    mail_id = accept(parts, auto_reply(LEE), sender="")
    assert parts.state.mail(mail_id).state == "sending"
    assert "sender_mismatch" not in audited(parts, mail_id, "scanned")
    assert audited(parts, mail_id, "scanned")["department"] == "영업부"


def test_an_auto_reply_with_personal_data_goes_to_the_from_persons_approvers(parts):
    mail_id = accept(parts, auto_reply(KIM, rrn_mail(sender=KIM)), sender="")
    assert parts.state.request_for_mail(mail_id).approvers == (LEE, PARK)
    assert "route" not in audited(parts, mail_id, "held")


@pytest.mark.parametrize(
    ("header_from", "kind"),
    [
        (LEE, "auto-generated"),  # not a reply: a bounce or a report
        (LEE, "no"),
        ("x@other.example", "auto-replied"),  # From: not in the directory
        (f"{LEE}, {KIM}", "auto-replied"),  # more than one From:
        (f'"{KIM}" <{LEE}>', "auto-replied"),  # another person in the display name
    ],
)
def test_what_is_not_an_auto_reply_stays_a_mismatch(parts, header_from, kind):
    mail_id = accept(parts, auto_reply(header_from, rrn_mail(sender=header_from), kind), sender="")
    assert parts.state.request_for_mail(mail_id).approvers == OFFICERS
    assert audited(parts, mail_id, "scanned")["sender_mismatch"]


@pytest.mark.parametrize(
    ("envelope", "header_from", "held"),
    [
        (KIM, LEE, True),  # two people
        (KIM, f'"{LEE}" <{KIM}>', True),  # the other person in the display name
        ("", f"{LEE}, {KIM}", True),  # two people in From:
        (KIM, "ceo@corp.example", True),  # an address of ours that nobody has
        ("ceo@corp.example", KIM, True),
        (KIM, "kim.private@mail.example", False),  # one unknown, not ours: routed only
        ("", LEE, False),  # a null envelope shows nobody else
        ("x@other.example", "y@other.example", False),
    ],
)
def test_which_mismatches_hold_mail_the_scan_lets_go(parts, envelope, header_from, held):
    mail_id = accept(parts, plain_mail(sender=header_from), sender=envelope)
    assert (parts.state.mail(mail_id).state == "held") is held
    assert audited(parts, mail_id, "scanned")["sender_mismatch"]
    if held:
        assert parts.state.request_for_mail(mail_id).approvers == OFFICERS


# ------------------------------------------------------------------------------ never self


def test_an_officer_shown_as_the_sender_is_not_asked(parts):
    mail_id, request = held_for(parts, KIM, JUNG)
    assert request is None
    assert parts.state.mail(mail_id).state == "rejected"
    told = text_of(notices(parts, "notice:rejected")[0].data)
    assert "보안 담당자가 디렉터리에 없습니다" in told


def test_the_fallback_approver_named_in_a_display_name_is_not_asked(tmp_path):
    parts = build_workflow(tmp_path, approval={"fallback_approver": "audit@corp.example"})
    stranger = "x@other.example"
    ordinary = accept(parts, rrn_mail(sender=stranger), sender=stranger)
    assert parts.state.request_for_mail(ordinary).approvers == ("audit@corp.example",)
    shown = accept(parts, rrn_mail(sender=f'"audit@corp.example" <{stranger}>'), sender=stranger)
    assert parts.state.request_for_mail(shown) is None
    assert parts.state.mail(shown).state == "rejected"


def test_a_head_never_approves_her_own_mail_even_after_escalation(tmp_path):
    parts = build_workflow(tmp_path, approval={"on_expiry": "escalate"})
    mail_id, request = held_for(parts, LEE, LEE)
    assert request.approvers == (PARK,)
    for _ in range(3):
        parts.clock.now += 1000
        parts.workflow.tick()
        request = parts.state.request_for_mail(mail_id)
        assert LEE not in request.approvers
    assert request.state is State.EXPIRED  # choi once, then nobody above


def test_a_request_held_for_an_officer_expires_instead_of_climbing(tmp_path):
    parts = build_workflow(tmp_path, approval={"on_expiry": "escalate"})
    mail_id, _request = held_for(parts, KIM, LEE)
    parts.clock.now += 1000
    assert parts.workflow.tick() == 1
    assert parts.state.request_for_mail(mail_id).state is State.EXPIRED
    assert parts.state.mail(mail_id).state == "expired"


def test_the_department_cannot_decide_a_request_held_for_an_officer(parts):
    _mail_id, request = held_for(parts, KIM, LEE)
    token = parts.workflow.issue_token(request, PARK)
    from inner_agent.outbound.errors import TokenRefused

    with pytest.raises(TokenRefused) as caught:
        parts.workflow.decide(request.request_id, PARK, Event.APPROVE, token)
    assert caught.value.reason == "wrong-approver"


# ------------------------------------------------------------------------------ the check alone


def users(*known: str):
    from inner_agent.outbound.directory import User

    table = {address: User(address, "", "부서", "") for address in known}
    return table.get


@pytest.mark.parametrize(
    ("envelope", "header", "same"),
    [
        ("kim@x.kr", [Address("", "kim@x.kr")], True),
        ("KIM@x.kr", [Address("", "kim@X.KR")], True),
        ("kim@x.kr", [Address("", "kim\u200b@x.kr")], True),  # invisible: the same address
        ("kim@x.kr", [Address("", "\u202ekim@x.kr")], True),  # bidi override removed
        ("kim@x.kr", [], True),  # no From: only the envelope shows a sender
        ("kim@x.kr", [Address("", "lee@x.kr")], False),
        ("kim@x.kr", [Address("", "lee＠x.kr")], False),  # full-width @: still lee
        ("kim@x.kr", [Address("lee\u00ad@x.kr", "kim@x.kr")], False),  # soft hyphen in a name
        ("kim@x.kr", [Address("garbage <", "")], False),  # unreadable From:
        ("", [], True),
    ],
)
def test_check_sender(envelope, header, same):
    check = check_sender(envelope, header, users("kim@x.kr", "lee@x.kr"))
    assert (check.mismatch == "") is same
    assert all(a == a.lower() and "\u200b" not in a for a in check.shown)
    if any("lee" in f"{a.display} {a.addr}" for a in header):
        assert "lee@x.kr" in check.shown  # so lee is never asked to approve it
