"""Reads and judges one outbound mail: parsed once, its attachments read once (in the reader's
child process when the agent gives one), scanned for personal data, decided by the rules. The
approver's preview is later drawn from the same reading, so nothing is read twice."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any

from inner_agent.outbound.directory import User
from inner_agent.outbound.senders import SenderCheck, check_sender
from inner_agent.outbound.spool import SpooledMail
from mailsafe.extract import Found, extract_locations
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.mime import SUBJECT_SCAN_BYTES, ParsedMail, parse_message
from mailsafe.pii import detect, mask_text
from mailsafe.policy import RuleSet, SenderInfo
from mailsafe.scan import ScanResult, scan_parsed

__all__ = ["Scanned", "Scanner"]

# The subject kept (masked) for the pages, notices and the audit log.
MAX_SUBJECT_CHARS = 300


@dataclass(frozen=True)
class Scanned:
    """A mail as the scan saw it, and the decision."""

    parsed: ParsedMail
    found: list[Found]
    result: ScanResult
    subject: str  # masked
    sender: SenderCheck  # the envelope sender and From:, resolved in the directory
    ms: float  # how long reading and scanning took

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
                {"type": lf.finding.type, "masked": lf.finding.masked, "where": lf.where}
                for lf in self.result.findings
            ],
        }

    def audited(self) -> dict[str, Any]:
        """The ``scanned`` audit event's fields (the subject masked: searchable without
        holding personal data)."""
        fields = {
            "subject": self.subject,
            "action": self.result.decision.action,
            "rule": self.result.decision.rule,
            "findings": len(self.result.findings),
            "counts": {kind: n for kind, n in self.result.counts().items() if n},
            "department": self.department,
            "unreadable": [u.reason for u in self.result.unreadable],
            "ms": self.ms,
        }
        if self.sender.mismatch:
            fields["sender_mismatch"] = self.sender.mismatch
        return fields


class Scanner:
    def __init__(self, rules: RuleSet, reader: AttachmentReader | None = None) -> None:
        # Attachments are read in a child process under limits (the agent passes one); without
        # a reader they are read in this process, as unit tests do.
        self.rules, self.reader = rules, reader

    def scan(self, mail: SpooledMail, data: bytes, lookup: Callable[[str], User | None]) -> Scanned:
        """``lookup`` finds a user in the directory by address."""
        started = time.monotonic()
        parsed = parse_message(data)
        sender = check_sender(mail.mail_from, parsed.from_, lookup)
        department = sender.user.department if sender.user else None
        found = self.reader.read(parsed) if self.reader is not None else extract_locations(parsed)
        result = scan_parsed(
            parsed, self.rules, SenderInfo(mail.mail_from, department),
            recipients=mail.rcpt_to, found=found,
        )  # fmt: skip
        ms = round((time.monotonic() - started) * 1000, 1)
        return Scanned(parsed, found, result, masked_subject(data), sender, ms)


def masked_subject(data: bytes) -> str:
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(data[:SUBJECT_SCAN_BYTES])
        subject = " ".join(str(headers.get("Subject", "")).split())
    except (ValueError, TypeError, IndexError):
        subject = ""
    subject = subject[:MAX_SUBJECT_CHARS]
    return mask_text(subject, detect(subject))
