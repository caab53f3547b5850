"""A rule's ``notify``: when it decides an outbound mail, the administrators, security officers,
inside recipients and (when the outcome tells it nothing) the sender it names get a notice."""

from __future__ import annotations

import email
import email.policy

from inner_agent.outbound.spool import SpooledMail, new_mail_id
from inner_agent.web.roles import Role
from mailsafe.policy import parse_rules
from tests.support.console import ADMIN, ALL_PASSWORDS, SECURITY
from tests.support.outbound import build_workflow, plain_mail


def rules(action: str, notify: list[str]):
    return parse_rules({"rule": [{"id": "meeting", "action": action, "notify": notify,
                                  "condition": [{"field": "subject", "contains": "회의"}]}]})  # fmt: skip


def run(tmp_path, action, notify, rcpt=("partner@example.com",)):
    parts = build_workflow(tmp_path, rules=rules(action, notify))
    parts.directory.accounts.add(ADMIN, Role.ADMIN, ALL_PASSWORDS[ADMIN])
    parts.directory.accounts.add(SECURITY, Role.SECURITY, ALL_PASSWORDS[SECURITY])
    mail = SpooledMail(new_mail_id(), "kim@corp.example", rcpt, parts.clock(), "127.0.0.1", "mx")
    parts.spool.store(mail, plain_mail())
    parts.workflow.accepted(mail)
    parts.workflow.process_received()
    return [n for n in parts.state.notices() if n.kind == "rule:meeting"]


def test_the_roles_a_rule_names_are_told(tmp_path):
    found = run(tmp_path, "monitor", ["admin", "security"])
    assert sorted(n.rcpt for n in found) == [ADMIN, SECURITY]
    message = email.message_from_bytes(found[0].data, policy=email.policy.default)
    subject = str(message["Subject"])
    assert subject.startswith("[규칙 알림] meeting: 기록(모니터)")
    assert subject.endswith("회의 일정")
    body = message.get_content()
    assert "보낸 사람: kim@corp.example" in body
    assert "subject contains '회의'" in body


def test_the_sender_only_when_the_outcome_says_nothing_and_recipients_only_inside(tmp_path):
    told = run(tmp_path / "a", "allow", ["sender", "recipient"],
               rcpt=("partner@example.com", "lee@corp.example"))  # fmt: skip
    assert sorted(n.rcpt for n in told) == ["kim@corp.example", "lee@corp.example"]
    blocked = run(tmp_path / "b", "block", ["sender"])
    assert blocked == []  # the blocked-mail notice tells the sender already


def test_no_notify_no_notice(tmp_path):
    assert run(tmp_path, "monitor", []) == []
