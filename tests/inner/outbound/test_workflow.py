"""The outbound workflow with a fake clock, a recording publisher and no network: held on a
resident number in XLSX/HWP attachments, approve -> published unchanged, reject, block,
allow, reminders, expiry, escalation, tokens spent once, recovery after a crash."""

from __future__ import annotations

import email
import email.policy
import errno
from dataclasses import replace

import pytest

from inner_agent.outbound.approval import Event, State
from inner_agent.outbound.errors import InvalidTransition, TokenRefused
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from mailsafe.payload import decode_outbound
from tests.support.documents import make_hwp, make_mail, make_xlsx
from tests.support.outbound import RRN, RRN_MASKED, build_workflow, plain_mail, rrn_mail


def accept(parts, data: bytes, sender="kim@corp.example", rcpt=("partner@example.com",)) -> str:
    mail = SpooledMail(new_mail_id(), sender, rcpt, parts.clock(), "127.0.0.1", "mx")
    parts.spool.store(mail, data)
    parts.workflow.accepted(mail)
    parts.workflow.process_received()
    return mail.mail_id


def text_of(data: bytes) -> str:
    """Every text part and header of a mail, decoded."""
    message = email.message_from_bytes(data, policy=email.policy.default)
    parts = [str(message["Subject"])]
    parts += [p.get_content() for p in message.walk() if p.get_content_maintype() == "text"]
    return "\n".join(parts)


def notices(parts, kind: str) -> list:
    return [n for n in parts.state.notices() if n.kind == kind]


@pytest.fixture
def parts(tmp_path):
    return build_workflow(tmp_path)


def test_rrn_in_xlsx_and_hwp_is_held_masked(parts):
    mail_id = accept(parts, rrn_mail())
    row = parts.state.mail(mail_id)
    assert row.state == "held"
    where = sorted(f["where"] for f in row.findings)
    assert where == ["attachment:명단.hwp", "attachment:명단.xlsx"]
    assert {f["masked"] for f in row.findings} == {RRN_MASKED}
    request = parts.state.request_for_mail(mail_id)
    assert request.approvers == ("lee@corp.example", "park@corp.example")
    sent = notices(parts, "request")
    assert sorted(n.rcpt for n in sent) == ["lee@corp.example", "park@corp.example"]
    for notice in sent:
        text = text_of(notice.data)
        assert RRN not in text
        assert RRN_MASKED in text
        assert RRN.encode() not in notice.data
        assert f"/requests/{request.request_id}?t=" in text
        message = email.message_from_bytes(notice.data, policy=email.policy.default)
        assert "image/png" in [p.get_content_type() for p in message.walk()]
    assert notices(parts, "notice:held")[0].rcpt == "kim@corp.example"
    assert parts.publisher.published == []
    assert parts.audit.steps(mail_id) == [
        "accepted_outbound",
        "scanned",
        "held",
        "approval_requested",
    ]
    assert RRN not in repr(parts.audit.events)
    details = {step: fields for m, step, fields in parts.audit.events if m == mail_id}
    assert details["accepted_outbound"]["rcpts"] == ["partner@example.com"]
    assert details["scanned"]["subject"] == "거래처 명단 송부"  # searchable in the audit log


def test_approve_publishes_the_original_bytes(parts):
    data = rrn_mail()
    mail_id = accept(parts, data)
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "park@corp.example")
    parts.workflow.decide(request.request_id, "park@corp.example", Event.APPROVE, token)
    assert parts.workflow.publish_pending() == 1
    ((bundle, bundle_id),) = parts.publisher.published
    out = decode_outbound(bundle)
    assert out.data == data
    assert out.mail_id == mail_id
    assert bundle_id == bytes.fromhex(mail_id)
    assert out.rcpt_to == ("partner@example.com",)
    assert out.decided_by == "park@corp.example"
    assert parts.state.mail(mail_id).state == "sent"
    assert parts.spool.ids() == []
    assert parts.audit.steps(mail_id)[-2:] == ["approved", "sent_out"]
    assert notices(parts, "notice:approved")[0].rcpt == "kim@corp.example"
    with pytest.raises(TokenRefused) as caught:  # the same token again
        parts.workflow.decide(request.request_id, "park@corp.example", Event.REJECT, token, "늦음")
    assert caught.value.reason == "reused"


