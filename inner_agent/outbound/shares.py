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
A mail its agent delivered to some recipients and not (yet) to the others is partly delivered
(D88): it waits while that agent reports, since its own queue retries the rest and bounces
them at expiry; once the agent is stale past ``takeover_after_s``, only the recipients without
a final outcome move, as a bundle of their own (``rest_bundle_id``), so none that was
delivered or bounced gets the mail again from the next agent.
Only the outer agents a share was published to speak for it (``earlier`` and ``stream``): a
``delivered`` another agent reports for a mail it never held ends nothing (D98), since
whoever holds one DMZ host must not be able to end another host's share.
The inbound policy goes to every stream; a decision on a held mail to the stream the mail
arrived on (``arrived_on``, from its ``received_inside`` event), else to every stream.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from agentkit.control import ControlRefused, Decision, decode_control
from agentkit.streams import PAIR_INBOUND, outer_agent_name
from inner_agent.reports import latest_report, report_freshness
from mailsafe.payload import PackageRefused, decode_outbound, encode_outbound
from protocol import Kind
from protocol.atrest import CLEAR, AtRest
from protocol.limits import BUNDLE_ID_LEN
from protocol.sqlite import AGENT_BUSY_TIMEOUT_S, StoreVersions, Synchronous, open_wal_database

__all__ = [
    "Liveness",
    "ReportLiveness",
    "Reported",
    "SharedPublisher",
    "StreamPublisher",
    "arrival_stream",
    "finished_outside",
    "rank",
    "reported_outside",
    "rest_bundle_id",
]

log = logging.getLogger(__name__)

# Settling reads the audit log per open share: at most this often, not at every 1-s pass.
SETTLE_EVERY_S = 2.0


def _add_earlier(db: sqlite3.Connection) -> None:
    """1: the streams a share was on before its current one (comma-separated; '' none). A row
    from before this column has NULL: its history is not known, so any outer agent's report
    still counts for it, as it did (D98)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(shares)")}
    if "earlier" not in columns:
        db.execute("ALTER TABLE shares ADD COLUMN earlier TEXT")


VERSIONS = StoreVersions("outbound shares", (_add_earlier,))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS shares (
    bundle_id   BLOB PRIMARY KEY,
    mail_id     TEXT NOT NULL,
    stream      TEXT NOT NULL,
    assigned_ms INTEGER NOT NULL,
    bundle      BLOB NOT NULL
) WITHOUT ROWID;
"""
_SELECT = "SELECT bundle_id, mail_id, stream, assigned_ms, earlier FROM shares"


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


def rest_bundle_id(bundle_id: bytes, rest: Sequence[str]) -> bytes:
    """The bundle id of a partly delivered mail's remaining recipients (D88): the same rest of
    the same mail always gets the same id, so a move repeated after a crash is a repeat."""
    key = bundle_id + "\n".join(sorted(rest)).encode()
    return hashlib.sha256(b"maildiode-rest\0" + key).digest()[:BUNDLE_ID_LEN]


@dataclass(frozen=True)
class Reported:
    """What the outer agents reported of one mail: the recipients they delivered it to or
    bounced (``final``), and whether a final event named no recipients (``unnamed``: an
    older outer agent's; the mail then counts as finished whole, as before D88)."""

    final: frozenset[str] = frozenset()
    unnamed: bool = False
    # Outer agents that reported the mail final without ever holding it: not counted (D98).
    strangers: frozenset[str] = frozenset()

    @property
    def any_final(self) -> bool:
        return self.unnamed or bool(self.final)

    def left(self, rcpts: Sequence[str]) -> list[str]:
        """The recipients of ``rcpts`` with no final outcome yet, in their order."""
        return [] if self.unnamed else [r for r in rcpts if r not in self.final]


@dataclass(frozen=True)
class Share:
    bundle_id: bytes
    mail_id: str
    stream: str
    assigned_ms: int
    earlier: tuple[str, ...] | None = ()  # None: a row from before the history was kept

    @property
    def speakers(self) -> frozenset[str] | None:
        """The streams whose outer agents held this mail (None: not known, any of them)."""
        return None if self.earlier is None else frozenset((*self.earlier, self.stream))

    @staticmethod
    def of_row(row: Sequence[Any]) -> Share:
        earlier = None if row[4] is None else tuple(s for s in str(row[4]).split(",") if s)
        return Share(bytes(row[0]), row[1], row[2], row[3], earlier)

    def moved_from(self) -> str | None:
        """``earlier`` once this share moves on: its current stream added (NULL stays)."""
        return None if self.earlier is None else ",".join((*self.earlier, self.stream))


