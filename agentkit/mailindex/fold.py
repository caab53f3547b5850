"""One row per mail and direction, folded from that mail's audit events. Pure.

``mail_key(event)`` says which row an event belongs to (or None: not about one mail), and
``fold(row, event)`` returns the row with the event taken in. Folding is what the index's
catch-up does, event by event in the order of the audit log's ids; the outer agent's events,
imported later, arrive after the inner agent's events of the same mail, so every part of a row
that several events can set is either a union (steps, agents, recipients, attachment names),
an extreme (first and last time, counts, size) or "the first event that names it" (sender,
subject, client address, rule, reason, department), which the two agents always agree on.

Nothing personal is kept in clear: the subject and the attachment names are masked with
``mailsafe.pii`` here, whatever the event held (the inner agent's events hold them masked
already; masking is idempotent, and an imported event is not trusted to have done it).
Every value is cut to a bounded length: the outer agent's events are data from the other zone.

The outcome of a row is a pure table from the steps seen (``OUTCOME_TABLE``; the page
docs/console-data.md draws it).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, NamedTuple

from agentkit.audit import AuditEvent
from mailsafe.pii import detect, mask_text

__all__ = [
    "DIRECTIONS",
    "EITHER_DIRECTION",
    "INBOUND_STEPS",
    "NOT_ABOUT_A_MAIL",
    "OUTBOUND_STEPS",
    "OUTCOMES",
    "OUTCOME_TABLE",
    "Direction",
    "MailRow",
    "direction_of",
    "fold",
    "fold_all",
    "mail_key",
    "outcome_of",
]

Direction = Literal["in", "out"]
DIRECTIONS: tuple[Direction, ...] = ("in", "out")  # in = internet -> intranet

# Steps only one direction has (the inner agent's and the outer agent's, see agentkit.audit).
INBOUND_STEPS = frozenset({
    "received", "rendered", "published", "refused", "received_inside", "notified", "injected",
    "deferred", "postmaster_notified", "requeued",
    # receive filters (issue 17)
    "inbound_monitored", "inbound_masked", "inbound_blocked", "inbound_held", "inbound_released",
    "inbound_dropped", "inbound_expired", "inbound_decision_refused", "archived",
    "archive_deferred", "archive_failed", "hold_requested", "hold_decided", "decision_sent",
    # several outer agents (D74): the copy that arrived on a second stream
    "duplicate_dropped",
})  # fmt: skip
OUTBOUND_STEPS = frozenset({
    "accepted_outbound", "scanned", "allowed", "blocked", "monitored", "held",
    "approval_requested", "reminded", "escalated", "approved", "rejected", "expired",
    "withdrawn", "sender_notified", "sent_out", "token_refused", "received_outbound", "delivered",
    "delivery_deferred", "bounced",
    # several outer agents (D75): moved to another outer agent's stream
    "stream_takeover",
})  # fmt: skip
# Steps of either direction, told apart by their details (see direction_of).
EITHER_DIRECTION = frozenset({"quarantined", "resent"})
# Steps that are about the link or the web sign-in, not one mail.
# Access records (D40) name their mail in a detail, never as the mail id: who read a mail is
# not part of its trail.
NOT_ABOUT_A_MAIL = frozenset({"link_refused", "signin_spraying", "ldap_unreachable", "access",
                              "policy_published",
                              "policy_applied", "policy_refused", "policy_changed",
                              "policy_reloaded", "audit_pruned", "audit_verified",
                              "retention_pruned", "audit_checkpoint", "took_over",
                              "state_migrated", "outer_claim_refused"})  # fmt: skip
NO_MAIL_IDS = frozenset({"", "-"})  # what events about no mail carry (links.NO_MAIL, CSRF)

MAX_ID_CHARS = 128  # mail ids are 32 hex digits; a longer one is cut, never stored whole
MAX_TEXT_CHARS = 300  # as the inner agent's audit fields (inner_agent.link.AUDIT_FIELD_CHARS)
MAX_RECIPIENTS = 100  # per row; a mail to more keeps the first hundred (sorted) for search
MAX_ATTACHMENT_NAMES = 50  # as inner_agent.link.AUDIT_MAX_WITHHELD; the count stays exact
MAX_COUNT = 1 << 31  # a count or size beyond this is not believed (imported events)
SIZE_STEPS = frozenset({"received", "received_outbound", "scanned"})  # their "bytes": the mail's
REASON_STEPS = frozenset({"quarantined", "refused"})  # their "reason" is a code, not free text
WITHHELD = "+withheld"  # the pseudo-step of a mail with withheld attachments (OUTCOME_TABLE)

# direction, the steps that must all have been seen, the outcome. The first row that matches
# decides; a mail no row matches is "in_progress". Order is precedence: a quarantine outranks
# what came before it, a decision outranks delivery (an approved mail that went out is
# "approved"), a delivery outranks its deferrals.
OUTCOME_TABLE: tuple[tuple[Direction, frozenset[str], str], ...] = (
    # the receive filters' decisions outrank delivery (a released mail that was delivered is
    # "approved"; a blocked mail's notice reaching its reader does not make it "delivered")
    ("in", frozenset({"inbound_blocked"}), "blocked"),
    ("in", frozenset({"inbound_dropped"}), "rejected"),  # held, and the approver said no
    ("in", frozenset({"inbound_expired"}), "expired"),
    ("in", frozenset({"inbound_released"}), "approved"),
    ("in", frozenset({"inbound_held"}), "held"),  # waiting for its approver
    ("in", frozenset({"hold_requested"}), "held"),  # (before the outer agent's event arrives)
    ("in", frozenset({"inbound_masked"}), "masked"),  # carried, personal data masked
    ("in", frozenset({"inbound_monitored"}), "monitored"),
    ("in", frozenset({"injected", WITHHELD}), "withheld"),  # delivered, attachments withheld
    ("in", frozenset({"notified", WITHHELD}), "withheld"),
    ("in", frozenset({"injected"}), "delivered"),  # the notification reached the mail server
    ("in", frozenset({"notified"}), "delivered"),
    ("in", frozenset({"duplicate_dropped"}), "duplicate"),  # the other stream's copy went in
    ("in", frozenset({"quarantined"}), "quarantined"),
    ("in", frozenset({"refused"}), "refused"),
    ("in", frozenset({"deferred"}), "deferred"),  # the internal server has not taken it yet
    ("out", frozenset({"quarantined"}), "quarantined"),
    ("out", frozenset({"bounced"}), "bounced"),  # refused for at least one recipient
    ("out", frozenset({"blocked"}), "blocked"),
    ("out", frozenset({"rejected"}), "rejected"),
    ("out", frozenset({"expired"}), "expired"),
    ("out", frozenset({"withdrawn"}), "withdrawn"),  # the sender took it back while held
    ("out", frozenset({"approved"}), "approved"),
    ("out", frozenset({"held"}), "held"),  # waiting for an approver
    ("out", frozenset({"monitored"}), "monitored"),
    ("out", frozenset({"delivered"}), "delivered"),  # the outer agent delivered it
    ("out", frozenset({"delivery_deferred"}), "deferred"),  # the outer agent is retrying
    ("out", frozenset({"sent_out"}), "sent"),  # on the link; delivery not reported (yet)
)
IN_PROGRESS = "in_progress"
OUTCOMES: tuple[str, ...] = (*dict.fromkeys(o for _, _, o in OUTCOME_TABLE), IN_PROGRESS)

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


class MailRow(NamedTuple):
    """What the index knows of one mail in one direction (addresses in lower case).

    A named tuple rather than a frozen dataclass: the fold makes one per event, and
    ``_replace`` costs a fifth of ``dataclasses.replace``."""

    mail_id: str
    direction: Direction
    first_ts: float  # the mail's time: its first event (the intake)
    last_ts: float
    sender: str = ""  # the envelope sender; "" for a bounce
    recipients: tuple[str, ...] = ()  # sorted, at most MAX_RECIPIENTS
    subject: str = ""  # masked
    client: str = ""  # the SMTP client's address
    rule: str = ""  # the policy rule that decided (outbound)
    reason: str = ""  # the quarantine or refusal code
    department: str = ""  # the sender's department, where the directory knows it (outbound)
    attachments: tuple[str, ...] = ()  # names, masked, sorted, at most MAX_ATTACHMENT_NAMES
    attachment_count: int = 0
    withheld_count: int = 0  # attachments the inbound notification left out
    size: int | None = None  # bytes of the mail as received, where an event says
    steps: frozenset[str] = frozenset()
    agents: frozenset[str] = frozenset()

    @property
    def sender_domain(self) -> str:
        return self.sender.rpartition("@")[2] if "@" in self.sender else ""

    @property
    def recipient_domains(self) -> tuple[str, ...]:
        return tuple(sorted({r.rpartition("@")[2] for r in self.recipients if "@" in r}))

    @property
    def outcome(self) -> str:
        return outcome_of(self.direction, self.steps, self.withheld_count)


def outcome_of(direction: Direction, steps: Iterable[str], withheld_count: int = 0) -> str:
    """The first row of OUTCOME_TABLE whose steps were all seen; else "in_progress"."""
    seen = set(steps) | ({WITHHELD} if withheld_count > 0 else set())
    for row_direction, needed, outcome in OUTCOME_TABLE:
        if row_direction == direction and needed <= seen:
            return outcome
    return IN_PROGRESS


def direction_of(event: AuditEvent) -> Direction | None:
    """in, out, or None when the event is about no mail (or its step is unknown)."""
    if event.step in INBOUND_STEPS:
        return "in"
    if event.step in OUTBOUND_STEPS:
        return "out"
    if event.step == "quarantined":  # the outbound quarantines name themselves so
        return "out" if str(event.details.get("reason", "")).startswith("outbound_") else "in"
    if event.step == "resent":
        return "out" if event.details.get("stream") == "outbound" else "in"
    return None


def mail_key(event: AuditEvent) -> tuple[str, Direction] | None:
    """The row ``event`` belongs to: (mail id, direction); None for events about no mail."""
    direction = direction_of(event)
    if direction is None or event.mail_id in NO_MAIL_IDS:
        return None
    return _one_line(event.mail_id, MAX_ID_CHARS), direction


def fold(row: MailRow | None, event: AuditEvent) -> MailRow:
    """``row`` with ``event`` taken in (a new row when ``row`` is None). The caller groups
    events by ``mail_key``; an event about no mail is a programming error here."""
    if row is None:
        key = mail_key(event)
        if key is None:
            raise ValueError(f"event {event.step!r} of {event.mail_id!r} is about no mail")
        row = MailRow(key[0], key[1], _finite(event.ts), _finite(event.ts))
    changes = _moments(row, event)
    details = event.details
    for read in {_READERS[name] for name in _READERS.keys() & details.keys()}:
        changes.update(read(row, event.step, details))
    return row._replace(**changes) if changes else row


def fold_all(events: Iterable[AuditEvent]) -> dict[tuple[str, Direction], MailRow]:
    """Every mail's row from ``events`` (in id order): the whole index, for tests and checks."""
    rows: dict[tuple[str, Direction], MailRow] = {}
    for event in events:
        key = mail_key(event)
        if key is not None:
            rows[key] = fold(rows.get(key), event)
    return rows


