"""Approved outbound mail with several outer agents: each mail goes to exactly one of them, and
moves to another when its agent's status goes stale (decision D75).

The choice is rendezvous hashing: the streams ranked by SHA-256 of stream id and bundle id,
the first live one taken (live: its latest status report is fresh, D35; none live: all are
candidates). The choice is stored before the bundle is published (``shares.db``: bundle id,
mail id, stream, time, the bundle sealed at rest), so a publish repeated after a crash goes to
the same stream and the Sender there takes it as a repeat.

:meth:`SharedPublisher.settle` runs in the outbound worker's pass: a mail its outer agent
reported delivered or bounced (the imported audit events) is done and its copy deleted; a mail
whose agent's latest report is older than ``takeover_after_s`` (or that never reported while
the share waited that long) is published on the next live stream in its ranking, then the row
is moved (a crash in between publishes it there again under the same id: a repeat).
The inbound policy goes to every stream; a decision on a held mail to the stream the mail
arrived on (``arrived_on``, from its ``received_inside`` event), else to every stream.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentkit.control import ControlRefused, Decision, decode_control
from agentkit.streams import PAIR_INBOUND
from inner_agent.reports import latest_report, report_freshness
from protocol import Kind
from protocol.atrest import CLEAR, AtRest
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, StoreVersions, Synchronous, open_wal_database

__all__ = [
    "Liveness",
    "ReportLiveness",
    "SharedPublisher",
    "StreamPublisher",
    "arrival_stream",
    "finished_outside",
    "rank",
]

log = logging.getLogger(__name__)

# Settling reads the audit log per open share: at most this often, not at every 1-s pass.
SETTLE_EVERY_S = 2.0

VERSIONS = StoreVersions("outbound shares")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    bundle_id   BLOB PRIMARY KEY,
    mail_id     TEXT NOT NULL,
    stream      TEXT NOT NULL,
    assigned_ms INTEGER NOT NULL,
    bundle      BLOB NOT NULL
) WITHOUT ROWID;
"""


class StreamPublisher(Protocol):
    """One stream's sending end (agentkit.links.LinkPublisher)."""

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int: ...

    def heartbeat_if_due(self) -> None: ...

    def close(self) -> None: ...


class Liveness(Protocol):
    """What the inner agent knows of an outer agent: seconds since its latest report (None:
    none yet) and whether that report is fresh."""

    def report_age_s(self, stream: str) -> float | None: ...

    def fresh(self, stream: str) -> bool: ...


def rank(bundle_id: bytes, streams: Sequence[str]) -> list[str]:
    """The streams in this bundle's order of preference (rendezvous hashing)."""
    return sorted(streams, key=lambda s: hashlib.sha256(s.encode() + bundle_id).digest(),
                  reverse=True)  # fmt: skip


@dataclass(frozen=True)
class Share:
    bundle_id: bytes
    mail_id: str
    stream: str
    assigned_ms: int