class SharedPublisher:
    """The outbound ``Publisher`` over several streams (keys: outbound stream ids, in order)."""

    def __init__(
        self,
        publishers: Mapping[str, StreamPublisher],
        path: Path,
        liveness: Liveness,
        *,
        takeover_after_s: float,
        reported: Callable[[str, frozenset[str] | None], Reported],
        audit: Any,
        at_rest: AtRest = CLEAR,
        clock: Callable[[], float] = time.time,
        arrived_on: Callable[[str], str | None] = lambda _mail_id: None,
    ) -> None:
        """``reported(mail_id, streams)``: what the outer agents of ``streams`` (None: all)
        reported delivered or bounced;
        ``arrived_on(mail_id)``: the stream an inbound mail came on (None: unknown)."""
        self.publishers = publishers
        self.liveness = liveness
        self.takeover_after_s = takeover_after_s
        self.reported = reported
        self.arrived_on = arrived_on
        self.audit = audit
        self.at_rest = at_rest
        self._clock = clock
        self._lock = threading.Lock()
        self._last_settle = 0.0
        # The recipients of each partly delivered share's bundle (None: it does not decode).
        self._share_rcpts: dict[bytes, tuple[str, ...] | None] = {}
        # The outer agents already refused as speaking for each share (said once per run).
        self._refused: dict[bytes, frozenset[str]] = {}
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
        bundle, bundle_id = self._in_flight(share, bundle)
        return self.publishers[share.stream].publish(bundle, bundle_id, kind)

    def _in_flight(self, share: Share, bundle: bytes) -> tuple[bytes, bytes]:
        """What a repeated publish of a mail sends: the mail as given, unless only its rest
        moved on (D88): then that rest under its own id (a repeat where it went), never the
        whole mail again to recipients already served."""
        stored = self._bundle(share.bundle_id)
        if stored == bundle:
            return bundle, share.bundle_id
        rest, whole = self._recipients(stored), self._recipients(bundle)
        if rest is None or whole is None or rest == whole:
            return bundle, share.bundle_id  # not a rest (an older build of the same mail)
        return stored, rest_bundle_id(share.bundle_id, rest)

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
                "INSERT OR IGNORE INTO shares (bundle_id, mail_id, stream, assigned_ms, bundle, "
                "earlier) VALUES (?, ?, ?, ?, ?, '')",
                (bundle_id, share.mail_id, stream, share.assigned_ms, self.at_rest.seal(bundle)),
            )
        return share

    def _live(self) -> list[str]:
        return [s for s in self.publishers if self.liveness.fresh(s)]

    def _share(self, bundle_id: bytes) -> Share | None:
        with self._lock:
            row = self._db.execute(_SELECT + " WHERE bundle_id = ?", (bundle_id,)).fetchone()
        return None if row is None else Share.of_row(row)

    # ------------------------------------------------------------------------ settle

    def settle(self) -> int:
        """Forget finished shares, move those of stale agents; how many moved."""
        now = self._clock()
        if now - self._last_settle < SETTLE_EVERY_S:
            return 0
        self._last_settle = now
        moved = 0
        for share in self.open_shares():
            reported = self.reported(share.mail_id, share.speakers)
            self._refuse_strangers(share, reported.strangers)
            if not reported.any_final:
                moved += self._move(share) if self._orphaned(share, now) else 0
                continue
            left = self._left(share, reported)
            if not left:
                self._forget(share.bundle_id)
            elif self._orphaned(share, now):  # partly delivered by an agent gone silent
                moved += self._move_rest(share, left)
        return moved

    def _refuse_strangers(self, share: Share, strangers: frozenset[str]) -> None:
        """Say once per run which outer agents claimed a mail they never held (D98): whoever
        holds one DMZ host must not end another host's share."""
        for agent in sorted(strangers - self._refused.get(share.bundle_id, frozenset())):
            log.warning("outbound mail %s: %s reported it delivered or bounced but never held it "
                        "(stream %s holds it); not counted", share.mail_id, agent,
                        share.stream)  # fmt: skip
            self.audit.record("-", "outer_claim_refused", claim="delivered", mail=share.mail_id,
                              agent=agent, stream=share.stream, reason="not_its_share")  # fmt: skip
        if strangers:
            self._refused[share.bundle_id] = strangers

    def _left(self, share: Share, reported: Reported) -> list[str]:
        """The share's recipients without a final outcome; none when its bundle does not
        decode (our own record: then the final event ends it whole, as before D88)."""
        if reported.unnamed:
            return []
        if share.bundle_id not in self._share_rcpts:  # decoded once per share and start
            self._share_rcpts[share.bundle_id] = self._recipients(self._bundle(share.bundle_id))
        rcpts = self._share_rcpts[share.bundle_id]
        if rcpts is None:
            log.error("outbound share %s does not decode; finished as reported", share.mail_id)
            return []
        return reported.left(rcpts)

    @staticmethod
    def _recipients(bundle: bytes) -> tuple[str, ...] | None:
        try:
            return tuple(decode_outbound(bundle).rcpt_to)
        except PackageRefused:
            return None

    def open_shares(self) -> list[Share]:
        with self._lock:
            rows = self._db.execute(_SELECT + " ORDER BY assigned_ms").fetchall()
        return [Share.of_row(r) for r in rows]

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
                "UPDATE shares SET stream = ?, assigned_ms = ?, earlier = ? WHERE bundle_id = ?",
                (target, int(self._clock() * 1000), share.moved_from(), share.bundle_id),
            )
        self.audit.record(share.mail_id, "stream_takeover", from_stream=share.stream,
                          to_stream=target, seq=seq)  # fmt: skip
        log.warning("outbound mail %s moved from stream %s (its outer agent silent) to %s",
                    share.mail_id, share.stream, target)  # fmt: skip
        return 1

    def _move_rest(self, share: Share, left: list[str]) -> int:
        """Publish the recipients ``left`` of a partly delivered mail on the next live stream
        as a bundle of their own (the same mail id, the same original bytes); the share then
        holds that rest (D88)."""
        candidates = [s for s in self._live() if s != share.stream]
        if not candidates:
            return 0  # nobody to take it: it waits for any agent to come back
        target = rank(share.bundle_id, candidates)[0]
        mail = decode_outbound(self._bundle(share.bundle_id))
        rest = encode_outbound(dataclasses.replace(mail, rcpt_to=tuple(left)))
        rest_id = rest_bundle_id(share.bundle_id, left)
        seq = self.publishers[target].publish(rest, rest_id, Kind.DATA)
        with self._lock:
            self._db.execute(
                "UPDATE shares SET stream = ?, assigned_ms = ?, bundle = ?, earlier = ? "
                "WHERE bundle_id = ?",
                (target, int(self._clock() * 1000), self.at_rest.seal(rest), share.moved_from(),
                 share.bundle_id),
            )  # fmt: skip
        self._share_rcpts[share.bundle_id] = tuple(left)
        self.audit.record(share.mail_id, "stream_takeover", from_stream=share.stream,
                          to_stream=target, seq=seq, rcpt=left,
                          bundle_id=rest_id.hex())  # fmt: skip
        log.warning("outbound mail %s, partly delivered, moved from stream %s (its outer agent "
                    "silent) to %s for %d recipient(s) left", share.mail_id, share.stream,
                    target, len(left))  # fmt: skip
        return 1

    def _bundle(self, bundle_id: bytes) -> bytes:
        with self._lock:
            (stored,) = self._db.execute(
                "SELECT bundle FROM shares WHERE bundle_id = ?", (bundle_id,)
            ).fetchone()
        return self.at_rest.open(bytes(stored), f"shares.db bundle {bundle_id.hex()}")

    def _forget(self, bundle_id: bytes) -> None:
        self._share_rcpts.pop(bundle_id, None)
        self._refused.pop(bundle_id, None)
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