def test_reject_tells_the_sender_the_reason(parts):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    parts.workflow.decide(
        request.request_id,
        "lee@corp.example",
        Event.REJECT,
        token,
        f"개인정보({RRN})를 빼고 다시 보내세요",
    )
    assert parts.workflow.publish_pending() == 0
    assert parts.state.mail(mail_id).state == "rejected"
    assert parts.spool.ids() == []
    notice = notices(parts, "notice:rejected")[0]
    text = text_of(notice.data)
    assert RRN not in text
    assert "800101-1******" in text
    assert "rejected" in parts.audit.steps(mail_id)


def test_wrong_and_forged_tokens_are_refused_and_audited(parts):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    lee_token = parts.workflow.issue_token(request, "lee@corp.example")
    with pytest.raises(TokenRefused) as caught:
        parts.workflow.decide(request.request_id, "park@corp.example", Event.APPROVE, lee_token)
    assert caught.value.reason == "wrong-approver"
    jung_token = parts.workflow.signer.issue(
        request.request_id, "jung@corp.example", now=parts.clock(), ttl_s=60
    )
    with pytest.raises(TokenRefused) as caught:  # genuine token for a non-approver
        parts.workflow.decide(request.request_id, "jung@corp.example", Event.APPROVE, jung_token)
    assert caught.value.reason == "wrong-approver"
    with pytest.raises(TokenRefused):
        parts.workflow.decide(
            request.request_id, "lee@corp.example", Event.APPROVE, lee_token[:-2] + "AA"
        )
    parts.clock.now += 2000
    with pytest.raises(TokenRefused) as caught:
        parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, lee_token)
    assert caught.value.reason == "expired"
    reasons = [f["reason"] for m, s, f in parts.audit.events if s == "token_refused"]
    assert reasons == ["wrong-approver", "wrong-approver", "forged", "expired"]
    assert parts.state.mail(mail_id).state == "held"


def test_clean_mail_is_allowed_and_published(parts):
    data = plain_mail()
    mail_id = accept(parts, data)
    assert parts.state.mail(mail_id).state == "sending"
    parts.workflow.publish_pending()
    assert decode_outbound(parts.publisher.published[0][0]).data == data
    assert parts.audit.steps(mail_id) == ["accepted_outbound", "scanned", "allowed", "sent_out"]


def test_block_rule_notifies_the_sender(tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text(
        '[[rule]]\nid = "no-secret"\naction = "block"\n'
        '[[rule.condition]]\nfield = "subject"\ncontains = "대외비"\n',
        encoding="utf-8",
    )
    parts = build_workflow(tmp_path, rules_file=str(rules))
    mail_id = accept(parts, make_mail(subject="[대외비] 계획", text="..."))
    assert parts.state.mail(mail_id).state == "blocked"
    assert notices(parts, "notice:blocked")[0].rcpt == "kim@corp.example"
    assert parts.publisher.published == []
    assert parts.spool.ids() == []


def scoped_workflow(tmp_path, scope: str):
    """The workflow with one rule (hold a "명단" subject) of ``scope``; 김 (영업부, below
    경영본부) is a 대리 in the group 고객정보 취급자, 박 of 영업부 is in no group."""
    rules = tmp_path / "rules.toml"
    rules.write_text(f'[[rule]]\nid = "customer-lists"\naction = "approve"\n{scope}\n'
                     '[[rule.condition]]\nfield = "subject"\ncontains = "명단"\n',
                     encoding="utf-8")  # fmt: skip
    parts = build_workflow(tmp_path, rules_file=str(rules))
    kim = parts.directory.user("kim@corp.example")
    parts.directory.put_person(replace(kim, rank="대리", groups=("고객정보 취급자",)), None, "test")
    return parts


def test_a_group_scoped_rule_holds_a_members_mail_and_passes_a_non_members(tmp_path):
    parts = scoped_workflow(tmp_path, 'scope = "groups"\ngroups = ["고객정보 취급자"]')

    def same(sender: str) -> bytes:  # the same mail, each From: its own sender's
        return make_mail(subject="고객 명단", text="첨부 확인 바랍니다.", sender=sender)

    member = accept(parts, same("kim@corp.example"), sender="kim@corp.example")
    other = accept(parts, same("park@corp.example"), sender="park@corp.example")
    assert parts.state.mail(member).state == "held"
    assert parts.state.mail(member).decision["rule"] == "customer-lists"
    assert parts.state.mail(other).state == "sending"
    parts.workflow.publish_pending()
    assert [decode_outbound(b).mail_id for b, _ in parts.publisher.published] == [other]


@pytest.mark.parametrize(
    ("scope", "held"),
    [
        ('scope = "ranks"\nranks = ["대리"]', True),
        ('scope = "ranks"\nranks = ["과장"]', False),
        ('scope = "departments"\ndepartments = ["경영본부"]', False),
        ('scope = "departments"\ndepartments = ["경영본부"]\nsub_departments = true', True),
    ],
)
def test_rank_and_department_tree_scopes_come_from_the_directory(tmp_path, scope, held):
    parts = scoped_workflow(tmp_path, scope)
    mail_id = accept(parts, make_mail(subject="고객 명단", text="..."), sender="kim@corp.example")
    assert (parts.state.mail(mail_id).state == "held") is held


def test_reminder_then_expiry_rejects(parts):
    mail_id = accept(parts, rrn_mail())
    parts.clock.now += 100
    assert parts.workflow.tick() == 1
    assert len(notices(parts, "reminder")) == 2
    assert parts.workflow.tick() == 0  # reminded once only
    parts.clock.now += 900
    assert parts.workflow.tick() == 1
    assert parts.state.mail(mail_id).state == "expired"
    assert parts.state.request_for_mail(mail_id).state is State.EXPIRED
    assert notices(parts, "notice:expired")
    assert parts.audit.steps(mail_id)[-2:] == ["reminded", "expired"]


def test_expiry_escalates_to_the_head_above(tmp_path):
    parts = build_workflow(tmp_path, approval={"on_expiry": "escalate"})
    mail_id = accept(parts, rrn_mail())
    parts.clock.now += 1000
    assert parts.workflow.tick() == 1
    request = parts.state.request_for_mail(mail_id)
    assert (request.state, request.approvers) == (State.ESCALATED, ("choi@corp.example",))
    assert [n.rcpt for n in notices(parts, "request")][-1] == "choi@corp.example"
    old = parts.workflow.issue_token(request, "lee@corp.example")
    with pytest.raises(TokenRefused):
        parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, old)
    token = parts.workflow.issue_token(request, "choi@corp.example")
    parts.workflow.decide(request.request_id, "choi@corp.example", Event.APPROVE, token)
    assert parts.workflow.publish_pending() == 1
    parts.clock.now += (
        1000  # nothing above the top: a second timeout would expire, but it is decided
    )
    assert parts.workflow.tick() == 0


