"""The audit log's hash chain: each event linked to the one before it (issue 21.1).

An event's link is SHA-256 over a fixed prefix, the previous event's link and the event as
stored (its id, time, agent, mail id, step and details text). The ``chain`` table holds the
``head`` (the newest event's id and link, updated in the same transaction as the event) and
the ``base`` (the link the first kept event builds on: zeros at the start, the last pruned
event's link after pruning, with the number of events recorded before the chain began).

So a single row changed, deleted or inserted with ``sqlite3`` breaks the chain where it was
done, and :func:`verify_chain` names that event. An attacker who rewrites every link from a
point onwards (and the head) makes a chain that holds again: **signed checkpoints** catch that.
Every so often the agent signs (its Ed25519 key, the link's own key) the newest event's id and
link; :func:`checkpoint_problem` finds the first checkpoint the log no longer agrees with. A
checkpoint is only as safe as where its copies are: the log line each one writes (to the
journal, usually shipped elsewhere), and for the outer agent the copy carried inward in its
status report, out of reach of whoever holds the DMZ host and its key.

Pure: the functions here read rows handed to them; ``agentkit.audit`` does the I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "CHECKPOINT_STEP",
    "GENESIS",
    "ChainBase",
    "ChainHead",
    "ChainReport",
    "ChainRow",
    "Checkpoint",
    "check_extract",
    "checkpoint_details",
    "checkpoint_from_details",
    "checkpoint_message",
    "checkpoint_problem",
    "link_of",
    "verify_chain",
]

_PREFIX = b"maildiode audit chain v1\n"
_CHECKPOINT_PREFIX = b"maildiode audit checkpoint v1\n"
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
    checkpoints: int = 0  # signed checkpoints the log agrees with
    last_checkpoint: float | None = None  # the newest one's time

    @property
    def ok(self) -> bool:
        return self.problem is None

    def describe(self) -> str:
        """One line for an administrator or auditor."""
        if self.ok:
            before = f" (and {self.legacy} from before the chain began)" if self.legacy else ""
            signed = ""
            if self.last_checkpoint is not None:
                signed = (f"; {self.checkpoints} signed checkpoint(s) agree, the last of "
                          f"{_when(self.last_checkpoint)}")  # fmt: skip
            return f"the audit chain holds: {self.checked} event(s) linked{before}{signed}"
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


@dataclass(frozen=True)
class Checkpoint:
    """The agent's signed statement: "my log's event ``event_id`` has link ``link``"."""

    agent: str
    event_id: int
    link: bytes
    ts: float
    key_id: bytes
    signature: bytes

    def message(self) -> bytes:
        return checkpoint_message(self.agent, self.event_id, self.link, self.ts)


def checkpoint_message(agent: str, event_id: int, link: bytes, ts: float) -> bytes:
    """What a checkpoint's signature covers (domain-separated from every chunk signature)."""
    body = json.dumps([agent, event_id, link.hex(), ts], separators=(",", ":")).encode()
    return _CHECKPOINT_PREFIX + body


# The audit step that announces a checkpoint in the signer's own log: how the outer agent's
# checkpoints travel inward, as events of its status report (docs/protocol.md §16.4). An
# inner agent that does not know the step refuses that one event and imports the others.
CHECKPOINT_STEP = "audit_checkpoint"
_HEX = frozenset("0123456789abcdef")
MAX_CHECKPOINT_KEY_BYTES = 32  # key ids are 8 bytes (protocol.keys); room to grow
MAX_SIGNATURE_BYTES = 64  # Ed25519


def checkpoint_details(point: Checkpoint) -> dict[str, int | float | str]:
    """The details of the ``audit_checkpoint`` event announcing ``point`` (hex for bytes:
    a report carries no binary field)."""
    return {"event": point.event_id, "link": point.link.hex(), "signed_at": point.ts,
            "key": point.key_id.hex(), "signature": point.signature.hex()}  # fmt: skip


def checkpoint_from_details(agent: str, untrusted: Mapping[str, object]) -> Checkpoint | None:
    """The checkpoint another agent's ``audit_checkpoint`` event announces, or None when its
    details do not hold one (its signature is still to be checked)."""
    event_id, ts = untrusted.get("event"), untrusted.get("signed_at")
    if isinstance(event_id, bool) or not isinstance(event_id, int) or not 0 < event_id < 1 << 63:
        return None
    if isinstance(ts, bool) or not isinstance(ts, int | float) or not 0 < ts < 1e10:
        return None
    link = _hex_bytes(untrusted.get("link"), 32)
    key_id = _hex_bytes(untrusted.get("key"), MAX_CHECKPOINT_KEY_BYTES)
    signature = _hex_bytes(untrusted.get("signature"), MAX_SIGNATURE_BYTES)
    if link is None or key_id is None or signature is None or len(link) != 32:
        return None
    return Checkpoint(agent, event_id, link, float(ts), key_id, signature)


def _hex_bytes(untrusted: object, max_bytes: int) -> bytes | None:
    if type(untrusted) is not str or not 0 < len(untrusted) <= 2 * max_bytes:
        return None
    if len(untrusted) % 2 or not set(untrusted) <= _HEX:
        return None
    return bytes.fromhex(untrusted)


Verifier = Callable[[bytes, bytes, bytes], bool | None]  # key id, signature, message


def checkpoint_problem(
    checkpoints: Iterable[Checkpoint],
    links: Mapping[int, bytes],
    base: ChainBase,
    head: ChainHead,
    verify: Verifier,
) -> tuple[int | None, str] | None:
    """The first checkpoint the log disagrees with (the event to name, and how), or None.

    ``links``: the stored link of every kept event (after :func:`verify_chain` held, so each
    is right for the log as it now is). ``verify(key_id, signature, message)``: True when
    valid, False when not, None when no key of ours has that id."""
    for point in sorted(checkpoints, key=lambda c: c.event_id):
        valid = verify(point.key_id, point.signature, point.message())
        when = _when(point.ts)
        if valid is None:
            return None, f"the checkpoint of {when} is signed by a key this agent does not have"
        if not valid:
            return None, f"the checkpoint of {when} does not verify (changed)"
        if point.event_id > head.id:
            return head.id + 1, (
                f"removed: the checkpoint of {when} names event {point.event_id}, the log ends "
                f"at {head.id}"
            )
        if point.event_id < base.id:
            continue  # pruned: nothing left to compare
        stored = base.link if point.event_id == base.id else links.get(point.event_id)
        if stored != point.link:
            return point.event_id, (
                f"rewritten: its link differs from the checkpoint signed at {when} (the events up "
                "to it were changed and their links computed again)"
            )
    return None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def check_extract(rows: Iterable[tuple[ChainRow, bytes]]) -> tuple[int, list[str]]:
    """Check an exported extract without the log: each row (as exported, with the link it
    builds on) must hash to its own link, and rows with consecutive ids must chain. Returns
    the rows checked and a problem line per row that does not (empty: the extract is as
    logged). What it cannot tell alone: rows left out of the extract, or a whole extract
    forged with its links computed again — compare its links with the log or a checkpoint."""
    problems: list[str] = []
    checked = 0
    previous: ChainRow | None = None
    for row, prev_link in rows:
        checked += 1
        if row.link != link_of(prev_link, row):
            problems.append(f"event {row.id}: changed (its link does not match its content)")
        elif previous is not None and row.id == previous.id + 1 and prev_link != previous.link:
            problems.append(f"event {row.id}: does not follow event {previous.id}")
        previous = row
    return checked, problems
