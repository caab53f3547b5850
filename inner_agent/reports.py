"""The outer agent's status reports, received on the inbound link (docs/protocol.md §16.4).

A CONTROL bundle reached the handler only after the protocol verified it like every bundle
(signature, stream, kind). :class:`ControlHandler` decodes its content strictly
(``agentkit.control.decode_control``: only a ``status-report`` is accepted on the inbound
stream), imports the report's audit events into the inner agent's audit store under
``agent = "outer"`` (keyed by the outer agent's event id, so a report sent twice adds nothing),
keeps the outer agent's signed audit checkpoints its ``audit_checkpoint`` events announce (when
a key of *that stream's* outer agent verifies them: one DMZ host speaks only for itself, D98),
and stores the report's figures with their receive time
in ``state.dir/reports.db``. A payload that does not decode raises ``ControlRefused``; the
bundle handler quarantines it like any refused bundle and goes on with the next one.

The latest report of a stream is the one made last, not the one that arrived last (a resent
report may arrive late). ``REPORT_HISTORY`` reports are kept per stream.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog
from agentkit.auditchain import CHECKPOINT_STEP, Checkpoint, checkpoint_from_details
from agentkit.auditimport import ImportedEvent
from agentkit.control import StatusReport, decode_control
from agentkit.readonly import query_read_only
from agentkit.streams import outer_agent_name
from protocol.keys import VerifyKey
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
)

__all__ = [
    "OUTER_AGENT",
    "REPORT_HISTORY",
    "STALE_AFTER_INTERVALS",
    "CheckpointRefusal",
    "ControlHandler",
    "ReportStore",
    "StoredReport",
    "latest_report",
    "report_freshness",
]

log = logging.getLogger(__name__)

# The agent name imported events are stored under (the outer agent's own log uses it too);
# one of several outer agents: "outer-ID" (agentkit.streams.outer_agent_name, D74).
OUTER_AGENT = "outer"
# Reports kept per stream: a day at the default interval of 30 s, for the console's history.
REPORT_HISTORY = 2880
# Older reports are deleted every this many new ones, not at every insert.
PRUNE_EVERY = 100
# A report older than this many of its intervals is stale: two missed reports can be a slow
# linkage pass, three are the link or the outer agent down.
STALE_AFTER_INTERVALS = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    id          INTEGER PRIMARY KEY,
    stream      TEXT NOT NULL,
    bundle_id   BLOB NOT NULL UNIQUE,
    seq         INTEGER NOT NULL,
    made_ms     INTEGER NOT NULL,
    received_ms INTEGER NOT NULL,
    interval_s  INTEGER NOT NULL,
    events      INTEGER NOT NULL,
    figures     TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reports_made ON reports (stream, made_ms);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("status reports", (schema_made(_SCHEMA),))
# The latest report of a stream: the one made last (a resent one may arrive late).
_LATEST = (
    "SELECT stream, seq, made_ms, received_ms, interval_s, events, figures FROM reports "
    "WHERE stream = ? ORDER BY made_ms DESC, id DESC LIMIT 1"
)


class CheckpointRefusal(StrEnum):
    """Why a carried checkpoint was not kept (the ``reason`` of ``outer_claim_refused``)."""

    NO_CHECKPOINT = "no_checkpoint"  # the event's details hold no checkpoint
    OTHER_STREAMS_KEY = "other_streams_key"  # signed by another outer agent's key (D98)
    UNKNOWN_KEY = "unknown_key"  # signed by no key of any outer agent's
    DOES_NOT_VERIFY = "does_not_verify"  # this stream's key, and the signature is wrong


@dataclass(frozen=True)
class StoredReport:
    """One received report: its figures as JSON-able data (the report without its events)."""

    stream: str
    seq: int
    made_ms: int
    received_ms: int
    interval_s: int
    events: int  # audit events it carried
    figures: dict[str, Any]

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _figures(report: StatusReport) -> dict[str, Any]:
    figures = dataclasses.asdict(report)
    del figures["events"]
    return figures


def _stored(row: tuple[Any, ...]) -> StoredReport:
    stream, seq, made_ms, received_ms, interval_s, events, figures = row
    return StoredReport(stream, seq, made_ms, received_ms, interval_s, events, json.loads(figures))


class ReportStore:
    """The received reports in SQLite (WAL, synchronous NORMAL: figures, not mail)."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.NORMAL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )

    def add(
        self, stream: str, bundle_id: bytes, seq: int, report: StatusReport, received_ms: int
    ) -> bool:
        """Store ``report``; False when this bundle was stored before (idempotent per id)."""
        with self._lock:
            cursor = self._db.execute(
                "INSERT OR IGNORE INTO reports (stream, bundle_id, seq, made_ms, received_ms, "
                "interval_s, events, figures) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (stream, bundle_id, seq, report.made_ms, received_ms, report.interval_s,
                 len(report.events), json.dumps(_figures(report), ensure_ascii=False)),
            )  # fmt: skip
            if cursor.rowcount and (cursor.lastrowid or 0) % PRUNE_EVERY == 0:
                self._prune(stream)
            return bool(cursor.rowcount)

    def _prune(self, stream: str) -> None:
        self._db.execute(
            "DELETE FROM reports WHERE stream = ? AND id NOT IN "
            "(SELECT id FROM reports WHERE stream = ? ORDER BY made_ms DESC LIMIT ?)",
            (stream, stream, REPORT_HISTORY),
        )

    def latest(self, stream: str) -> StoredReport | None:
        with self._lock:
            row = self._db.execute(_LATEST, (stream,)).fetchone()
        return None if row is None else _stored(row)

    def count(self, stream: str) -> int:
        with self._lock:
            (found,) = self._db.execute(
                "SELECT COUNT(*) FROM reports WHERE stream = ?", (stream,)
            ).fetchone()
        return int(found)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def latest_report(path: Path, stream: str) -> StoredReport | None:
    """The latest report of ``stream``, read without disturbing the running agent."""
    rows = query_read_only(path, _LATEST, (stream,))
    return _stored(rows[0]) if rows else None


