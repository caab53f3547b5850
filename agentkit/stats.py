"""Statistics from the audit log: mails per step, per day, month or year, optionally per sender
domain, recipient, quarantine reason or policy rule (the feature table's "통계": 월별, 도메인별,
회원별, 필터별; 일간, 월간, 연간; 엑셀저장).

Pure: audit events in, a table out. A cell counts distinct mails, so a mail injected as three
notifications, or deferred five times, counts once for its step. The period of an event is
its time in the given time zone. A mail's sender domain and recipients come from whichever of
its events carries them (``received``, ``received_inside``, ``accepted_outbound``); a reason or
a rule belongs to the event that names it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, tzinfo
from typing import Any, Literal

from agentkit.access import ACCESS_STEP
from agentkit.audit import AuditEvent

__all__ = ["GROUPS", "PERIODS", "STEP_ORDER", "StatsTable", "tally"]

Period = Literal["day", "month", "year"]
Group = Literal["none", "sender-domain", "recipient", "reason", "rule"]
PERIODS: tuple[Period, ...] = ("day", "month", "year")
GROUPS: tuple[Group, ...] = ("none", "sender-domain", "recipient", "reason", "rule")

_PERIOD_FORMAT = {"day": "%Y-%m-%d", "month": "%Y-%m", "year": "%Y"}
# Columns in the order a mail goes through its steps (then any other step, by name).
STEP_ORDER = (
    "received", "refused", "rendered", "published", "received_inside", "notified", "injected",
    "deferred", "postmaster_notified", "accepted_outbound", "scanned", "allowed", "monitored",
    "held", "approval_requested", "reminded", "escalated", "approved", "rejected", "expired",
    "withdrawn",
    "blocked", "token_refused", "sender_notified", "sent_out", "received_outbound", "delivered",
    "delivery_deferred", "bounced", "quarantined", "resent", "requeued", "link_refused",
    "signin_spraying", "ldap_unreachable",
    "access",  # access records are never counted (tally skips them)
    # receive filters (issue 17)
    "inbound_monitored", "inbound_masked", "inbound_blocked", "inbound_held", "hold_requested",
    "hold_decided", "decision_sent", "inbound_released", "inbound_dropped", "inbound_expired",
    "inbound_decision_refused", "archived", "archive_deferred", "archive_failed",
    "policy_published", "policy_applied", "policy_refused", "policy_changed", "policy_reloaded",
    # the audit log's own upkeep (issue 21): not about a mail
    "audit_pruned", "audit_verified", "retention_pruned", "audit_checkpoint",
    "outer_claim_refused",
    # a standby took over the inner agent's state (docs/operations.md): not about a mail
    "took_over",
    # an upgrade of the state at start (issue 22.6): not about a mail
    "state_migrated",
    # several outer agents (issue 23)
    "duplicate_dropped", "stream_takeover",
)  # fmt: skip
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class StatsTable:
    """Rows of (period, group key, counts per step); ``steps`` names the count columns."""

    period: Period
    group: Group
    steps: tuple[str, ...]
    rows: tuple[tuple[str, str, tuple[int, ...]], ...]

    def header(self) -> list[str]:
        key = [] if self.group == "none" else [self.group]
        return [self.period, *key, *self.steps]

    def records(self) -> list[list[str | int]]:
        """The table as rows of cells, header excluded (for CSV and spreadsheets)."""
        keyed = self.group != "none"
        return [[period, *([key] if keyed else []), *counts] for period, key, counts in self.rows]

    def totals(self) -> list[int]:
        """Per step, the sum of the rows (a mail in two periods counts in both)."""
        return [sum(counts[i] for _, _, counts in self.rows) for i in range(len(self.steps))]


def tally(
    events: Iterable[AuditEvent],
    *,
    period: Period = "day",
    group: Group = "none",
    zone: tzinfo | None = None,
) -> StatsTable:
    """Distinct mails per (period, group key, step) from ``events`` (any order)."""
    events = list(events)
    keys_of_mail = _keys_of_mail(events, group) if group in ("sender-domain", "recipient") else {}
    cells: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for event in events:
        if event.step == ACCESS_STEP:  # who looked at what: not a step of any mail
            continue
        when = datetime.fromtimestamp(event.ts, zone).strftime(_PERIOD_FORMAT[period])
        for key in _keys(event, group, keys_of_mail):
            cells[(when, key)][event.step].add(event.mail_id)
    present = {step for steps in cells.values() for step in steps}
    steps = tuple(s for s in STEP_ORDER if s in present) + tuple(sorted(present - set(STEP_ORDER)))
    rows = tuple(
        (when, key, tuple(len(cells[(when, key)].get(step, ())) for step in steps))
        for when, key in sorted(cells)
    )
    return StatsTable(period, group, steps, rows)


def _keys(event: AuditEvent, group: Group, keys_of_mail: dict[str, list[str]]) -> list[str]:
    if group == "none":
        return [""]
    if group in ("reason", "rule"):
        value = event.details.get(group)  # the detail is named like the group
        return [str(value)] if value else []  # only the events that name one
    return keys_of_mail.get(event.mail_id) or [UNKNOWN]


def _keys_of_mail(events: Sequence[AuditEvent], group: Group) -> dict[str, list[str]]:
    """mail id -> its sender domain (one) or its recipients (several), from any event."""
    found: dict[str, list[str]] = {}
    for event in events:
        if event.mail_id in found:
            continue
        keys = (
            _sender_domain(event.details)
            if group == "sender-domain"
            else _recipients(event.details)
        )
        if keys:
            found[event.mail_id] = keys
    return found


def _sender_domain(details: dict[str, Any]) -> list[str]:
    sender = details.get("mail_from")
    if not isinstance(sender, str) or "@" not in sender:
        return []
    return [sender.rpartition("@")[2].lower()]


def _recipients(details: dict[str, Any]) -> list[str]:
    rcpts = details.get("rcpts")
    if not isinstance(rcpts, list):
        return []
    return sorted({str(r).lower() for r in rcpts if r})