def reported_outside(audit: Any, mail_id: str, streams: frozenset[str] | None = None) -> Reported:
    """What the outer agents of ``streams`` (None: any) reported final for this mail (their
    imported ``delivered`` and ``bounced`` events, each naming its recipients in ``rcpt``).
    Another agent's events are not counted: it never held the mail (D98)."""
    query = getattr(audit, "query", None)
    if query is None:
        return Reported()
    agents = None if streams is None else {outer_agent_name(s) for s in streams}
    final: set[str] = set()
    strangers: set[str] = set()
    unnamed = False
    for event in query(mail_id=mail_id):
        agent = str(event.agent)
        if not (agent.startswith("outer") and event.step in FINAL_OUTSIDE):
            continue
        if agents is not None and agent not in agents:
            strangers.add(agent)
            continue
        rcpt = event.details.get("rcpt")
        if isinstance(rcpt, list) and rcpt and all(isinstance(r, str) for r in rcpt):
            final.update(rcpt)
        else:
            unnamed = True
    return Reported(frozenset(final), unnamed, frozenset(strangers))


def finished_outside(audit: Any, mail_id: str) -> bool:
    """Whether an outer agent reported this mail delivered or bounced, for any recipient
    (whether every recipient is served: ``reported_outside(...).left``)."""
    return reported_outside(audit, mail_id).any_final


def arrival_stream(audit: Any, mail_id: str) -> str | None:
    """The stream an inbound mail arrived on: its ``received_inside`` event names it (the
    pair's ``inbound`` when it names none); None when the log has no such event."""
    query = getattr(audit, "query", None)
    if query is None:
        return None
    for event in query(mail_id=mail_id, step="received_inside"):
        return str(event.details.get("stream", PAIR_INBOUND))
    return None