def _moments(row: MailRow, event: AuditEvent) -> dict[str, Any]:
    """Times, steps and agents: what every event may change."""
    changes: dict[str, Any] = {}
    ts = _finite(event.ts)
    if ts < row.first_ts:
        changes["first_ts"] = ts
    if ts > row.last_ts:
        changes["last_ts"] = ts
    if event.step not in row.steps:
        changes["steps"] = row.steps | {event.step}
    if event.agent not in row.agents and (agent := _one_line(event.agent, 16)):
        changes["agents"] = row.agents | {agent}
    return changes


# ---------------------------------------------------------------- what each detail key gives
# A reader gets the row, the step and the details, and returns the fields to change. Scalars
# are taken from the first event that names them.

Reader = Callable[[MailRow, str, Mapping[str, Any]], dict[str, Any]]


def _first(field_name: str, clean: Callable[[Any], str], key: str) -> Reader:
    def read(row: MailRow, step: str, details: Mapping[str, Any]) -> dict[str, Any]:
        if getattr(row, field_name):
            return {}
        value = clean(details[key])
        return {field_name: value} if value else {}

    return read


def _reason(row: MailRow, step: str, details: Mapping[str, Any]) -> dict[str, Any]:
    if step not in REASON_STEPS or row.reason:
        return {}
    value = _one_line(details["reason"], MAX_TEXT_CHARS)
    return {"reason": value} if value else {}


