"""The injection queue: notifications wait here, durably, until the internal server accepts them.

States of one queued message::

    queued --250--> accepted            (data dropped, row kept for the audit trail)
    queued --4xx / connection error--> queued (next_try = now + backoff; never given up)
    queued --5xx--> refused             (copy in quarantine, audit "quarantined",
                                         a report to the postmaster is queued)

Durability: SQLite in WAL mode, ``synchronous=FULL``. The link thread checks each bundle and,
in one transaction, adds its messages (or records it as quarantined) before the link reader may
forget it, so a bundle is handled exactly once across crashes. (Earlier versions stored raw
bundles in table ``arrived`` first; such rows are built at start and leave in the same
transaction that adds their messages.) The state change after a 250 is also FULL. A crash
(kill -9) after the server's 250 and before that commit sends the message again on restart:
at most one duplicate per injection worker ("better to deliver twice than to lose mail"). Each
notification carries a stable Message-ID, so duplicates are recognisable.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from pathlib import Path
from typing import Any

from tenacity import (
    RetryError,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential,
)

from agentkit.audit import AuditLog
from agentkit.readonly import query_read_only
from inner_agent.ownmail import MARKER_HEADER, OwnMailKind
from inner_agent.smtpclient import (
    MAX_REPLY_CHARS,
    Hop,
    Outcome,
    Session,
    TemporaryFailure,
)
from protocol import Kind, ReceivedBundle
from protocol.atrest import CLEAR, AtRest, is_sealed
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
)

__all__ = [
    "InjectionQueue",
    "Injector",
    "QueuedMessage",
    "RetryPolicy",
    "queue_summary",
]

log = logging.getLogger(__name__)

# Quick retries inside one pass wait at most this long between tries.
QUICK_RETRY_MAX_S = 2.0
# Messages one worker fetches from the queue at a time.
CLAIM_BATCH = 1
# Reports to the postmaster are stored beside the notification they are about, at part + this.
REPORT_PART_OFFSET = 1000
# An inbound rule's notices (its ``notify``) are stored beside the bundle's notifications, one a
# person, at part RULE_NOTICE_PART_OFFSET + 1, + 2, ... (far above any bundle's parts).
RULE_NOTICE_PART_OFFSET = 100_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bundles (
    bundle_id BLOB PRIMARY KEY,
    mail_id   TEXT NOT NULL,
    outcome   TEXT NOT NULL,          -- queued | quarantined
    at        REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    id         INTEGER PRIMARY KEY,
    bundle_id  BLOB NOT NULL,
    part       INTEGER NOT NULL,
    kind       TEXT NOT NULL,         -- notification | report | rule_notice
    mail_id    TEXT NOT NULL,
    mail_from  TEXT NOT NULL,
    rcpts      TEXT NOT NULL,         -- JSON list
    data       BLOB NOT NULL,
    state      TEXT NOT NULL,         -- queued | accepted | refused
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_try   REAL NOT NULL,
    last_error TEXT,
    created    REAL NOT NULL,
    UNIQUE (bundle_id, part)
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (state, next_try);
CREATE TABLE IF NOT EXISTS arrived (  -- raw bundles earlier versions stored, not yet checked
    bundle_id  BLOB PRIMARY KEY,
    stream     TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    kind       INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    epoch      INTEGER NOT NULL,
    data       BLOB NOT NULL,
    at         REAL NOT NULL
);
-- Left-over bundles are built in order: without this index every claim would read
-- every stored bundle (its "at" column sits after the blob, on the overflow pages).
CREATE INDEX IF NOT EXISTS arrived_order ON arrived (seq, at);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("injection queue", (schema_made(_SCHEMA),))


@dataclass(frozen=True)
class QueuedMessage:
    id: int
    bundle_id: bytes
    part: int
    kind: str
    mail_id: str
    mail_from: str
    rcpts: tuple[str, ...]
    data: bytes
    attempts: int
    created: float


class InjectionQueue:
    """SQLite-backed queue. Thread-safe (one connection, one lock)."""

    def __init__(
        self, path: Path, *, clock: Callable[[], float] = time.time, at_rest: AtRest = CLEAR
    ) -> None:
        self._clock = clock
        # Every message's and raw bundle's bytes sealed (issue 21): SQLite keeps a deleted or
        # blanked row's old bytes on free pages and in the WAL, so only sealing keeps them out.
        self.at_rest = at_rest
        self._lock = threading.Lock()
        self._db = open_wal_database(  # FULL: a lost commit would lose or repeat a notification
            path,
            _SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )
        # Wakes one injection worker per queued message.
        self._wake = threading.Condition(self._lock)

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """One write transaction (the caller holds the lock). On an error it is rolled back,
        unless SQLite already ended it: a COMMIT that fails on a full disk does, and a ROLLBACK
        then would hide the real error behind "no transaction is active"."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")
            raise

    # -- adding ---------------------------------------------------------------------------

    def has_bundle(self, bundle_id: bytes) -> bool:
        """True once the bundle is stored, as arrived (raw) or as handled."""
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM bundles WHERE bundle_id = ? UNION ALL"
                " SELECT 1 FROM arrived WHERE bundle_id = ?",
                (bundle_id, bundle_id),
            )
            return row.fetchone() is not None

    def has_waiting(self) -> bool:
        """True while any message waits for the internal server (queued, due or not)."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM messages WHERE state = 'queued' LIMIT 1")
            return row.fetchone() is not None

    def is_handled(self, bundle_id: bytes) -> bool:
        """True once the bundle's notifications are queued or it was quarantined."""
        with self._lock:
            row = self._db.execute("SELECT 1 FROM bundles WHERE bundle_id = ?", (bundle_id,))
            return row.fetchone() is not None

    # -- arrived bundles (raw, stored by earlier versions; built at start) --------------------

    def arrived_count(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM arrived").fetchone()[0])

    def next_arrived(self, busy: set[bytes]) -> ReceivedBundle | None:
        """The oldest arrived bundle not in ``busy``, as a ReceivedBundle; None if none."""
        with self._lock:
            rows = self._db.execute(
                "SELECT bundle_id, stream, seq, kind, created_ms, epoch FROM arrived"
                " ORDER BY seq, at LIMIT ?",
                (len(busy) + 1,),
            ).fetchall()
            for bundle_id, stream, seq, kind, created_ms, epoch in rows:
                if bundle_id in busy:
                    continue
                (data,) = self._db.execute(
                    "SELECT data FROM arrived WHERE bundle_id = ?", (bundle_id,)
                ).fetchone()
                data = self._open(data, f"inject.db: arrived bundle {bundle_id.hex()}")
                return ReceivedBundle(stream, seq, bundle_id, Kind(kind), data, created_ms, epoch)
        return None

    def add_bundle(
        self, bundle_id: bytes, mail_id: str, mail_from: str, rcpts: Sequence[str],
        messages: Sequence[bytes],
    ) -> bool:  # fmt: skip
        """Store all notifications of one bundle in one durable transaction; False if known."""
        now = self._clock()
        with self._lock:
            with self._immediate():
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO bundles VALUES (?, ?, 'queued', ?)",
                    (bundle_id, mail_id, now),
                )
                new = cursor.rowcount == 1
                for part, data in enumerate(messages if new else (), start=1):
                    self._insert(bundle_id, part, "notification", mail_id, mail_from=mail_from,
                                 rcpts=rcpts, data=data, now=now)  # fmt: skip
                # The raw bundle leaves in the same transaction: handled exactly once.
                self._db.execute("DELETE FROM arrived WHERE bundle_id = ?", (bundle_id,))
            if not new:
                return False
            self._wake.notify(len(messages))
        return True

    def record_quarantined(self, bundle_id: bytes, mail_id: str) -> None:
        with self._lock, self._immediate():
            self._db.execute(
                "INSERT OR IGNORE INTO bundles VALUES (?, ?, 'quarantined', ?)",
                (bundle_id, mail_id, self._clock()),
            )
            self._db.execute("DELETE FROM arrived WHERE bundle_id = ?", (bundle_id,))

    def release_quarantined(
        self, bundle_id: bytes, mail_id: str, mail_from: str, rcpts: Sequence[str],
        messages: Sequence[bytes],
    ) -> bool:  # fmt: skip
        """Queue the notifications of a bundle that was quarantined (an administrator released
        it after fixing the cause); False if its notifications are already queued."""
        now = self._clock()
        with self._lock:
            with self._immediate():
                row = self._db.execute(
                    "SELECT outcome FROM bundles WHERE bundle_id = ?", (bundle_id,)
                ).fetchone()
                if row is not None and row[0] != "quarantined":
                    return False
                self._db.execute(
                    "INSERT OR REPLACE INTO bundles VALUES (?, ?, 'queued', ?)",
                    (bundle_id, mail_id, now),
                )
                for part, data in enumerate(messages, start=1):
                    self._insert(bundle_id, part, "notification", mail_id, mail_from=mail_from,
                                 rcpts=rcpts, data=data, now=now)  # fmt: skip
            self._wake.notify_all()
        return True

    def add_rule_notices(self, bundle_id: bytes, mail_id: str, mail_from: str,
                         notices: Sequence[tuple[str, bytes]]) -> None:  # fmt: skip
        """An inbound rule's notices about one bundle, each to its one address; stored once
        per bundle (a bundle handed over again after a crash adds nothing)."""
        now = self._clock()
        with self._lock:
            with self._immediate():
                for number, (rcpt, data) in enumerate(notices, start=1):
                    self._insert(bundle_id, RULE_NOTICE_PART_OFFSET + number, "rule_notice",
                                 mail_id, mail_from=mail_from, rcpts=(rcpt,), data=data,
                                 now=now)  # fmt: skip
            self._wake.notify(len(notices))

    def add_report(self, about: QueuedMessage, mail_from: str, rcpt: str, data: bytes) -> None:
        """A report to the postmaster about a refused message (never reported on itself)."""
        with self._lock:
            part = REPORT_PART_OFFSET + about.part
            self._insert(about.bundle_id, part, "report", about.mail_id, mail_from=mail_from,
                         rcpts=(rcpt,), data=data, now=self._clock())  # fmt: skip
            self._wake.notify()

    def _insert(
        self, bundle_id: bytes, part: int, kind: str, mail_id: str, *, mail_from: str,
        rcpts: Sequence[str], data: bytes, now: float,
    ) -> None:  # fmt: skip
        self._db.execute(
            "INSERT OR IGNORE INTO messages (bundle_id, part, kind, mail_id, mail_from, rcpts,"
            " data, state, next_try, created) VALUES (?, ?, ?, ?, ?, ?, ?, 'queued', ?, ?)",
            (bundle_id, part, kind, mail_id, mail_from, json.dumps(list(rcpts)),
             self.at_rest.seal(data), now, now),
        )  # fmt: skip

    def _open(self, stored: bytes, where: str) -> bytes:
        """Rows stored before an at-rest key was configured read as they are."""
        return self.at_rest.open(stored, where) if is_sealed(stored) else stored

    # -- taking ---------------------------------------------------------------------------

    def next_due(self, busy: set[int]) -> QueuedMessage | None:
        """The oldest due message not in ``busy`` (caller holds no lock)."""
        with self._lock:
            ids = self._db.execute(
                "SELECT id FROM messages WHERE state = 'queued' AND next_try <= ?"
                " ORDER BY next_try, id LIMIT ?",
                (self._clock(), len(busy) + CLAIM_BATCH),
            ).fetchall()
            free = [message_id for (message_id,) in ids if message_id not in busy]
            if not free:
                return None
            row = self._db.execute(  # only now the data, which sits on overflow pages
                "SELECT id, bundle_id, part, kind, mail_id, mail_from, rcpts, data, attempts,"
                " created FROM messages WHERE id = ?",
                (free[0],),
            ).fetchone()
        data = self._open(row[7], f"inject.db: message {row[0]}")
        return QueuedMessage(row[0], row[1], row[2], row[3], row[4], row[5],
                             tuple(json.loads(row[6])), data, row[8], row[9])  # fmt: skip

    def wait(self, timeout_s: float) -> None:
        with self._wake:
            self._wake.wait(timeout_s)

    def wake_all(self) -> None:
        with self._wake:
            self._wake.notify_all()

    # -- outcomes -------------------------------------------------------------------------

    def mark_accepted(self, message_id: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE messages SET state = 'accepted', data = x'', last_error = NULL"
                " WHERE id = ?",
                (message_id,),
            )

    def mark_refused(self, message_id: int, reply: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE messages SET state = 'refused', last_error = ? WHERE id = ?",
                (reply[:MAX_REPLY_CHARS], message_id),
            )

    def defer(self, message_id: int, next_try: float, error: str, rcpts: Sequence[str]) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE messages SET attempts = attempts + 1, next_try = ?, last_error = ?,"
                " rcpts = ? WHERE id = ?",
                (next_try, error[:MAX_REPLY_CHARS], json.dumps(list(rcpts)), message_id),
            )

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) FROM messages GROUP BY state")
            return dict(rows.fetchall())

    def close(self) -> None:
        with self._lock:
            self._db.close()