def test_head_sending_goes_to_the_delegate_and_no_approver_rejects(parts):
    mail_id = accept(parts, rrn_mail(sender="lee@corp.example"), sender="lee@corp.example")
    assert parts.state.request_for_mail(mail_id).approvers == ("park@corp.example",)
    stranger = accept(parts, rrn_mail(sender="x@other.example"), sender="x@other.example")
    assert parts.state.mail(stranger).state == "rejected"


def test_decided_request_cannot_be_decided_again(parts):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    parts.workflow.decide(
        request.request_id,
        "lee@corp.example",
        Event.APPROVE,
        parts.workflow.issue_token(request, "lee@corp.example"),
    )
    with pytest.raises(InvalidTransition):
        parts.workflow.decide(
            request.request_id,
            "park@corp.example",
            Event.REJECT,
            parts.workflow.issue_token(request, "park@corp.example"),
            "no",
        )


def test_recovery_takes_in_spooled_mail_and_quarantines_torn_files(parts):
    mail = SpooledMail(
        new_mail_id(), "kim@corp.example", ("p@example.com",), 1.0, "127.0.0.1", "mx"
    )
    parts.spool.store(mail, plain_mail())  # crash right after 250: no database row
    torn = SpooledMail(
        new_mail_id(), "kim@corp.example", ("p@example.com",), 1.0, "127.0.0.1", "mx"
    )
    parts.spool.store(torn, b"x" * 50)
    path = parts.spool.root / "mail" / torn.mail_id
    path.write_bytes(path.read_bytes()[:-5])
    assert parts.workflow.recover() == 1
    parts.workflow.process_received()
    assert parts.state.mail(mail.mail_id).state == "sending"
    assert "quarantined" in parts.audit.steps(torn.mail_id)


def test_spent_nonces_are_forgotten_only_after_tokens_expire(parts):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    nonce = parts.workflow.signer.open(token, now=parts.clock()).nonce
    parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    parts.workflow.tick()
    assert parts.state.nonce_spent(nonce)
    parts.clock.now += 1000 + 86400 + 1
    parts.workflow.tick()
    assert not parts.state.nonce_spent(nonce)
    with pytest.raises(TokenRefused) as caught:  # and the token itself is long expired
        parts.workflow.signer.open(token, now=parts.clock())
    assert caught.value.reason == "expired"


