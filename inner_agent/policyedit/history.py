"""A draft outbound rule tried on the mail of the last days, as the audit log kept it
("이 규칙이었다면 지난 7일 동안 37통을 보류했습니다").

The log keeps, per outbound mail, the envelope (``accepted_outbound``: sender, recipients)
and what the scan found (``scanned``: the subject with personal data masked, the attachment
names, their count, the personal-data counts per type, the unreadable reasons, the sender's
department) — not the text of the bodies and attachments. A draft whose conditions read
only these (the fields ``sender``, ``recipient``, ``subject``, ``attachment_name``,
``attachment_count``, ``unreadable``, and ``pii`` on ``any``) is decided for each mail by
``mailsafe.policy.evaluate``; any other condition is refused by name, since a count from a
log without that text would be wrong exactly for the rules worth trying. Pure apart from
``read_outbound``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from agentkit.readonly import query_read_only
from mailsafe.policy import Condition, MailFacts, RuleSet, SenderInfo, evaluate

__all__ = ["MAX_DAYS", "MAX_MAILS", "HistoryTrial", "LoggedMail", "read_outbound", "try_on_history"]

# Days back a draft may be tried on, and mails read for it: a page request, not a report.
MAX_DAYS: Final = 90
MAX_MAILS: Final = 50_000
KEPT_FIELDS: Final = frozenset({"sender", "recipient", "subject", "attachment_name",
                                "attachment_count", "unreadable"})  # fmt: skip
ACTION_WORDS: Final = {"block": "차단", "approve": "보류", "monitor": "기록", "allow": "허용"}


@dataclass(frozen=True)
class LoggedMail:
    sender: str
    recipients: tuple[str, ...]
    department: str | None
    subject: str
    attachments: tuple[str, ...]
    attachment_count: int
    counts: Mapping[str, int]
    unreadable: tuple[str, ...]


@dataclass(frozen=True)
class HistoryTrial:
    days: int
    mails: int  # mails in the log over those days
    applied: int  # mails the draft would have decided (or noted, for monitor)
    action: str
    refused: str = ""  # why the draft cannot be tried on the log ("" when it was)

    @property
    def sentence(self) -> str:
        if self.refused:
            return self.refused
        words = ACTION_WORDS.get(self.action, self.action)
        return (f"이 규칙이었다면 지난 {self.days}일 동안 {self.applied}통을 {words}했습니다 "
                f"(모두 {self.mails}통 중).")  # fmt: skip


def unkept(condition: Condition) -> bool:
    """Whether the condition reads what the log does not keep."""
    if condition.field == "any":
        return condition.pii is None
    return condition.field not in KEPT_FIELDS


def try_on_history(draft: dict[str, Any], mails: Iterable[LoggedMail], days: int, *,
                   sender: Callable[[str, str | None], SenderInfo] = SenderInfo,
                   ) -> HistoryTrial:  # fmt: skip
    """``sender`` describes a logged sender from the directory as it is now (groups, rank,
    departments above: the log keeps only the department)."""
    rules = RuleSet.model_validate({"rule": [{**draft, "enabled": True}]})
    rule = rules.rule[0]
    missing = sorted({c.field for c in rule.condition if unkept(c)})
    if missing:
        return HistoryTrial(days, 0, 0, rule.action, refused=(
            f"지난 메일로는 시험할 수 없습니다: 감사 기록에는 {', '.join(missing)}의 내용이 "
            "남지 않습니다. 메일 파일이나 붙여 넣은 글로 시험해 주십시오."))  # fmt: skip
    total = applied = 0
    for mail in mails:
        total += 1
        applied += evaluate(rules, _facts(mail, sender)).rule == rule.id
    return HistoryTrial(days, total, applied, rule.action)


def _facts(mail: LoggedMail, sender: Callable[[str, str | None], SenderInfo]) -> MailFacts:
    names = tuple((f"attachment-name:{name}", name) for name in mail.attachments)
    findings = tuple(("mail", kind) for kind, n in mail.counts.items() for _ in range(n))
    return MailFacts(
        sender=sender(mail.sender, mail.department), recipients=mail.recipients,
        texts=(("subject", mail.subject), *names), findings=findings,  # type: ignore[arg-type]
        unreadable=tuple(("mail", reason) for reason in mail.unreadable),
        attachment_count=mail.attachment_count,
    )  # fmt: skip


def read_outbound(audit_path: Path, since: float, limit: int = MAX_MAILS) -> list[LoggedMail]:
    """The outbound mails scanned since ``since`` (the newest ``limit``), read-only."""
    rows = query_read_only(
        audit_path,
        "SELECT mail_id, step, details FROM events WHERE ts >= ? AND agent = 'inner'"
        " AND step IN ('accepted_outbound', 'scanned') ORDER BY id DESC LIMIT ?",
        (since, 2 * limit),
    )
    envelopes: dict[str, dict[str, Any]] = {}
    scans: dict[str, dict[str, Any]] = {}
    for mail_id, step, details in rows:
        (envelopes if step == "accepted_outbound" else scans)[mail_id] = json.loads(details)
    return [_logged(envelopes.get(mail_id, {}), scan) for mail_id, scan in scans.items()][:limit]


def _logged(envelope: Mapping[str, Any], scan: Mapping[str, Any]) -> LoggedMail:
    counts = scan.get("counts") or {}
    return LoggedMail(
        sender=str(envelope.get("mail_from", "")),
        recipients=tuple(str(r) for r in envelope.get("rcpts", [])),
        department=scan.get("department") or None,
        subject=str(scan.get("subject", "")),
        attachments=tuple(str(a) for a in scan.get("attachments", [])),
        attachment_count=int(scan.get("attachment_count", 0) or 0),
        counts={str(k): int(v) for k, v in counts.items()} if isinstance(counts, dict) else {},
        unreadable=tuple(str(u) for u in scan.get("unreadable", [])),
    )