# --------------------------------------------------------------------------- SMTP


# --------------------------------------------------------------------------- workers


@dataclass(frozen=True)
class RetryPolicy:
    attempts_per_pass: int = 3
    retry_initial_s: float = 10.0
    retry_max_s: float = 600.0

    def next_wait(self, attempts: int) -> float:
        return float(min(self.retry_max_s, self.retry_initial_s * 2 ** min(attempts, 30)))


class Injector:
    """Worker threads that take due messages and hand them to the internal server."""

    def __init__(
        self,
        queue: InjectionQueue,
        hop: Hop,
        audit: AuditLog,
        *,
        policy: RetryPolicy,
        workers: int,
        postmaster: str,
        report_from: str,
        quarantine_dir: Path,
        poll_s: float = 1.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.hop = hop
        self.audit = audit
        self.policy = policy
        self.postmaster = postmaster
        self.report_from = report_from
        self.quarantine_dir = quarantine_dir
        self.poll_s = poll_s
        self._clock = clock
        self._workers = workers
        self._busy: set[int] = set()
        self._busy_lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        for index in range(self._workers):
            thread = threading.Thread(target=self._run, name=f"inject-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self.queue.wake_all()
        for thread in self._threads:
            thread.join(timeout=self.hop.timeout_s + 5)

    def _run(self) -> None:
        session = Session(self.hop)
        try:
            while not self._stop.is_set():
                message = self._claim()
                if message is None:
                    self.queue.wait(self.poll_s)
                    continue
                try:
                    self.deliver(session, message)
                except Exception:
                    log.exception("injecting message %d failed unexpectedly", message.id)
                    self.queue.defer(message.id, self._clock() + self.policy.retry_initial_s,
                                     "internal error", message.rcpts)  # fmt: skip
                finally:
                    with self._busy_lock:
                        self._busy.discard(message.id)
        finally:
            session.close()

    def _claim(self) -> QueuedMessage | None:
        with self._busy_lock:
            message = self.queue.next_due(self._busy)
            if message is not None:
                self._busy.add(message.id)
            return message

    def deliver(self, session: Session, message: QueuedMessage) -> None:
        """One pass: quick retries on temporary failures, then the outcome is recorded."""
        started = self._clock()
        try:
            outcome = self._with_retries(session, message)
        except (TemporaryFailure, RetryError) as exc:
            self._defer(message, str(_last_error(exc)), message.rcpts)
            return
        if outcome.accepted:
            self._record_accepted(message, outcome, started)
        if outcome.permanent:
            self._refuse(message, outcome)
        if outcome.temporary:  # the others are done; only these recipients are tried again
            self._defer(message, outcome.reply, outcome.temporary)
        elif outcome.accepted:
            self.queue.mark_accepted(message.id)

    def _with_retries(self, session: Session, message: QueuedMessage) -> Outcome:
        retrying = Retrying(
            stop=stop_after_attempt(self.policy.attempts_per_pass),
            wait=wait_exponential(multiplier=0.2, max=QUICK_RETRY_MAX_S),
            retry=retry_if_exception(lambda e: isinstance(e, TemporaryFailure)),
            sleep=self._pause,
            reraise=True,
        )
        return retrying(session.send, message.mail_from, message.rcpts, message.data)

    def _pause(self, seconds: float) -> None:
        """Tenacity's sleep: returns early when the agent stops."""
        self._stop.wait(seconds)

    def _record_accepted(self, message: QueuedMessage, outcome: Outcome, started: float) -> None:
        if message.kind == "report":
            self.audit.record(message.mail_id, "postmaster_notified", to=self.postmaster)
            return
        self.audit.record(message.mail_id, "injected", part=message.part,
                          rcpt_count=len(outcome.accepted), reply=outcome.reply,
                          attempts=message.attempts + 1,
                          queued_s=round(self._clock() - message.created, 3),
                          send_s=round(self._clock() - started, 3))  # fmt: skip

    def _defer(self, message: QueuedMessage, error: str, rcpts: Sequence[str]) -> None:
        wait = self.policy.next_wait(message.attempts)
        self.queue.defer(message.id, self._clock() + wait, error, rcpts)
        log.warning("internal server did not take message %d of mail %s (%s); retry in %.0f s",
                    message.id, message.mail_id, error, wait)  # fmt: skip
        if message.attempts == 0 and message.kind == "notification":
            self.audit.record(message.mail_id, "deferred", part=message.part, error=error,
                              retry_in_s=wait)  # fmt: skip

    def _refuse(self, message: QueuedMessage, outcome: Outcome) -> None:
        if not outcome.accepted and not outcome.temporary:
            self.queue.mark_refused(message.id, outcome.reply)
        path = self._quarantine_copy(message)
        log.error("internal server refused message %d of mail %s: %s", message.id,
                  message.mail_id, outcome.reply)  # fmt: skip
        self.audit.record(message.mail_id, "quarantined", reason="refused_by_internal_server",
                          reply=outcome.reply, recipients=list(outcome.permanent),
                          file=str(path))  # fmt: skip
        if message.kind == "notification":
            report = _report(message, outcome, self.report_from, self.postmaster, self._clock())
            self.queue.add_report(message, self.report_from, self.postmaster, report)

    def _quarantine_copy(self, message: QueuedMessage) -> Path:
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        path = self.quarantine_dir / f"refused-{message.mail_id}-{message.part}-{message.id}.eml"
        path.write_bytes(self.queue.at_rest.seal(message.data))
        return path


def _last_error(exc: BaseException) -> BaseException:
    if isinstance(exc, RetryError):
        inner = exc.last_attempt.exception()
        return inner if inner is not None else exc
    return exc


def _report(message: QueuedMessage, outcome: Outcome, sender: str, postmaster: str,
            now: float) -> bytes:  # fmt: skip
    report = EmailMessage(policy=SMTP)
    report["From"] = sender
    report["To"] = postmaster
    report["Subject"] = (
        f"[maildiode] notification refused by the internal server ({message.mail_id})"
    )
    report["Date"] = formatdate(now, localtime=False)
    report["Auto-Submitted"] = "auto-generated"
    report[MARKER_HEADER] = OwnMailKind.POSTMASTER_REPORT.value  # never to go out (ownmail)
    report.set_content(
        "The internal mail server permanently refused a notification.\n\n"
        f"mail id:    {message.mail_id}\npart:       {message.part}\n"
        f"recipients: {', '.join(outcome.permanent)}\nreply:      {outcome.reply}\n\n"
        "The notification was kept in the inner agent's quarantine folder as\n"
        f"refused-{message.mail_id}-{message.part}-{message.id}.eml. See docs/operations.md,\n"
        "'Recover quarantined files', to send it again once the cause is fixed.\n",
        charset="utf-8",
    )
    return report.as_bytes(policy=SMTP)


def queue_summary(path: Path, now: float) -> dict[str, Any]:
    """What an operator asks of the injection queue, read without disturbing a running agent:
    messages per state, how long the oldest one has waited, how often it was tried and why it
    failed last, and bundles stored but not yet built."""
    summary: dict[str, Any] = dict.fromkeys(("queued", "accepted", "refused", "arrived"), 0)
    summary.update(oldest_queued_s=None, attempts=0, last_error=None)
    summary.update(query_read_only(path, "SELECT state, COUNT(*) FROM messages GROUP BY state"))
    for (arrived,) in query_read_only(path, "SELECT COUNT(*) FROM arrived"):
        summary["arrived"] = arrived
    oldest = query_read_only(
        path,
        "SELECT created, attempts, last_error FROM messages WHERE state = 'queued'"
        " ORDER BY created, id LIMIT 1",
    )
    if oldest:
        created, summary["attempts"], summary["last_error"] = oldest[0]
        summary["oldest_queued_s"] = round(max(0.0, now - created), 1)
    return summary
