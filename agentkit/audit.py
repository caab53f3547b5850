"""The audit log: one event per mail per step, in SQLite, queryable and exportable.

Auditors ask "what happened to mail X", "what was held or quarantined last month, and why",
"who approved what". Each event is a row: time, agent, mail id, step, and a JSON object of
details (ids, timings, reasons — never unmasked personal data).

Durability: WAL with ``synchronous=NORMAL``. Events survive a crash or kill -9 of the agent;
an operating-system crash or power loss may lose the last few events, never corrupt the file.
The mail itself is protected by the spools, which fsync; the audit log records, it does not
carry mail.
"""

from __future__ import annotations

import io
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

from agentkit.auditchain import (
    CHECKPOINT_STEP,
    GENESIS,
    ChainBase,
    ChainHead,
    ChainReport,
    ChainRow,
    Checkpoint,
    checkpoint_details,
    checkpoint_message,
    checkpoint_problem,
    link_of,
    verify_chain,
)
from agentkit.auditimport import (
    EventRefused,
    ImportedEvent,
    ImportResult,
    agent_name_refusal,
    details_text,
    refusal,
)
from agentkit.csvsafe import InertWriter
from agentkit.readonly import query_read_only
from agentkit.retention import RIGHTS_ACTIONS, Retention
from protocol.keys import SigningKey, VerifyKey
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    write_transaction,
)

__all__ = [
    "STEPS",
    "AuditEvent",
    "AuditLog",
    "ImportedEvent",
    "export",
    "kept_checkpoints",
    "step_counts",
]

# The steps a mail goes through. An unknown step is a programming error, refused at once.
STEPS = frozenset(
    {
        # inbound, outer agent
        "received", "rendered", "published", "refused",
        # inbound, inner agent
        "received_inside", "notified", "injected", "deferred", "postmaster_notified",
        # both
        "quarantined", "bounced", "resent", "requeued",
        # the link's receive side: refused files summed up per reason and interval (no mail id)
        "link_refused",
        # outbound, inner agent
        "accepted_outbound", "scanned", "allowed", "blocked", "monitored", "held",
        "approval_requested", "reminded", "escalated", "approved", "rejected", "expired",
        "withdrawn", "sender_notified", "sent_out", "token_refused",
        # the inner agent's web sign-in (not about one mail: mail id "-"); ldap_unreachable:
        # the directory could not check a password (D78)
        "signin_spraying", "ldap_unreachable",
        # access records: who did what on the web listener or to accounts (agentkit.access)
        "access",
        # outbound, outer agent
        "received_outbound", "delivered", "delivery_deferred",
        # receive filters (issue 17), outer agent: decisions, held mail, the archive copy
        "inbound_monitored", "inbound_masked", "inbound_blocked", "inbound_held",
        "inbound_released", "inbound_dropped", "inbound_expired", "inbound_decision_refused",
        "archived", "archive_deferred", "archive_failed",
        # receive filters, inner agent: approvers asked, their decision, its record sent out
        "hold_requested", "hold_decided", "decision_sent",
        # the inbound policy (not about one mail: mail id "-"): published inside, applied or
        # refused outside
        "policy_published", "policy_applied", "policy_refused",
        # retention (issue 21.2): the oldest events deleted past their retention (mail id "-")
        "audit_pruned",
        # retention (issue 21.2): a store's oldest items deleted past its retention (mail id
        # "-"; store, count, days, before): agentkit.storeretention
        "retention_pruned",
        # a signed checkpoint of the chain, announced in the signer's log so that the outer
        # agent's status report carries it inward (agentkit.auditchain; mail id "-")
        "audit_checkpoint",
        # what an outer agent's status report claimed and the inner agent did not take (D98;
        # mail id "-"; claim, stream, reason): a checkpoint not signed by that stream's key
        # (inner_agent.reports), a mail delivered or bounced by an agent that never held it
        # (inner_agent.outbound.shares)
        "outer_claim_refused",
        # the audit chain verified (maildiode audit verify, the daily upkeep): the console shows
        # the last one (mail id "-")
        "audit_verified",
        # the console's policy editor: a rules file changed (who, what, diff); the inner
        # agent read the outbound rules again (mail id "-")
        "policy_changed", "policy_reloaded",
        # a standby inner agent took the state's fencing lease from another host (mail id "-")
        "took_over",
        # a state database brought to this release's schema at start (agentkit.upgrade):
        # store, from, to, file, backup (mail id "-")
        "state_migrated",
        # several outer agents (issue 23, D74, D75): a mail that arrived on a second stream
        # and was not delivered again; an outbound mail moved to another outer agent's stream
        "duplicate_dropped", "stream_takeover",
    }
)  # fmt: skip