def test_monitor_sends_and_marks_without_telling_the_sender(tmp_path):
    from mailsafe.policy import parse_rules

    parts = build_workflow(
        tmp_path,
        rules=parse_rules(
            {
                "rule": [
                    {
                        "id": "watch-partner",
                        "action": "monitor",
                        "condition": [{"field": "recipient", "contains": "partner"}],
                    }
                ]
            }
        ),
    )
    mail_id = accept(parts, plain_mail())
    assert parts.workflow.publish_pending() == 1
    assert parts.audit.steps(mail_id) == ["accepted_outbound", "scanned", "monitored", "sent_out"]
    assert parts.state.notices() == []


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("급여.xlsx", lambda: make_xlsx([["성명", "주민번호"], ["김영수", RRN]])),
        ("신청서.hwp", lambda: make_hwp(f"신청인 주민등록번호: {RRN}")),
    ],
)
def test_rrn_in_one_attachment_alone_is_held(parts, name, make):
    data = make_mail(subject="자료", text="첨부 확인 부탁드립니다.", attachments=[(name, make())])
    mail_id = accept(parts, data)
    row = parts.state.mail(mail_id)
    assert row.state == "held"
    assert row.findings == [{"type": "rrn", "masked": RRN_MASKED, "where": f"attachment:{name}"}]


def test_a_mail_that_breaks_the_scanner_is_quarantined_after_three_tries(parts, monkeypatch):
    import inner_agent.outbound.scanning as scanning_module

    def broken(*args, **kwargs):
        raise RuntimeError("extractor bug")

    monkeypatch.setattr(scanning_module, "scan_parsed", broken)
    mail_id = accept(parts, plain_mail())  # first try inside accept()
    assert parts.state.mail(mail_id).state == "received"
    parts.workflow.process_received()
    parts.workflow.process_received()
    assert parts.state.mail(mail_id).state == "quarantined"
    assert (
        (parts.spool.root / "quarantine" / f"{mail_id}.reason")
        .read_text()
        .startswith("processing failed 3 times")
    )
    assert parts.audit.steps(mail_id)[-1] == "quarantined"


def test_a_bundle_published_again_after_a_crash_is_the_same_bytes(parts):
    """A crash after the link took the bundle but before the state said "sent" publishes it
    again on the next pass: the same bytes under the same id (the sender's idempotent path),
    however much later that is."""
    mail_id = accept(parts, plain_mail())
    assert parts.state.mail(mail_id).state == "sending"

    class CrashAfterPublish(Exception):
        pass

    published = parts.publisher.publish

    def publish_then_crash(bundle: bytes, bundle_id: bytes) -> int:
        published(bundle, bundle_id)
        raise CrashAfterPublish

    parts.publisher.publish = publish_then_crash
    with pytest.raises(CrashAfterPublish):
        parts.workflow.publish_pending()
    parts.publisher.publish = published
    parts.clock.now += 3600
    assert parts.workflow.publish_pending() == 1
    (first, first_id), (again, again_id) = parts.publisher.published
    assert (again, again_id) == (first, first_id)
    assert parts.state.mail(mail_id).state == "sent"


def test_attachments_that_kill_their_reader_hold_the_mail_and_the_agent_goes_on(
    tmp_path, monkeypatch
):
    import mailsafe.extract.attachments
    from mailsafe.extract.isolated import AttachmentReader

    def read_in_the_agent(*_args):
        raise AssertionError("an attachment was read in the agent's own process")

    # Nothing the child failed on is read again here, not even for the approver's preview.
    monkeypatch.setattr(mailsafe.extract.attachments, "_read", read_in_the_agent)

    # A reader whose child may use 180 MiB: it idles at about 100, and reading 33 MB of text
    # takes about 250, so the child dies of its memory limit, as it would on a crafted file.
    with AttachmentReader(memory_bytes=180 * 1024 * 1024) as reader:
        parts = build_workflow(tmp_path, reader=reader)
        big = ("0123456789 " * 3_000_000).encode()
        mail_id = accept(parts, make_mail(subject="대용량", attachments=[("big.txt", big)]))
        assert parts.state.mail(mail_id).state == "held"
        assert parts.publisher.published == []
        scanned = [f for m, step, f in parts.audit.events if m == mail_id and step == "scanned"]
        assert scanned[0]["unreadable"] == ["reader-failed"]

        second = accept(parts, rrn_mail())  # a new child reads the next mail
        row = parts.state.mail(second)
        assert row.state == "held"
        assert {f["masked"] for f in row.findings} == {RRN_MASKED}