def _recipients(row: MailRow, step: str, details: Mapping[str, Any]) -> dict[str, Any]:
    merged = _union(row.recipients, _addresses(details["rcpts"]), MAX_RECIPIENTS)
    return {"recipients": merged} if merged != row.recipients else {}


def _size(row: MailRow, step: str, details: Mapping[str, Any]) -> dict[str, Any]:
    if step not in SIZE_STEPS:
        return {}
    size = _max_size(row.size, details["bytes"])
    return {"size": size} if size != row.size else {}


def _attachments(row: MailRow, step: str, details: Mapping[str, Any]) -> dict[str, Any]:
    names = _union(row.attachments, _attachment_names(details), MAX_ATTACHMENT_NAMES)
    count = max(row.attachment_count, _attachment_count(details))
    withheld = max(row.withheld_count, _count(details.get("withheld_count")))
    found = {"attachments": names, "attachment_count": count, "withheld_count": withheld}
    return {k: v for k, v in found.items() if v != getattr(row, k)}


def _text(value: Any) -> str:
    return _one_line(value, MAX_TEXT_CHARS)


def _one_line(value: Any, limit: int) -> str:
    """A string value as one line of at most ``limit`` characters; anything else is ""."""
    if not isinstance(value, str):
        return ""
    if len(value) <= limit and value.isprintable() and " " not in value:
        return value  # the common case (an id, an address, a code): nothing to clean
    return " ".join(_UNSAFE.sub(" ", value[: limit * 2]).split())[:limit]