def _add_links(db: sqlite3.Connection) -> None:
    """1: the hash chain's link per event (logs of earlier releases have none: their events
    stay before the chain's base, counted as legacy)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(events)")}
    if columns and "link" not in columns:
        db.execute("ALTER TABLE events ADD COLUMN link BLOB")


# The schema's history (protocol.sqlite).
VERSIONS = StoreVersions("audit", (_add_links,))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id      INTEGER PRIMARY KEY,
    ts      REAL NOT NULL,
    agent   TEXT NOT NULL,
    mail_id TEXT NOT NULL,
    step    TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS events_mail ON events (mail_id);
CREATE INDEX IF NOT EXISTS events_ts ON events (ts);
CREATE INDEX IF NOT EXISTS events_step ON events (step, ts);
-- The hash chain's ends (agentkit.auditchain): 'base' (what the first kept event builds on)
-- and 'head' (the newest event), updated in the event's own transaction.
CREATE TABLE IF NOT EXISTS chain (
    name   TEXT PRIMARY KEY,
    id     INTEGER NOT NULL,
    link   BLOB NOT NULL,
    legacy INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
-- Signed checkpoints (agentkit.auditchain): this agent's own ('agent' = its name) and those
-- another agent sent in its status report (the outer agent's, kept inside).
CREATE TABLE IF NOT EXISTS checkpoints (
    agent     TEXT NOT NULL,
    event_id  INTEGER NOT NULL,
    link      BLOB NOT NULL,
    ts        REAL NOT NULL,
    key_id    BLOB NOT NULL,
    signature BLOB NOT NULL,
    PRIMARY KEY (agent, event_id)
) WITHOUT ROWID;
-- Events another agent recorded (its status report), by that agent's own event id.
CREATE TABLE IF NOT EXISTS imported (
    agent     TEXT NOT NULL,
    source_id INTEGER NOT NULL,
    event_id  INTEGER NOT NULL,
    PRIMARY KEY (agent, source_id)
) WITHOUT ROWID;
"""


_INSERT = (
    "INSERT INTO events (id, ts, agent, mail_id, step, details, link) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# The first event some retention still keeps: mail events, records of access rights, other
# access records, each against its own cutoff (only "?" placeholders are put in).
_MARKS = ",".join("?" * len(RIGHTS_ACTIONS))
_FIRST_KEPT = (
    "SELECT MIN(id) FROM events WHERE (step != 'access' AND ts >= ?) OR (step = 'access' AND "  # noqa: S608
    f"json_extract(details, '$.action') IN ({_MARKS}) AND ts >= ?) OR (step = 'access' AND "
    f"json_extract(details, '$.action') NOT IN ({_MARKS}) AND ts >= ?)"
)
# The link an event builds on: the event before it, or the chain's base when that was pruned.
_PREVIOUS_LINK = (
    "COALESCE((SELECT p.link FROM events p WHERE p.id = events.id - 1),"
    " (SELECT c.link FROM chain c WHERE c.name = 'base' AND c.id = events.id - 1))"
)
_SELECT = f"SELECT ts, agent, mail_id, step, details, id, link, {_PREVIOUS_LINK} FROM events"  # noqa: S608
_T = TypeVar("_T")
_ROW = tuple[float, str, str, str, str]  # ts, agent, mail id, step, details text


def _step(step: str) -> str:
    if step not in STEPS:
        raise ValueError(f"unknown audit step {step!r}")
    return step


def _details(details: dict[str, Any]) -> str:
    return json.dumps(details, ensure_ascii=False, default=str, sort_keys=True)


@dataclass(frozen=True)
class AuditEvent:
    ts: float
    agent: str
    mail_id: str
    step: str
    details: dict[str, Any]
    # Its place in the hash chain (0 / None: not read from a log, or from before the chain):
    # exported with it, so an auditor can check an extract (auditchain.check_extract).
    id: int = field(default=0, compare=False)
    link: bytes | None = field(default=None, compare=False)
    prev_link: bytes | None = field(default=None, compare=False)

    def as_dict(self) -> dict[str, Any]:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(self.ts))
        stamp += f".{int(self.ts * 1000) % 1000:03d}Z"
        return {"time": stamp, "agent": self.agent, "mail_id": self.mail_id,
                "step": self.step, **self.details}  # fmt: skip


