"""Another agent's audit events, checked before this agent's audit log takes them in. Pure.

The outer agent's events reach the inner agent in its signed status report and are stored in
the inner agent's audit log under ``agent = "outer"`` (``AuditLog.import_events``), so one
store answers for both zones and the mail index joins a mail's events of both sides by mail
id. The report comes from the other zone, which the inner agent assumes may be compromised
(docs/architecture.md, trust boundary 2): every event is checked and bounded here, an event
that fails is refused alone with its reason, and the others are taken in.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MAX_CLOCK_AHEAD_S",
    "MAX_DETAILS_BYTES",
    "MAX_MAIL_ID_CHARS",
    "EventRefused",
    "ImportResult",
    "ImportedEvent",
    "agent_name_refusal",
    "details_text",
    "refusal",
]

MAX_MAIL_ID_CHARS = 128  # ours are 32 hex digits
MAX_DETAILS_BYTES = 8192  # the largest event of ours (a quarantine with its detail) is ~1 KB
MAX_CLOCK_AHEAD_S = 86400.0  # an event dated further ahead of our clock is not believed
MAX_SOURCE_ID = (1 << 63) - 1  # SQLite's largest integer
_AGENT_NAME = re.compile(r"[a-z][a-z0-9_-]{0,15}")
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class ImportedEvent:
    """One event as the other agent recorded it (``untrusted``: checked by ``refusal``)."""

    source_id: int  # its id in the other agent's audit log: the import's key with the agent
    ts: float
    mail_id: str
    step: str
    details: Mapping[str, Any]


@dataclass(frozen=True)
class EventRefused:
    source_id: object
    reason: str


@dataclass(frozen=True)
class ImportResult:
    added: int  # stored now
    already: int  # stored by an earlier import (the same agent and source id)
    refused: tuple[EventRefused, ...]


def agent_name_refusal(agent: str, local_agent: str) -> str | None:
    """Why ``agent`` cannot name imported events (None: it can)."""
    if not isinstance(agent, str) or not _AGENT_NAME.fullmatch(agent):
        return f"agent name {agent!r} is not 1-16 lower-case letters, digits, '-' or '_'"
    if agent == local_agent:
        return f"events of {agent!r} are this audit log's own; nothing to import"
    return None


def refusal(event: ImportedEvent, steps: frozenset[str], now: float) -> str | None:
    """Why ``event`` is not taken in (None: it is), in words for the log."""
    return (
        _source_id_refusal(event.source_id)
        or _time_refusal(event.ts, now)
        or _mail_id_refusal(event.mail_id)
        or (None if event.step in steps else f"unknown step {str(event.step)[:40]!r}")
        or (None if details_text(event.details) is not None else
            f"details are not a JSON object of at most {MAX_DETAILS_BYTES} bytes")
    )  # fmt: skip


def _source_id_refusal(source_id: Any) -> str | None:
    if isinstance(source_id, bool) or not isinstance(source_id, int):
        return "source id is not an integer"
    if not 1 <= source_id <= MAX_SOURCE_ID:
        return f"source id {source_id} is out of range"
    return None


def _time_refusal(ts: Any, now: float) -> str | None:
    if isinstance(ts, bool) or not isinstance(ts, (int, float)) or not math.isfinite(ts):
        return "time is not a number"
    if not 0 < ts <= now + MAX_CLOCK_AHEAD_S:
        return f"time {ts} is before 1970 or more than a day ahead of this agent's clock"
    return None


def _mail_id_refusal(mail_id: Any) -> str | None:
    if not isinstance(mail_id, str) or not 0 < len(mail_id) <= MAX_MAIL_ID_CHARS:
        return f"mail id is not a string of 1 to {MAX_MAIL_ID_CHARS} characters"
    if _UNSAFE.search(mail_id):
        return "mail id holds control characters"
    return None


def details_text(details: Any) -> str | None:
    """The details as the audit log stores them (JSON), or None when they cannot be."""
    if not isinstance(details, Mapping) or not all(isinstance(k, str) for k in details):
        return None
    try:
        text = json.dumps(dict(details), ensure_ascii=False, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError, RecursionError):
        return None
    return text if len(text.encode()) <= MAX_DETAILS_BYTES else None