def _masked(value: Any) -> str:
    text = _one_line(value, MAX_TEXT_CHARS)
    return mask_text(text, detect(text)) if text else ""


def _address(value: Any) -> str:
    return _one_line(value, MAX_TEXT_CHARS).lower()


def _addresses(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [a for a in (_address(v) for v in value[: MAX_RECIPIENTS * 2]) if a]


def _attachment_names(details: Mapping[str, Any]) -> list[str]:
    """Names from ``attachments`` (a list of names) and ``withheld`` (a list of objects)."""
    names: list[Any] = []
    for key, pick in (("attachments", None), ("withheld", "name")):
        value = details.get(key)
        if isinstance(value, list):
            for item in value[: MAX_ATTACHMENT_NAMES * 2]:
                names.append(item.get(pick) if pick and isinstance(item, dict) else item)
    return [n for n in (_masked(v) for v in names) if n]


def _attachment_count(details: Mapping[str, Any]) -> int:
    listed = [details.get(key) for key in ("attachments", "withheld")]
    return max(
        _count(details.get("attachment_count")),
        _count(details.get("withheld_count")),
        sum(len(v) for v in listed if isinstance(v, list)),
    )


def _count(value: Any) -> int:
    """A non-negative count from an event; anything else (a bool, text, a huge number) is 0."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT:
        return value
    return 0


def _max_size(current: int | None, value: Any) -> int | None:
    if not (isinstance(value, int) and not isinstance(value, bool) and 0 <= value < MAX_COUNT):
        return current
    return value if current is None else max(current, value)


def _union(kept: tuple[str, ...], more: list[str], limit: int) -> tuple[str, ...]:
    """The ``limit`` smallest of both, sorted: the same set whatever order events came in."""
    if not more:
        return kept
    return tuple(sorted(set(kept).union(more))[:limit])


def _finite(ts: float) -> float:
    return ts if isinstance(ts, (int, float)) and math.isfinite(ts) else 0.0


# Read after every reader is defined; the keys are the detail keys that feed a row.
_READERS: dict[str, Reader] = {
    "mail_from": _first("sender", _address, "mail_from"),
    "subject": _first("subject", _masked, "subject"),
    "client": _first("client", _text, "client"),
    "rule": _first("rule", _text, "rule"),
    "department": _first("department", _text, "department"),
    "reason": _reason,
    "rcpts": _recipients,
    "bytes": _size,
    "attachments": _attachments,
    "withheld": _attachments,
    "attachment_count": _attachments,
    "withheld_count": _attachments,
}