def test_the_preview_shows_what_the_scan_read_masked_and_what_it_could_not() -> None:
    from inner_agent.outbound.preview import masked_view
    from mailsafe.extract import Location, Unreadable
    from mailsafe.mime import parse_message

    parsed = parse_message(make_mail(attachments=[("shot.png", b"x"), ("big.pdf", b"y")]))
    found = [
        Location("subject", "보고서"),
        Location("attachment:shot.png", f"고객 {RRN}"),  # e.g. what OCR read in the child
        Unreadable("attachment:big.pdf", "timeout", "reading took too long"),
    ]
    sections = dict(masked_view(parsed, found).sections)
    assert sections["첨부 shot.png"] == f"고객 {RRN_MASKED}"
    assert sections["첨부 big.pdf"] == "(읽지 못했습니다: timeout)"
    assert RRN not in repr(sections)


def test_the_scanned_event_names_the_attachments_masked_with_the_size(parts):
    """What the mail index searches outbound mail by (issue 16.5)."""
    data = make_mail(subject="자료", attachments=[("보고서.xlsx", make_xlsx([["합계", "1"]])),
                                                  (f"명단_{RRN}.txt", b"x")])  # fmt: skip
    mail_id = accept(parts, data)
    (scanned,) = [f for m, step, f in parts.audit.events if m == mail_id and step == "scanned"]
    assert scanned["attachment_count"] == 2
    assert scanned["attachments"][0] == "보고서.xlsx"
    assert RRN not in scanned["attachments"][1]
    assert scanned["attachments"][1].startswith("명단_")
    assert scanned["bytes"] == len(data)


def test_a_bidi_override_in_an_employees_subject_or_file_name_is_a_marker_for_the_approver(parts):
    """A1 red team (an employee misleading their approver): "명단 \u202exslx.gpj" read as
    "명단 jpg.xlsx" in the approval request, the approver's page and the console; the
    attachment "scan\u202exslx.gnp" as "scanpng.xlsx". Bidi controls are now markers there."""
    data = make_mail(subject="명단 \u202exslx.gpj", attachments=[
        ("scan\u202exslx.gnp", make_xlsx([["주민등록번호"], [RRN]]))])  # fmt: skip
    mail_id = accept(parts, data)
    row = parts.state.mail(mail_id)
    assert row.state == "held"
    assert row.subject == "명단 ⟨U+202E⟩xslx.gpj"
    assert [f["where"] for f in row.findings] == ["attachment:scan⟨U+202E⟩xslx.gnp"]
    (scanned,) = [f for m, step, f in parts.audit.events if step == "scanned" and m == mail_id]
    assert scanned["subject"] == "명단 ⟨U+202E⟩xslx.gpj"
    assert scanned["attachments"] == ["scan⟨U+202E⟩xslx.gnp"]
    for notice in notices(parts, "request"):
        text = text_of(notice.data)
        assert "\u202e" not in text
        assert "명단 ⟨U+202E⟩xslx.gpj" in text
        assert "scan⟨U+202E⟩xslx.gnp" in text


def test_a_quarantine_whose_move_failed_is_moved_at_recovery_never_removed(parts, monkeypatch):
    """An I/O error (not a full disk) on the move into quarantine left the mail's copy in the
    spool under a finished state, and recovery removed it as a finished mail's leftover: the
    mail was then in neither place."""
    import inner_agent.outbound.scanning as scanning_module
    import inner_agent.outbound.spool as spool_module

    def broken(*args, **kwargs):
        raise RuntimeError("extractor bug")

    def failing(*args, **kwargs):
        raise OSError(errno.EIO, "Input/output error")

    with monkeypatch.context() as patched:
        patched.setattr(scanning_module, "scan_parsed", broken)
        patched.setattr(spool_module, "move_into_quarantine", failing)
        mail_id = accept(parts, plain_mail())
        parts.workflow.process_received()
        parts.workflow.process_received()
    assert parts.state.mail(mail_id).state == "quarantined"
    left = parts.spool.root / "mail" / mail_id
    assert left.exists()  # the failed move left the copy where it was
    parts.workflow.recover()  # the next start
    assert (parts.spool.root / "quarantine" / mail_id).exists(), "moved, not removed"
    assert not left.exists()
    reason = (parts.spool.root / "quarantine" / f"{mail_id}.reason").read_text()
    assert reason.startswith("moved at recovery")
