"""The JSON shapes the console and the API answer with (their contract). Pure.

A list is ``{"items": [mail, ...], "total": N}``; a mail is at least ``{"id", "direction",
"time", "sender", "recipients", "subject", "outcome"}`` plus the fields below; a mail's detail
adds ``"trail": [{"time", "agent", "step", ...}]``; statistics are ``{"rows": [{"period",
"group", "count"}]}``. Times are ISO 8601 with the offset of the site's zone. docs/console-data.md
lists every field; tests/agentkit/test_mailindex.py pins the shapes.
"""

from __future__ import annotations

from datetime import tzinfo
from typing import Any

from agentkit.audit import AuditEvent
from agentkit.mailindex.fold import MailRow
from agentkit.mailindex.periods import iso_time
from mailsafe.pii import detect, mask_text

__all__ = ["FREE_TEXT_KEYS", "MAIL_FIELDS", "cursor", "mail", "trail_item"]

# The fields of a mail, in the order they are given (the first seven are the contract's).
MAIL_FIELDS = (
    "id", "direction", "time", "sender", "recipients", "subject", "outcome", "last_time",
    "sender_domain", "recipient_domains", "client", "rule", "reason", "department",
    "attachments", "attachment_count", "withheld_count", "size", "agents", "cursor",
)  # fmt: skip
# Detail keys whose values are free text from a mail, a server or a person (an approver's
# reason for a rejection is recorded as written): masked again in a trail.
FREE_TEXT_KEYS = frozenset({"subject", "name", "attachments", "explanation", "note", "detail",
                            "reason", "reasons", "error", "reply"})  # fmt: skip


def mail(row: MailRow, row_id: int, zone: tzinfo) -> dict[str, Any]:
    """A mail as a list shows it. ``cursor`` is what ``after=`` takes for the next page."""
    return {
        "id": row.mail_id, "direction": row.direction, "time": iso_time(row.first_ts, zone),
        "sender": row.sender, "recipients": list(row.recipients), "subject": row.subject,
        "outcome": row.outcome, "last_time": iso_time(row.last_ts, zone),
        "sender_domain": row.sender_domain, "recipient_domains": list(row.recipient_domains),
        "client": row.client, "rule": row.rule, "reason": row.reason,
        "department": row.department, "attachments": list(row.attachments),
        "attachment_count": row.attachment_count, "withheld_count": row.withheld_count,
        "size": row.size, "agents": sorted(row.agents), "cursor": cursor(row, row_id),
    }  # fmt: skip


def cursor(row: MailRow, row_id: int) -> str:
    return f"{row.first_ts!r}:{row_id}"


def trail_item(event: AuditEvent, zone: tzinfo) -> dict[str, Any]:
    """One event of a mail's trail: time, agent and step, then its details (free text masked;
    a detail named like one of the first three is left out)."""
    shown: dict[str, Any] = {"time": iso_time(event.ts, zone), "agent": event.agent,
                             "step": event.step}  # fmt: skip
    for key, value in event.details.items():
        if key not in shown:
            shown[key] = _masked(key, value)
    return shown


def _masked(key: str, value: Any) -> Any:
    """``value`` with every string under a free-text key masked, nested ones too."""
    if isinstance(value, dict):
        return {k: _masked(k, v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked(key, v) for v in value]
    if isinstance(value, str) and key in FREE_TEXT_KEYS:
        return mask_text(value, detect(value))
    return value
