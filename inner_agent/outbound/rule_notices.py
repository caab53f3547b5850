"""The mail a rule's ``notify`` asks for (issue 20.1, D62): when a rule decides an outbound
mail, the people it names are told, through the outbox like every other notice; when an
inbound rule decided a mail outside, through the injection queue (``inbound.rule_notices``).

- ``sender``: the envelope sender — only when the outcome sends no notice of its own (allow,
  monitor): a held or blocked mail's sender is told already;
- ``recipient``: the mail's recipients inside (our own domains), never a partner outside;
- ``admin``, ``security``: every enabled account holding that console role.

Composing only, pure: masked subject and the decision's explanation (places and counts, never
values) in, one RFC 5322 message per address out.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid
from typing import Final

from inner_agent.ownmail import MARKER_HEADER, OwnMailKind
from inner_agent.web.accounts import Account
from inner_agent.web.roles import Role

__all__ = ["RuleNotice", "inbound_rule_notice", "notice_addresses", "rule_notice"]

# The outcomes whose sender gets a notice of its own (notices.Notices.to_sender).
SENDER_TOLD: Final = frozenset({"approve", "block"})
ACTION_WORDS: Final = {"block": "차단", "approve": "승인 대기(보류)", "monitor": "기록(모니터)",
                       "allow": "허용"}  # fmt: skip
INBOUND_ACTION_WORDS: Final = {"block": "차단", "hold": "보류(승인 대기)",
                               "monitor": "기록(모니터)", "allow": "허용"}  # fmt: skip
_ROLES: Final = {"admin": Role.ADMIN, "security": Role.SECURITY}


@dataclass(frozen=True)
class RuleNotice:
    rule: str
    action: str
    explanation: str
    sender: str
    recipients: tuple[str, ...]
    subject: str  # masked
    mail_id: str


def notice_addresses(notify: Sequence[str], notice: RuleNotice, our_domains: Collection[str],
                     accounts: Iterable[Account]) -> list[str]:  # fmt: skip
    """Who is told, each once, lower case."""
    found: list[str] = []
    if "sender" in notify and notice.action not in SENDER_TOLD and notice.sender:
        found.append(notice.sender)
    if "recipient" in notify:
        found += [r for r in notice.recipients if r.rpartition("@")[2].lower() in our_domains]
    wanted = {_ROLES[n] for n in notify if n in _ROLES}
    found += [a.email for a in accounts if a.role in wanted and not a.disabled]
    return list(dict.fromkeys(address.lower() for address in found))


def rule_notice(notice: RuleNotice, to: str, *, from_address: str, now: float) -> bytes:
    words = ACTION_WORDS.get(notice.action, notice.action)
    lines = [f"발송 규칙 '{notice.rule}'이(가) 외부로 가는 메일을 {words} 했습니다.", "",
             f"보낸 사람: {notice.sender}", f"받는 사람: {', '.join(notice.recipients)}",
             f"제목: {notice.subject}", f"이유: {notice.explanation}", "",
             f"메일 ID: {notice.mail_id}"]  # fmt: skip
    return _message(notice, words, lines, to, from_address=from_address, now=now)


def inbound_rule_notice(notice: RuleNotice, to: str, *, from_address: str, now: float) -> bytes:
    """An inbound (receive-filter) rule's notice: the outer agent decided, the mark says how."""
    words = INBOUND_ACTION_WORDS.get(notice.action, notice.action)
    lines = [f"수신 규칙 '{notice.rule}'이(가) 외부에서 온 메일을 {words} 했습니다.", "",
             f"보낸 사람: {notice.sender}", f"받는 사람: {', '.join(notice.recipients)}",
             f"제목: {notice.subject}", "", f"메일 ID: {notice.mail_id}"]  # fmt: skip
    return _message(notice, words, lines, to, from_address=from_address, now=now)


def _message(notice: RuleNotice, words: str, lines: list[str], to: str, *, from_address: str,
             now: float) -> bytes:  # fmt: skip
    message = EmailMessage()
    message["From"] = f"maildiode <{from_address}>"
    message["To"] = to
    message["Subject"] = f"[규칙 알림] {notice.rule}: {words} — {notice.subject}"[:300]
    message["Date"] = formatdate(now, usegmt=True)
    message["Message-ID"] = make_msgid(domain=from_address.rpartition("@")[2])
    message["Auto-Submitted"] = "auto-generated"
    message[MARKER_HEADER] = OwnMailKind.APPROVAL.value  # never to go out (ownmail)
    message.set_content("\n".join(lines), charset="utf-8")
    return message.as_bytes(policy=SMTP_POLICY)