class SharedPublisher:
    """The outbound ``Publisher`` over several streams (keys: outbound stream ids, in order)."""

    def __init__(
        self,
        publishers: Mapping[str, StreamPublisher],
        path: Path,
        liveness: Liveness,
        *,
        takeover_after_s: float,
        finished: Callable[[str], bool],
        audit: Any,
        at_rest: AtRest = CLEAR,
        clock: Callable[[], float] = time.time,
        arrived_on: Callable[[str], str | None] = lambda _mail_id: None,
    ) -> None:
        """``finished(mail_id)``: an outer agent reported the mail delivered or bounced;
        ``arrived_on(mail_id)``: the stream an inbound mail came on (None: unknown)."""
        self.publishers = publishers
        self.liveness = liveness
        self.takeover_after_s = takeover_after_s
        self.finished = finished
        self.arrived_on = arrived_on
        self.audit = audit
        self.at_rest = at_rest
        self._clock = clock
        self._lock = threading.Lock()
        self._last_settle = 0.0
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )

    # ------------------------------------------------------------------------ publish

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int:
        if kind != Kind.DATA:
            return self._publish_control(bundle, bundle_id, kind)
        share = self._share(bundle_id)
        if share is None:
            share = self._assign(bundle, bundle_id)
        return self.publishers[share.stream].publish(bundle, bundle_id, kind)

    def _publish_control(self, bundle: bytes, bundle_id: bytes, kind: Kind) -> int:
        """A decision to the outer agent holding its mail; the policy (and a decision whose
        mail's stream is not known) to every one: each is idempotent there, and one that does
        not hold the mail refuses the decision as ``unknown_mail``."""
        holder = None
        with contextlib.suppress(ControlRefused):  # our own record; unreadable: every stream
            record = decode_control(bundle, "outbound")
            holder = self.arrived_on(record.mail_id) if isinstance(record, Decision) else None
        if holder is not None and holder in self.publishers:
            return self.publishers[holder].publish(bundle, bundle_id, kind)
        seqs = [p.publish(bundle, bundle_id, kind) for p in self.publishers.values()]
        return seqs[0]

    def _assign(self, bundle: bytes, bundle_id: bytes) -> Share:
        stream = rank(bundle_id, self._live() or list(self.publishers))[0]
        share = Share(bundle_id, bundle_id.hex(), stream, int(self._clock() * 1000))
        with self._lock:
            self._db.execute(
                "INSERT OR IGNORE INTO shares (bundle_id, mail_id, stream, assigned_ms, bundle) "
                "VALUES (?, ?, ?, ?, ?)",
                (bundle_id, share.mail_id, stream, share.assigned_ms, self.at_rest.seal(bundle)),
            )
        return share

    def _live(self) -> list[str]:
        return [s for s in self.publishers if self.liveness.fresh(s)]

    def _share(self, bundle_id: bytes) -> Share | None:
        with self._lock:
            row = self._db.execute(
                "SELECT bundle_id, mail_id, stream, assigned_ms FROM shares WHERE bundle_id = ?",
                (bundle_id,),
            ).fetchone()
        return None if row is None else Share(bytes(row[0]), row[1], row[2], row[3])

    # ------------------------------------------------------------------------ settle

    def settle(self) -> int:
        """Forget finished shares, move those of stale agents; how many moved."""
        now = self._clock()
        if now - self._last_settle < SETTLE_EVERY_S:
            return 0
        self._last_settle = now
        moved = 0
        for share in self.open_shares():
            if self.finished(share.mail_id):
                self._forget(share.bundle_id)
            elif self._orphaned(share, now):
                moved += self._move(share)
        return moved

    def open_shares(self) -> list[Share]:
        with self._lock:
            rows = self._db.execute(
                "SELECT bundle_id, mail_id, stream, assigned_ms FROM shares ORDER BY assigned_ms"
            ).fetchall()
        return [Share(bytes(r[0]), r[1], r[2], r[3]) for r in rows]

    def _orphaned(self, share: Share, now: float) -> bool:
        """Its agent's latest report is older than the takeover time, and so is the share."""
        if now - share.assigned_ms / 1000 < self.takeover_after_s:
            return False
        age = self.liveness.report_age_s(share.stream)
        return age is None or age > self.takeover_after_s

    def _move(self, share: Share) -> int:
        candidates = [s for s in self._live() if s != share.stream]
        if not candidates:
            return 0  # nobody to take it: it waits for any agent to come back
        target = rank(share.bundle_id, candidates)[0]
        bundle = self._bundle(share.bundle_id)
        seq = self.publishers[target].publish(bundle, share.bundle_id, Kind.DATA)
        with self._lock:
            self._db.execute(
                "UPDATE shares SET stream = ?, assigned_ms = ? WHERE bundle_id = ?",
                (target, int(self._clock() * 1000), share.bundle_id),
            )
        self.audit.record(share.mail_id, "stream_takeover", from_stream=share.stream,
                          to_stream=target, seq=seq)  # fmt: skip
        log.warning("outbound mail %s moved from stream %s (its outer agent silent) to %s",
                    share.mail_id, share.stream, target)  # fmt: skip
        return 1

    def _bundle(self, bundle_id: bytes) -> bytes:
        with self._lock:
            (stored,) = self._db.execute(
                "SELECT bundle FROM shares WHERE bundle_id = ?", (bundle_id,)
            ).fetchone()
        return self.at_rest.open(bytes(stored), f"shares.db bundle {bundle_id.hex()}")

    def _forget(self, bundle_id: bytes) -> None:
        with self._lock:
            self._db.execute("DELETE FROM shares WHERE bundle_id = ?", (bundle_id,))

    # ------------------------------------------------------------------------ upkeep

    def heartbeat_if_due(self) -> None:
        for publisher in self.publishers.values():
            publisher.heartbeat_if_due()

    def close(self) -> None:
        for publisher in self.publishers.values():
            publisher.close()
        with self._lock:
            self._db.close()


class ReportLiveness:
    """Liveness from the outer agents' status reports (``state.dir/reports.db``), read-only:
    the link threads store them, this reads the latest of each stream at each question."""

    def __init__(self, reports_path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self.reports_path = reports_path
        self._clock = clock

    def report_age_s(self, stream: str) -> float | None:
        stored = latest_report(self.reports_path, stream)
        if stored is None:
            return None
        now = self._clock()  # by making time or arrival, whichever is older (D35)
        return max(0.0, now - stored.made_ms / 1000, now - stored.received_ms / 1000)

    def fresh(self, stream: str) -> bool:
        stored = latest_report(self.reports_path, stream)
        return bool(report_freshness(stored, self._clock())["state"] == "fresh")


# The outer agents' steps that end a mail's delivery there (agentkit.audit).
FINAL_OUTSIDE = frozenset({"delivered", "bounced"})


def finished_outside(audit: Any, mail_id: str) -> bool:
    """Whether an outer agent reported this mail delivered or bounced (its imported events;
    a partly delivered mail counts: moving it would deliver the delivered part twice)."""
    query = getattr(audit, "query", None)
    if query is None:
        return False
    return any(
        str(event.agent).startswith("outer") and event.step in FINAL_OUTSIDE
        for event in query(mail_id=mail_id)
    )


def arrival_stream(audit: Any, mail_id: str) -> str | None:
    """The stream an inbound mail arrived on: its ``received_inside`` event names it (the
    pair's ``inbound`` when it names none); None when the log has no such event."""
    query = getattr(audit, "query", None)
    if query is None:
        return None
    for event in query(mail_id=mail_id, step="received_inside"):
        return str(event.details.get("stream", PAIR_INBOUND))
    return None
