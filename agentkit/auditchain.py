"""The audit log's hash chain: each event linked to the one before it (issue 21.1).

An event's link is SHA-256 over a fixed prefix, the previous event's link and the event as
stored (its id, time, agent, mail id, step and details text). The ``chain`` table holds the
``head`` (the newest event's id and link, updated in the same transaction as the event) and
the ``base`` (the link the first kept event builds on: zeros at the start, the last pruned
event's link after pruning, with the number of events recorded before the chain began).

So a single row changed, deleted or inserted with ``sqlite3`` breaks the chain where it was
done, and :func:`verify_chain` names that event. An attacker who rewrites every link from a
point onwards is what signed checkpoints are for (a later step of issue 21; docs/compliance.md).

Pure: the functions here read rows handed to them; ``agentkit.audit`` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "GENESIS",
    "ChainBase",
    "ChainHead",
    "ChainReport",
    "ChainRow",
    "link_of",
    "verify_chain",
]

_PREFIX = b"maildiode audit chain v1\n"
GENESIS = bytes(32)  # what the first event of a new chain builds on
_BEFORE = "inserted before the chain's start"


@dataclass(frozen=True)
class ChainRow:
    """An event as stored: what its link covers, and the link stored with it (None: an event
    recorded before the chain began, by an earlier version)."""

    id: int
    ts: float
    agent: str
    mail_id: str
    step: str
    details: str
    link: bytes | None


@dataclass(frozen=True)
class ChainBase:
    id: int  # the events up to this id are before the chain (legacy, or pruned)
    link: bytes  # the link the first event after ``id`` builds on
    legacy: int  # events at or below ``id`` recorded before the chain began (kept, unlinked)


@dataclass(frozen=True)
class ChainHead:
    id: int
    link: bytes


@dataclass(frozen=True)
class ChainReport:
    """What a verification found: ``problem`` is None when the chain holds."""

    checked: int  # linked events verified
    legacy: int  # events from before the chain began
    head_id: int
    problem: str | None = None
    event_id: int | None = None  # the first event that was changed, removed or inserted

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for an administrator or auditor."""
        if self.ok:
            before = f" (and {self.legacy} from before the chain began)" if self.legacy else ""
            return f"the audit chain holds: {self.checked} event(s) linked{before}"
        where = f"event {self.event_id}: " if self.event_id is not None else ""
        return f"the audit chain is broken: {where}{self.problem}"


def link_of(previous: bytes, row: ChainRow) -> bytes:
    """The link of ``row`` after an event whose link is ``previous``."""
    fields = [row.id, row.ts, row.agent, row.mail_id, row.step, row.details]
    body = json.dumps(fields, ensure_ascii=False, separators=(",", ":")).encode()
    return hashlib.sha256(_PREFIX + previous + body).digest()


def verify_chain(rows: Iterable[ChainRow], base: ChainBase, head: ChainHead) -> ChainReport:
    """Check ``rows`` (every event, in id order) against the chain's ``base`` and ``head``."""
    legacy = checked = 0
    previous_id, previous_link = base.id, base.link
    for row in rows:
        if row.id <= base.id and row.link is None:
            legacy += 1
            if legacy > base.legacy:
                return ChainReport(checked, legacy, head.id, _BEFORE, row.id)
            continue
        found = _row_problem(row, previous_id, previous_link, base, head)
        if found is not None:
            return ChainReport(checked, legacy, head.id, found[1], found[0])
        previous_id, previous_link, checked = row.id, row.link or b"", checked + 1
    if legacy != base.legacy:
        problem = f"{base.legacy - legacy} event(s) from before the chain began removed"
        return ChainReport(checked, legacy, head.id, problem)
    if previous_id < head.id:
        return ChainReport(checked, legacy, head.id, "removed (the newest)", previous_id + 1)
    if previous_link != head.link:
        return ChainReport(checked, legacy, head.id, "the chain's head record was changed")
    return ChainReport(checked, legacy, head.id)


def _row_problem(
    row: ChainRow, previous_id: int, previous_link: bytes, base: ChainBase, head: ChainHead
) -> tuple[int, str] | None:
    """What is wrong at ``row`` (the event to name, and how), or None."""
    if row.id <= base.id:
        return row.id, _BEFORE
    if row.id > head.id:
        return row.id, "inserted after the newest event"
    if row.id != previous_id + 1:
        return previous_id + 1, f"removed (events {previous_id + 1}-{row.id - 1} are missing)"
    if row.link != link_of(previous_link, row):
        return row.id, "changed (its link does not match)"
    return None