def report_freshness(stored: StoredReport | None, now: float) -> dict[str, Any]:
    """The latest report with its age and whether it is ``fresh``, ``stale`` or ``missing``
    (D35): stale past three of its intervals by its making time *or* its arrival, so a clock
    ahead on the outer side cannot make an old report look fresh. What ``maildiode status``
    and the console's dashboard both show."""
    if stored is None:
        return {"state": "missing", "age_s": None}
    age_s = max(0.0, now - stored.made_ms / 1000)
    received_age_s = max(0.0, now - stored.received_ms / 1000)
    stale_after_s = STALE_AFTER_INTERVALS * stored.interval_s
    stale = max(age_s, received_age_s) > stale_after_s
    return {
        "state": "stale" if stale else "fresh",
        "age_s": round(age_s, 1),
        "received_age_s": round(received_age_s, 1),
        "stale_after_s": stale_after_s,
        "report": stored.as_dict(),
    }


class ControlHandler:
    """Decodes, imports and stores one CONTROL bundle of the inbound stream; raises
    ``agentkit.control.ControlRefused`` for a payload that does not decode. Idempotent per
    bundle id (a crash before the reader marked the bundle done calls it again)."""

    def __init__(
        self,
        store: ReportStore,
        audit: AuditLog,
        *,
        stream_keys: Mapping[str, Sequence[VerifyKey]] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """``stream_keys``: each inbound stream's outer agent's public keys (its ``peer_keys``),
        by stream id. A checkpoint carried on a stream is kept only when one of *that*
        stream's keys verifies it: the other streams' keys only name the refusal (D98)."""
        self.store = store
        self.audit = audit
        self.stream_keys = {
            stream: {key.key_id: key for key in keys}
            for stream, keys in (stream_keys or {}).items()
        }
        self._clock = clock

    def __call__(self, bundle: Any) -> None:
        record = decode_control(bundle.data, "inbound")
        if not isinstance(record, StatusReport):  # the inbound stream carries nothing else
            raise TypeError(f"decode_control gave a {type(record).__name__} on stream inbound")
        agent = outer_agent_name(bundle.stream)
        imported = self.audit.import_events(
            agent,
            (ImportedEvent(e.id, e.ts, e.mail_id, e.step, e.details) for e in record.events),
        )
        for refused in imported.refused:  # verified, decoded, and still not an event we keep
            log.warning("status report seq %d: outer audit event %s not imported: %s",
                        bundle.seq, refused.source_id, refused.reason)  # fmt: skip
        for event in record.events:
            if event.step == CHECKPOINT_STEP:
                self._keep_checkpoint(bundle.seq, event.id, event.details, bundle.stream)
        received_ms = int(self._clock() * 1000)
        self.store.add(bundle.stream, bundle.bundle_id, bundle.seq, record, received_ms)

    def _keep_checkpoint(
        self, seq: int, source_id: int, untrusted: Mapping[str, object], stream: str
    ) -> None:
        """Keep the outer agent's checkpoint an ``audit_checkpoint`` event announces, once its
        signature verifies with a key of ``stream``'s outer agent (whose signed bundle carried
        it; else refused: ``outer_claim_refused``): a copy of its chain's signed links the DMZ
        cannot rewrite (``maildiode audit verify -c outer.toml --against``). Every outer
        agent signs as ``outer`` (its own log's name); the copy is kept under the name the
        stream's events are imported under (``outer-ID`` for a further one), so two outer
        agents' checkpoints never share one name inside."""
        point = checkpoint_from_details(OUTER_AGENT, untrusted)
        refusal = self._refusal(point, stream)
        if point is None or refusal is not None:
            self._refuse(seq, source_id, stream, refusal or CheckpointRefusal.NO_CHECKPOINT,
                         None if point is None else point.key_id)  # fmt: skip
            return
        self.audit.keep_checkpoint(dataclasses.replace(point, agent=outer_agent_name(stream)))

    def _refusal(self, point: Checkpoint | None, stream: str) -> CheckpointRefusal | None:
        """Why ``point``, carried on ``stream``, is not kept; None when it is."""
        if point is None:
            return CheckpointRefusal.NO_CHECKPOINT
        key = self.stream_keys.get(stream, {}).get(point.key_id)
        if key is None:
            others = (keys for name, keys in self.stream_keys.items() if name != stream)
            if any(point.key_id in keys for keys in others):
                return CheckpointRefusal.OTHER_STREAMS_KEY
            return CheckpointRefusal.UNKNOWN_KEY
        if not key.verify(point.signature, point.message()):
            return CheckpointRefusal.DOES_NOT_VERIFY
        return None

    def _refuse(
        self, seq: int, source_id: int, stream: str, reason: CheckpointRefusal,
        key_id: bytes | None,
    ) -> None:  # fmt: skip
        log.warning("status report seq %d on stream %s: outer audit event %d: checkpoint not "
                    "kept (%s)", seq, stream, source_id, reason.value)  # fmt: skip
        key = "" if key_id is None else key_id.hex()
        self.audit.record("-", "outer_claim_refused", claim=CHECKPOINT_STEP, stream=stream,
                          seq=seq, event=source_id, reason=reason.value, key=key)  # fmt: skip
