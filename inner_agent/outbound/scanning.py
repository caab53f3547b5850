"""Reads and judges one outbound mail: parsed once, its attachments read once (in the reader's
child process when the agent gives one), scanned for personal data, decided by the rules. The
approver's preview is later drawn from the same reading, so nothing is read twice."""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, replace
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from inner_agent.outbound.directory import User
from inner_agent.outbound.rulesource import RulesSource
from inner_agent.outbound.senders import SenderCheck, check_sender
from inner_agent.outbound.spool import SpooledMail
from mailsafe.extract import Found, extract_locations
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.lookalike import reveal_bidi_controls
from mailsafe.mime import SUBJECT_SCAN_BYTES, ParsedMail, parse_message
from mailsafe.pii import detect, mask_text
from mailsafe.policy import Decision, RuleSet, SenderInfo
from mailsafe.scan import ScanResult, scan_parsed

__all__ = ["MISMATCH_RULE", "Scanned", "Scanner"]

# The subject kept (masked) for the pages, notices and the audit log.
MAX_SUBJECT_CHARS = 300
# Attachment names in the ``scanned`` audit event (as the inbound side's AUDIT_MAX_WITHHELD).
MAX_AUDITED_NAMES = 50
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# The rule named when the sender check alone holds a mail (senders.py, SenderCheck.holds).
MISMATCH_RULE = "sender-mismatch"
MISMATCH_EXPLANATION = (
    "보내는 사람 불일치: 보안 담당자의 확인이 필요합니다 "
    "(the envelope sender and From: show different people; held for a security officer)"
)


@dataclass(frozen=True)
class Scanned:
    """A mail as the scan saw it, and the decision."""

    parsed: ParsedMail
    found: list[Found]
    result: ScanResult
    subject: str  # masked
    sender: SenderCheck  # the envelope sender and From:, resolved in the directory
    ms: float  # how long reading and scanning took
    size: int = 0  # bytes of the mail as the intake took it
    policy_action: str | None = None  # the rules' own action when the sender check overrode it

    def held_for_mismatch(self) -> Scanned:
        """This scan with the mail held for a security officer when the sender check says the
        mismatch holds it and the rules would let it go (blocked mail stays blocked)."""
        decision = self.result.decision
        if not self.sender.holds or decision.action not in ("allow", "monitor"):
            return self
        held = Decision("approve", MISMATCH_RULE, MISMATCH_EXPLANATION)
        return replace(self, result=replace(self.result, decision=held),
                       policy_action=decision.action)  # fmt: skip

    @property
    def department(self) -> str | None:
        """The envelope sender's department: whose rules apply (docs/policy.md)."""
        return self.sender.user.department if self.sender.user else None

    def stored(self) -> dict[str, Any]:
        """What the state database keeps of the scan (all masked)."""
        decision = self.result.decision
        return {
            "subject": self.subject,
            "decision": {
                "action": decision.action,
                "rule": decision.rule,
                "explanation": decision.explanation,
                "sender": self.sender.to_json(),
            },
            "findings": [
                {
                    "type": lf.finding.type,
                    "masked": lf.finding.masked,
                    "where": reveal_bidi_controls(lf.where),
                }
                for lf in self.result.findings
            ],
        }

    def audited(self) -> dict[str, Any]:
        """The ``scanned`` audit event's fields (the subject masked: searchable without
        holding personal data)."""
        named = [a for a in self.parsed.attachments if a.filename]
        fields = {
            "subject": self.subject,
            "action": self.result.decision.action,
            "rule": self.result.decision.rule,
            "findings": len(self.result.findings),
            "counts": {kind: n for kind, n in self.result.counts().items() if n},
            "department": self.department,
            "unreadable": [u.reason for u in self.result.unreadable],
            "ms": self.ms,
            # For the mail index: searched by attachment name and count, and by size.
            "attachments": [_masked(a.filename) for a in named[:MAX_AUDITED_NAMES]],
            "attachment_count": len(self.parsed.attachments),
            "bytes": self.size,
        }
        if self.sender.mismatch:
            fields["sender_mismatch"] = self.sender.mismatch
        if self.policy_action is not None:
            fields["policy_action"] = self.policy_action
        if self.sender.auto_reply:
            fields["auto_reply"] = True
        return fields