class AuditLog:
    """Append-only event log. Safe to share between threads of one process."""

    def __init__(self, path: Path, *, agent: str = "", clock: Any = time.time) -> None:
        self.path = path  # another process may open the same file (the web process does)
        self._agent = agent
        self._clock = clock
        self._lock = threading.Lock()
        # NORMAL: the log records, it does not carry mail (see the module docstring, D3/D4).
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.NORMAL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )
        self._transaction(self._start_chain)

    @property
    def agent(self) -> str:
        return self._agent

    def record(self, mail_id: str, step: str, **details: Any) -> None:
        self.record_many([(mail_id, step, details)])

    def record_many(
        self, events: Iterable[tuple[str, str, dict[str, Any]]], *, at: float | None = None
    ) -> None:
        """Several events (mail id, step, details) in one transaction: one commit instead of
        one per event (a commit is most of an event's cost). ``at``: their time, if not now."""
        now = self._clock() if at is None else at
        rows = [(now, self._agent, mail_id, _step(step), _details(details))
                for mail_id, step, details in events]  # fmt: skip
        self._transaction(lambda: self._append(rows))

    def _transaction(self, work: Callable[[], _T]) -> _T:
        """``work`` under this object's lock and the database's write lock: another process's
        writer (the web process, a command) appends to the same chain, so its head is read and
        moved inside."""
        with write_transaction(self._db, self._lock):
            return work()

    def _start_chain(self) -> None:
        """Begin the chain in a new log, or after the events an earlier version recorded."""
        if self._db.execute("SELECT 1 FROM chain WHERE name = 'base'").fetchone():
            return
        newest, legacy = self._db.execute(
            "SELECT COALESCE(MAX(id), 0), COUNT(*) FROM events"
        ).fetchone()
        self._db.executemany(
            "INSERT INTO chain (name, id, link, legacy) VALUES (?, ?, ?, ?)",
            [("base", newest, GENESIS, legacy), ("head", newest, GENESIS, 0)],
        )

    def _append(self, rows: Sequence[_ROW]) -> list[int]:
        """Store ``rows`` at the end of the chain (inside a write transaction); their ids."""
        (link,) = self._db.execute("SELECT link FROM chain WHERE name = 'head'").fetchone()
        (newest,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        ids = []
        for ts, agent, mail_id, step, details in rows:
            newest += 1
            link = link_of(link, ChainRow(newest, ts, agent, mail_id, step, details, None))
            self._db.execute(_INSERT, (newest, ts, agent, mail_id, step, details, link))
            ids.append(newest)
        self._db.execute("UPDATE chain SET id = ?, link = ? WHERE name = 'head'", (newest, link))
        return ids

    def verify(
        self, keys: Iterable[VerifyKey] = (), *, checkpoints: Iterable[Checkpoint] | None = None
    ) -> ChainReport:
        """Check the whole hash chain (``agentkit.auditchain.verify_chain``) and, with ``keys``
        (the agent's public key), the signed checkpoints: this log's own, or ``checkpoints``
        kept elsewhere (the outer agent's, as the inner agent received them)."""
        with self._lock:
            base = ChainBase(*self._db.execute(
                "SELECT id, link, legacy FROM chain WHERE name = 'base'").fetchone())  # fmt: skip
            head = ChainHead(*self._db.execute(
                "SELECT id, link FROM chain WHERE name = 'head'").fetchone())  # fmt: skip
            rows = self._db.execute(
                "SELECT id, ts, agent, mail_id, step, details, link FROM events ORDER BY id"
            )
            links: dict[int, bytes] = {}
            report = verify_chain(_collect_links(rows, links), base, head)
            keyring = {key.key_id: key for key in keys}
            if not report.ok or not keyring:
                return report
            points = list(self._checkpoints(self._agent) if checkpoints is None else checkpoints)
        return _with_checkpoints(report, points, links, base=base, head=head, keyring=keyring)

    def prune(self, retention: Retention, now: float | None = None) -> int:
        """Delete the oldest events that every retention has passed, up to the last signed
        checkpoint before the first event still kept: the chain's base moves to that
        checkpoint's link, so what is kept still verifies (agentkit.retention). The prune is
        itself an event. Returns the number of events deleted (0: none could go yet)."""
        moment = self._clock() if now is None else now
        return self._transaction(lambda: self._prune(retention, moment))

    def _prune(self, retention: Retention, now: float) -> int:
        mail_cut, access_cut, rights_cut = retention.cutoffs(now)
        (first_kept,) = self._db.execute(
            _FIRST_KEPT, (mail_cut, *RIGHTS_ACTIONS, rights_cut, *RIGHTS_ACTIONS, access_cut)
        ).fetchone()
        (base_id,) = self._db.execute("SELECT id FROM chain WHERE name = 'base'").fetchone()
        (head_id,) = self._db.execute("SELECT id FROM chain WHERE name = 'head'").fetchone()
        limit = head_id if first_kept is None else first_kept - 1
        boundary = self._db.execute(
            "SELECT event_id, link FROM checkpoints WHERE agent = ? AND event_id > ? "
            "AND event_id <= ? ORDER BY event_id DESC LIMIT 1", (self._agent, base_id, limit),
        ).fetchone()  # fmt: skip
        if boundary is None:
            return 0
        upto, link = boundary
        (oldest, count) = self._db.execute(
            "SELECT MIN(ts), COUNT(*) FROM events WHERE id <= ?", (upto,)
        ).fetchone()
        self._db.execute("DELETE FROM events WHERE id <= ?", (upto,))
        self._db.execute("DELETE FROM imported WHERE event_id <= ?", (upto,))
        self._db.execute(
            "UPDATE chain SET id = ?, link = ?, legacy = 0 WHERE name = 'base'", (upto, link)
        )
        checkpoints = self._prune_checkpoints(upto)
        details = {"events": count, "through_event": upto, "oldest_ts": oldest,
                   "checkpoints": checkpoints, "mail_days": retention.mail_days,
                   "access_days": retention.access_days,
                   "rights_days": retention.rights_days}  # fmt: skip
        self._append([(now, self._agent, "-", "audit_pruned", _details(details))])
        return int(count)

    def _prune_checkpoints(self, base_id: int) -> int:
        """Delete the checkpoints nothing kept here can be compared with any more (inside the
        prune's transaction, the base just moved to ``base_id``); returns how many went.

        This agent's own: those before the base (``verify`` skips them; the one at the base
        is kept, ``verify`` compares it with the base's link). Another agent's (the outer
        agent's, carried inward): those before the oldest of its events still kept here,
        judged by what this log deleted, never by what that agent says it pruned (whoever
        holds the DMZ host must not be able to make the inner agent destroy these copies);
        its newest checkpoint always stays, so a quiet agent keeps one (D90)."""
        own = self._db.execute(
            "DELETE FROM checkpoints WHERE agent = ? AND event_id < ?", (self._agent, base_id)
        ).rowcount
        carried = self._db.execute(
            "DELETE FROM checkpoints WHERE agent != ? AND event_id < COALESCE("
            " (SELECT MIN(i.source_id) FROM imported i WHERE i.agent = checkpoints.agent),"
            " (SELECT MAX(n.event_id) FROM checkpoints n WHERE n.agent = checkpoints.agent))"
            " AND event_id < (SELECT MAX(n.event_id) FROM checkpoints n"
            " WHERE n.agent = checkpoints.agent)", (self._agent,),
        ).rowcount  # fmt: skip
        return int(own) + int(carried)

    def record_verification(self, report: ChainReport) -> None:
        """Keep what a verification found, for the console (``audit_verified``)."""
        self.record("-", "audit_verified", ok=report.ok, checked=report.checked,
                    checkpoints=report.checkpoints, event=report.event_id,
                    problem=report.problem)  # fmt: skip

    def checkpoint(self, key: SigningKey, *, announce: bool = False) -> Checkpoint | None:
        """Sign the newest event's link (None when nothing happened since the last one).
        ``announce``: also record it as an ``audit_checkpoint`` event, which the outer agent's
        status report carries inward (the event after the signed one; alone since, it is not
        news worth another checkpoint)."""

        def sign() -> Checkpoint | None:
            event_id, link = self._db.execute(
                "SELECT id, link FROM chain WHERE name = 'head'"
            ).fetchone()
            (last,) = self._db.execute(
                "SELECT COALESCE(MAX(event_id), -1) FROM checkpoints WHERE agent = ?",
                (self._agent,),
            ).fetchone()
            if event_id in (last, 0) or self._only_announced(last, event_id):
                return None  # nothing new, or nothing at all yet
            ts = self._clock()
            message = checkpoint_message(self._agent, event_id, link, ts)
            point = Checkpoint(self._agent, event_id, link, ts, key.key_id, key.sign(message))
            self._store_checkpoint(point)
            if announce:
                details = _details(checkpoint_details(point))
                self._append([(ts, self._agent, "-", CHECKPOINT_STEP, details)])
            return point

        return self._transaction(sign)

    def _only_announced(self, last: int, head_id: int) -> bool:
        """The one event since the last checkpoint is the one announcing it."""
        if head_id != last + 1:
            return False
        row = self._db.execute("SELECT step FROM events WHERE id = ?", (head_id,)).fetchone()
        return row is not None and row[0] == CHECKPOINT_STEP

    def keep_checkpoint(self, point: Checkpoint) -> None:
        """Keep another agent's checkpoint (already verified by the caller)."""
        self._transaction(lambda: self._store_checkpoint(point))

    def _store_checkpoint(self, point: Checkpoint) -> None:
        self._db.execute(
            "INSERT OR IGNORE INTO checkpoints (agent, event_id, link, ts, key_id, signature) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (point.agent, point.event_id, point.link, point.ts, point.key_id, point.signature),
        )

    def checkpoints(self, agent: str | None = None) -> list[Checkpoint]:
        """The checkpoints kept here of ``agent`` (default: this log's own agent)."""
        with self._lock:
            return self._checkpoints(agent or self._agent)

    def _checkpoints(self, agent: str) -> list[Checkpoint]:
        rows = self._db.execute(
            "SELECT agent, event_id, link, ts, key_id, signature FROM checkpoints "
            "WHERE agent = ? ORDER BY event_id", (agent,),
        ).fetchall()  # fmt: skip
        return [Checkpoint(*row) for row in rows]

    def import_events(self, agent: str, events: Iterable[ImportedEvent]) -> ImportResult:
        """Take another agent's events into this log under ``agent`` (e.g. "outer").

        For the status-report helper: call it with the events the verified report carries;
        it is idempotent per (``agent``, ``event.source_id``), so a report sent again, or
        overlapping the last one, adds nothing twice, and the events may come in any order.
        Each event is checked (agentkit.auditimport.refusal: a known step, a sane time, bounded
        mail id and details); a refused one is returned with its reason and the rest are
        stored, all in one transaction. The mail index folds them in at its next catch-up.
        Raises ValueError when ``agent`` is not a name for another agent."""
        why = agent_name_refusal(agent, self._agent)
        if why is not None:
            raise ValueError(why)
        now = self._clock()
        accepted: list[tuple[ImportedEvent, str]] = []
        refused: list[EventRefused] = []
        for event in events:
            reason = refusal(event, STEPS, now)
            if reason is None:
                accepted.append((event, details_text(event.details) or "{}"))
            else:
                refused.append(EventRefused(getattr(event, "source_id", None), reason))
        added = self._store_imported(agent, accepted)
        return ImportResult(added, len(accepted) - added, tuple(refused))

    def _store_imported(self, agent: str, accepted: list[tuple[ImportedEvent, str]]) -> int:
        def store() -> int:
            added = 0
            for event, text in accepted:
                known = self._db.execute(
                    "SELECT 1 FROM imported WHERE agent = ? AND source_id = ?",
                    (agent, event.source_id),
                ).fetchone()
                if known:
                    continue
                (event_id,) = self._append(
                    [(float(event.ts), agent, event.mail_id, event.step, text)]
                )
                self._db.execute(
                    "INSERT INTO imported (agent, source_id, event_id) VALUES (?, ?, ?)",
                    (agent, event.source_id, event_id),
                )
                added += 1
            return added

        return self._transaction(store)

    def last_imported(self, agent: str) -> int:
        """The highest source id imported from ``agent`` (0: none yet)."""
        with self._lock:
            (high,) = self._db.execute(
                "SELECT COALESCE(MAX(source_id), 0) FROM imported WHERE agent = ?", (agent,)
            ).fetchone()
        return int(high)

    def events_after(self, event_id: int, limit: int) -> list[tuple[int, AuditEvent]]:
        """This log's events with an id above ``event_id``, oldest first, at most ``limit``,
        with their ids: what a status report carries to the other agent's import_events."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id, ts, agent, mail_id, step, details FROM events WHERE id > ? "
                "ORDER BY id LIMIT ?",
                (event_id, limit),
            ).fetchall()
        return [(r[0], AuditEvent(r[1], r[2], r[3], r[4], json.loads(r[5]))) for r in rows]

    def last_id(self) -> int:
        """The row id of the newest event (0: none)."""
        with self._lock:
            (newest,) = self._db.execute("SELECT COALESCE(MAX(id), 0) FROM events").fetchone()
        return int(newest)

    def query(
        self,
        *,
        mail_id: str | None = None,
        step: str | None = None,
        since: float | None = None,
        until: float | None = None,
        search: str | None = None,
        trail: bool = False,
        limit: int | None = None,
    ) -> list[AuditEvent]:
        """Events in time order, filtered by every criterion given.

        ``search`` keeps events whose mail id or any detail value contains the text (case
        folded, so ``Kim@Corp.example`` finds ``kim@corp.example``; Korean as written).
        ``trail`` then widens the answer to every event of each mail found, from intake to its
        end (within ``since``/``until`` as well), which is the question an auditor asks about a
        sender, a recipient, a subject or an attachment name.
        """
        clauses, args = self._time_clauses(since, until)
        for column, value in (("mail_id", mail_id), ("step", step)):
            if value is not None:
                clauses.append(f"{column} = ?")
                args.append(value)
        if search and _sql_can_prefilter(search):
            # A coarse filter in SQL (LIKE folds ASCII case only), the exact one below.
            clauses.append("(mail_id LIKE ? ESCAPE '\\' OR details LIKE ? ESCAPE '\\')")
            args += [_like(search), _like(json.dumps(search, ensure_ascii=False)[1:-1])]
        events = self._select(clauses, args, limit)
        if search:
            events = [e for e in events if _contains(e, search.casefold())]
        if trail and events:
            wanted = list(dict.fromkeys(e.mail_id for e in events))
            clauses, args = self._time_clauses(since, until)
            clauses.append(f"mail_id IN ({', '.join('?' * len(wanted))})")
            events = self._select(clauses, [*args, *wanted], limit)
        return events

    @staticmethod
    def _time_clauses(since: float | None, until: float | None) -> tuple[list[str], list[Any]]:
        clauses, args = [], []
        for op, value in ((">=", since), ("<", until)):
            if value is not None:
                clauses.append(f"ts {op} ?")
                args.append(value)
        return clauses, args

    def _select(self, clauses: list[str], args: list[Any], limit: int | None) -> list[AuditEvent]:
        sql = _SELECT
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        sql += " ORDER BY ts, id"
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [AuditEvent(r[0], r[1], r[2], r[3], json.loads(r[4]), *r[5:8]) for r in rows]

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _collect_links(rows: Iterable[tuple[Any, ...]], links: dict[int, bytes]) -> Iterator[ChainRow]:
    for row in rows:
        chain_row = ChainRow(*row)
        if chain_row.link is not None:
            links[chain_row.id] = chain_row.link
        yield chain_row


def _with_checkpoints(
    report: ChainReport,
    points: list[Checkpoint],
    links: dict[int, bytes],
    *,
    base: ChainBase,
    head: ChainHead,
    keyring: dict[bytes, VerifyKey],
) -> ChainReport:
    def verify(key_id: bytes, signature: bytes, message: bytes) -> bool | None:
        key = keyring.get(key_id)
        return None if key is None else key.verify(signature, message)

    found = checkpoint_problem(points, links, base, head, verify)
    if found is not None:
        return replace(report, problem=found[1], event_id=found[0])
    last = max((p.ts for p in points), default=None)
    return replace(report, checkpoints=len(points), last_checkpoint=last)


def kept_checkpoints(path: Path, agent: str) -> list[Checkpoint]:
    """The checkpoints of ``agent`` kept in the audit log at ``path`` (read only: a copy of
    the inner agent's log holds the outer agent's, as its status reports carried them)."""
    rows = query_read_only(
        path, "SELECT agent, event_id, link, ts, key_id, signature FROM checkpoints "
        "WHERE agent = ? ORDER BY event_id", (agent,),
    )  # fmt: skip
    return [Checkpoint(*row) for row in rows]


def step_counts(path: Path) -> dict[str, int]:
    """Events per step since the log began, read without disturbing the agent that writes it
    (the ``events_step`` index answers it without reading the events themselves)."""
    rows = query_read_only(path, "SELECT step, COUNT(*) FROM events GROUP BY step")
    return {str(step): int(count) for step, count in rows}


def _sql_can_prefilter(text: str) -> bool:
    """SQLite's LIKE folds the case of ASCII letters only: with a cased letter outside ASCII
    in the text (É, Ω), every event is read and compared in Python instead."""
    return all(c.isascii() or c.lower() == c.upper() for c in text)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(event: AuditEvent, folded: str) -> bool:
    """True when the mail id or any value in the details (nested lists and objects too)
    contains ``folded``, compared case folded."""
    stack: list[Any] = [event.mail_id, *event.details.values()]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
        elif folded in str(value).casefold():
            return True
    return False


def export(events: Iterable[AuditEvent], fmt: Literal["jsonl", "csv"]) -> Iterator[str]:
    """Events as JSON lines, or as CSV with the details as one JSON column."""
    if fmt == "jsonl":
        for event in events:
            row = {**event.as_dict(), **({"chain": _chain_of(event)} if event.link else {})}
            yield json.dumps(row, ensure_ascii=False, default=str) + "\n"
        return
    buffer = io.StringIO()
    writer = InertWriter(buffer)
    writer.writerow(["time", "agent", "mail_id", "step", "details", *CHAIN_COLUMNS])
    for event in events:
        row = event.as_dict()
        chain = _chain_of(event) if event.link else dict.fromkeys(("id", "ts", "link", "prev"))
        writer.writerow([row["time"], event.agent, event.mail_id, event.step,
                         json.dumps(event.details, ensure_ascii=False, default=str),
                         chain["id"], chain["ts"], chain["link"], chain["prev"]])  # fmt: skip
    yield buffer.getvalue()


CHAIN_COLUMNS = ("chain_id", "chain_ts", "chain_link", "chain_prev")


def _chain_of(event: AuditEvent) -> dict[str, Any]:
    """An exported event's place in the chain: its id, exact time, link and the link before."""
    return {"id": event.id, "ts": repr(event.ts), "link": (event.link or b"").hex(),
            "prev": (event.prev_link or b"").hex()}  # fmt: skip