class Scanner:
    def __init__(self, rules: RuleSet | RulesSource, reader: AttachmentReader | None = None
                 ) -> None:  # fmt: skip
        # Attachments are read in a child process under limits (the agent passes one); without
        # a reader they are read in this process, as unit tests do. The agent passes a
        # RulesSource: each mail is decided by the rules in force when it is scanned.
        self.rules, self.reader = rules, reader

    def current_rules(self) -> RuleSet:
        return self.rules.current() if isinstance(self.rules, RulesSource) else self.rules

    def scan(
        self,
        mail: SpooledMail,
        data: bytes,
        lookup: Callable[[str], User | None],
        our_domains: Collection[str] = (),
        above: Callable[[str], tuple[str, ...]] = lambda _department: (),
    ) -> Scanned:
        """``lookup`` finds a user in the directory by address; ``our_domains`` are the
        directory's mail domains; ``above`` names the departments above one (nearest first)."""
        started = time.monotonic()
        parsed = parse_message(data)
        sender = check_sender(mail.mail_from, parsed.from_, lookup, our_domains=our_domains,
                              auto_replied=auto_submitted(data) == "auto-replied")  # fmt: skip
        found = self.reader.read(parsed) if self.reader is not None else extract_locations(parsed)
        result = scan_parsed(
            parsed, self.current_rules(), sender_info(sender.address, sender.user, above),
            recipients=mail.rcpt_to, found=found,
        )  # fmt: skip
        ms = round((time.monotonic() - started) * 1000, 1)
        return Scanned(parsed, found, result, masked_subject(data), sender, ms, size=len(data))


def sender_info(address: str, user: User | None,
                above: Callable[[str], tuple[str, ...]]) -> SenderInfo:  # fmt: skip
    """What a rule's scope asks of the sender, from the directory (nothing for a stranger)."""
    if user is None:
        return SenderInfo(address)
    return SenderInfo(address, user.department, above(user.department), user.groups, user.rank)


def auto_submitted(data: bytes) -> str:
    """The ``Auto-Submitted:`` keyword (RFC 3834), lower-case; "" without one."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(data[:SUBJECT_SCAN_BYTES])
        value = str(headers.get("Auto-Submitted", ""))
    except (ValueError, TypeError, IndexError):
        return ""
    return value.split(";", 1)[0].strip().lower()


def masked_subject(data: bytes) -> str:
    """The Subject as pages, notices and the audit log keep it: one line without controls,
    cut, personal data masked, and each bidi control a visible ``⟨U+XXXX⟩`` (an employee must
    not make "명단 \u202exslx.gpj" read "명단 jpg.xlsx" to the approver; other invisible
    characters are common in typed subjects and reorder nothing, D22)."""
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(data[:SUBJECT_SCAN_BYTES])
        subject = " ".join(_CONTROL.sub(" ", str(headers.get("Subject", ""))).split())
    except (ValueError, TypeError, IndexError):
        subject = ""
    subject = subject[:MAX_SUBJECT_CHARS]
    return reveal_bidi_controls(mask_text(subject, detect(subject)))


def _masked(text: str) -> str:
    """An attachment name as the audit log keeps it: one line, cut, personal data masked,
    bidi controls shown as markers (as in ``masked_subject``)."""
    line = " ".join(_CONTROL.sub(" ", text[: MAX_SUBJECT_CHARS * 2]).split())[:MAX_SUBJECT_CHARS]
    return reveal_bidi_controls(mask_text(line, detect(line)))
