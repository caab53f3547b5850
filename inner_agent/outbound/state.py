"""The outbound state database (SQLite, WAL): mails, approval requests, spent token nonces,
and the outbox of notice mails. (Web sessions live in the sign-in database since issue 15.8;
the old ``sessions`` table, one row per anonymous request, is dropped by migration 1.)

The spool files are the truth about *which* mails were accepted; this database says how far
each got. Mail states::

    received -> sending -> sent            (allow, monitor, or approved)
    received -> held -> sending -> sent    (approval)
    received -> held -> withdrawn          (the sender took it back before anyone decided)
    received -> blocked | rejected | expired
    received -> quarantined                (spool record unreadable)

``sending`` is written before publishing; publishing is idempotent per bundle id, so a crash
in between publishes again under the same sequence number, never twice as two mails.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inner_agent.outbound.approval import Request, State
from protocol.atrest import CLEAR, AtRest, is_sealed
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    write_transaction,
)

__all__ = ["FINISHED_STATES", "MailRow", "Notice", "OutboundState"]

# The mail states after which nothing more happens to a mail (lifecycle.MailState): what the
# retention of finished outbound mail may forget.
FINISHED_STATES = ("sent", "blocked", "rejected", "expired", "withdrawn", "quarantined")
_FINISHED_MARKS = ",".join("?" * len(FINISHED_STATES))
_PENDING_REQUESTS = tuple(state.value for state in State if state.pending)
_PENDING_MARKS = ",".join("?" * len(_PENDING_REQUESTS))
# Only "?" placeholders are put in.
_FINISHED_BEFORE = (
    f"SELECT mail_id FROM mails WHERE state IN ({_FINISHED_MARKS}) AND updated_at < ?"  # noqa: S608
)
_DECIDED_BEFORE = (
    "SELECT r.request_id FROM requests r LEFT JOIN mails m USING (mail_id) WHERE "  # noqa: S608
    f"r.state NOT IN ({_PENDING_MARKS}) AND (m.mail_id IS NULL AND r.since < ? OR "
    f"m.state IN ({_FINISHED_MARKS}) AND m.updated_at < ?)"
)


def _drop_sessions(db: sqlite3.Connection) -> None:
    """1: web sessions moved to the sign-in database (issue 15.8); the old table goes."""
    db.execute("DROP TABLE IF EXISTS sessions")


def _keep_who_acted(db: sqlite3.Connection) -> None:
    """2: who decided in the approver's name (a delegate, an administrator) is kept with the
    decision, so a decision finished after the web process died still says who acted. A new
    file has the columns from the schema already."""
    have = {str(row[1]) for row in db.execute("PRAGMA table_info(requests)")}
    for column in ("acted_by", "capacity"):
        if column not in have:
            db.execute(f"ALTER TABLE requests ADD COLUMN {column} TEXT NOT NULL DEFAULT ''")


# The schema's history (protocol.sqlite).
VERSIONS = StoreVersions("outbound state", (_drop_sessions, _keep_who_acted))

_SCHEMA = """
CREATE TABLE IF NOT EXISTS mails (
    mail_id     TEXT PRIMARY KEY,
    state       TEXT NOT NULL,
    mail_from   TEXT NOT NULL,
    rcpt_to     TEXT NOT NULL,
    subject     TEXT NOT NULL DEFAULT '',
    received_at REAL NOT NULL,
    decision    TEXT NOT NULL DEFAULT '{}',
    findings    TEXT NOT NULL DEFAULT '[]',
    decided_by  TEXT NOT NULL DEFAULT '',
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS mails_state ON mails (state);
CREATE TABLE IF NOT EXISTS requests (
    request_id  TEXT PRIMARY KEY,
    mail_id     TEXT NOT NULL UNIQUE,
    state       TEXT NOT NULL,
    approvers   TEXT NOT NULL,
    since       REAL NOT NULL,
    reminded    INTEGER NOT NULL,
    escalations INTEGER NOT NULL,
    decided_by  TEXT,
    reason      TEXT NOT NULL,
    preview     BLOB,
    acted_by    TEXT NOT NULL DEFAULT '',
    capacity    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS requests_state ON requests (state);
CREATE TABLE IF NOT EXISTS previews (
    request_id  TEXT PRIMARY KEY,
    pages       BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS spent_nonces (nonce TEXT PRIMARY KEY, spent_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
    id        INTEGER PRIMARY KEY,
    mail_id   TEXT NOT NULL,
    kind      TEXT NOT NULL,
    rcpt      TEXT NOT NULL,
    data      BLOB NOT NULL,
    next_try  REAL NOT NULL,
    attempts  INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT ''
);
"""


@dataclass(frozen=True)
class MailRow:
    mail_id: str
    state: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    subject: str  # masked
    received_at: float
    decision: dict[str, Any]
    findings: list[dict[str, str]]  # masked: type, masked, where
    decided_by: str


@dataclass(frozen=True)
class Notice:
    id: int
    mail_id: str
    kind: str
    rcpt: str
    data: bytes
    attempts: int


class OutboundState:
    """One connection shared by the threads of one process, guarded by a lock."""

    def __init__(self, path: Path, *, clock: Any = time.time, at_rest: AtRest = CLEAR) -> None:
        self.clock = clock
        # The blobs holding a mail's picture or text (the preview, the notice mails) are
        # sealed; a row stored before a key was configured still reads.
        self.at_rest = at_rest
        self._lock = threading.RLock()
        self._db = open_wal_database(  # FULL: decisions must survive a power cut
            path,
            _SCHEMA,
            synchronous=Synchronous.FULL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------- mails

    def add_mail(
        self, mail_id: str, mail_from: str, rcpt_to: tuple[str, ...], received_at: float
    ) -> bool:
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO mails (mail_id, state, mail_from, rcpt_to, received_at,"
                " updated_at) VALUES (?, 'received', ?, ?, ?, ?)",
                (mail_id, mail_from, json.dumps(list(rcpt_to)), received_at, self.clock()),
            )
            return cursor.rowcount == 1

    def set_mail(
        self, mail_id: str, state: str, *, expect: str | None = None, **fields: Any
    ) -> bool:
        """Store the mail's state (and ``fields``). With ``expect``, only if the stored state
        is still that one (a compare-and-set: the web process and the worker both move mails,
        and only one of two moves from the same state may win); False when it was not."""
        columns = {"state": state, "updated_at": self.clock()}
        for name in ("subject", "decided_by"):
            if name in fields:
                columns[name] = fields[name]
        for name in ("decision", "findings"):
            if name in fields:
                columns[name] = json.dumps(fields[name], ensure_ascii=False)
        assignments = ", ".join(f"{name} = ?" for name in columns)
        where, values = "mail_id = ?", [*columns.values(), mail_id]
        if expect is not None:
            where, values = f"{where} AND state = ?", [*values, expect]
        with self._tx() as db:
            cursor = db.execute(
                f"UPDATE mails SET {assignments} WHERE {where}",  # noqa: S608 - fixed names
                values,
            )
            return cursor.rowcount == 1

    def mail(self, mail_id: str) -> MailRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT mail_id, state, mail_from, rcpt_to, subject, received_at, decision,"
                " findings, decided_by FROM mails WHERE mail_id = ?",
                (mail_id,),
            ).fetchone()
        return None if row is None else _mail_row(row)

    def state_since(self, mail_id: str) -> float | None:
        """When the mail entered its current state (``updated_at``); stable across restarts."""
        with self._lock:
            row = self._db.execute(
                "SELECT updated_at FROM mails WHERE mail_id = ?", (mail_id,)
            ).fetchone()
        return None if row is None else float(row[0])

    def mails_from(self, sender: str, limit: int) -> list[MailRow]:
        """The newest ``limit`` mails whose envelope sender is ``sender`` (any case)."""
        with self._lock:
            rows = self._db.execute(
                "SELECT mail_id, state, mail_from, rcpt_to, subject, received_at, decision,"
                " findings, decided_by FROM mails WHERE mail_from = ? COLLATE NOCASE"
                " ORDER BY received_at DESC LIMIT ?",
                (sender, limit),
            ).fetchall()
        return [_mail_row(r) for r in rows]

    def mails_in(self, state: str) -> list[str]:
        with self._lock:
            rows = self._db.execute(
                "SELECT mail_id FROM mails WHERE state = ? ORDER BY received_at", (state,)
            ).fetchall()
        return [r[0] for r in rows]

    # ------------------------------------------------------------------------------- requests

    def add_request(
        self,
        request: Request,
        preview: bytes,
        notices: Sequence[tuple[str, str, str, bytes]] = (),
        *,
        pages: bytes = b"",
    ) -> bool:
        """Store a new request, mark its mail ``held`` and queue ``notices`` (mail id, kind,
        recipient, message), in one transaction; only while the mail is ``received`` (False,
        and nothing stored, when it is not). ``preview``: the first picture (the console's);
        ``pages``: the whole preview, encoded (``previews.Preview``)."""
        with self._tx() as db:
            moved = db.execute(
                "UPDATE mails SET state = 'held', updated_at = ? WHERE mail_id = ?"
                " AND state = 'received'",
                (self.clock(), request.mail_id),
            )
            if moved.rowcount != 1:
                return False
            db.executemany(
                "INSERT INTO outbox (mail_id, kind, rcpt, data, next_try) VALUES (?, ?, ?, ?, ?)",
                [(m, k, r, self._seal(data), self.clock()) for m, k, r, data in notices],
            )
            db.execute(
                "INSERT INTO requests (request_id, mail_id, state, approvers, since, reminded,"
                " escalations, decided_by, reason, preview) VALUES (?,?,?,?,?,?,?,?,?,?)",
                (*_request_values(request), self._seal(preview)),
            )
            if pages:
                db.execute("INSERT OR REPLACE INTO previews (request_id, pages) VALUES (?, ?)",
                           (request.request_id, self._seal(pages)))  # fmt: skip
            return True

    def save_request(
        self, request: Request, *, expect: Request, acted_by: str = "", capacity: str = ""
    ) -> bool:
        """Store ``request`` if the stored one still has the state and escalation count of
        ``expect`` (the one it was made from): a compare-and-set in the database, so a
        decision in the web process and a timer in the agent's never both win, and a decision
        read before an escalation cannot land after it. False when someone else was first.
        (A reminder changes neither: a decision may follow it.) ``acted_by`` and ``capacity``:
        who decided in the approver's name, and as what ("delegate", "admin")."""
        values = _request_values(request)
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE requests SET state=?, approvers=?, since=?, reminded=?, escalations=?,"
                " decided_by=?, reason=?, acted_by=?, capacity=?"
                " WHERE request_id=? AND state=? AND escalations=?",
                (
                    *values[2:],
                    acted_by,
                    capacity,
                    values[0],
                    str(expect.state),
                    expect.escalations,
                ),
            )
            return cursor.rowcount == 1

    def who_acted(self, request_id: str) -> tuple[str, str]:
        """(acted_by, capacity) stored with the request's decision; ("", "") when the
        approver decided themself."""
        with self._lock:
            row = self._db.execute(
                "SELECT acted_by, capacity FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        return ("", "") if row is None else (str(row[0]), str(row[1]))

    def request(self, request_id: str) -> Request | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE request_id = ?",  # noqa: S608
                (request_id,),
            ).fetchone()
        return None if row is None else _request(row)

    def request_for_mail(self, mail_id: str) -> Request | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE mail_id = ?",  # noqa: S608
                (mail_id,),
            ).fetchone()
        return None if row is None else _request(row)

    def pending_requests(self) -> list[Request]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_REQUEST_COLUMNS} FROM requests WHERE state IN ('held', 'escalated')"  # noqa: S608
                " ORDER BY since"
            ).fetchall()
        return [_request(r) for r in rows]

    def decided_but_held(self) -> list[Request]:
        """Requests decided (or expired) whose mail is still ``held``: the process that
        decided stopped between the two writes (the web process killed at that moment)."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_PREFIXED_COLUMNS} FROM requests r JOIN mails m USING (mail_id)"  # noqa: S608
                " WHERE m.state = 'held' AND r.state IN ('approved', 'rejected', 'expired',"
                " 'withdrawn')"
                " ORDER BY r.since"
            ).fetchall()
        return [_request(r) for r in rows]

    def preview(self, request_id: str) -> bytes | None:
        with self._lock:
            row = self._db.execute(
                "SELECT preview FROM requests WHERE request_id = ?", (request_id,)
            ).fetchone()
        if row is None or row[0] is None:
            return None
        return self._open(bytes(row[0]), f"request {request_id}: preview")

    def preview_pages(self, request_id: str) -> bytes | None:
        """The request's whole preview as stored (None: none, or kept before pages were)."""
        with self._lock:
            row = self._db.execute(
                "SELECT pages FROM previews WHERE request_id = ?", (request_id,)
            ).fetchone()
        if row is None:
            return None
        return self._open(bytes(row[0]), f"request {request_id}: preview pages")

    # ------------------------------------------------------------------------------- tokens

    def spend_nonce(self, nonce: str) -> bool:
        """Record a token as used; False when it was used before."""
        with self._tx() as db:
            cursor = db.execute(
                "INSERT OR IGNORE INTO spent_nonces (nonce, spent_at) VALUES (?, ?)",
                (nonce, self.clock()),
            )
            return cursor.rowcount == 1

    def prune(self, spent_before: float) -> None:
        """Forget nonces of tokens that have expired anyway."""
        with self._tx() as db:
            db.execute("DELETE FROM spent_nonces WHERE spent_at < ?", (spent_before,))

    def nonce_spent(self, nonce: str) -> bool:
        with self._lock:
            row = self._db.execute(
                "SELECT 1 FROM spent_nonces WHERE nonce = ?", (nonce,)
            ).fetchone()
        return row is not None

    # ---------------------------------------------------------------------------- retention

    def prune_finished(self, before: float) -> int:
        """Forget finished mails (sent, blocked, rejected, expired, withdrawn, quarantined)
        that reached that state before ``before``, with any notice about them still queued;
        returns how many mails. Their approval requests go by their own setting
        (``prune_decided``). A mail still received, held or sending is never touched,
        whatever its age (agentkit.storeretention)."""
        with self._tx() as db:
            found = db.execute(_FINISHED_BEFORE, (*FINISHED_STATES, before))
            ids = [row[0] for row in found]
            for mail_id in ids:
                db.execute("DELETE FROM outbox WHERE mail_id = ?", (mail_id,))
                db.execute("DELETE FROM mails WHERE mail_id = ?", (mail_id,))
            return len(ids)

    def prune_decided(self, before: float) -> int:
        """Forget decided approval requests (and their previews, the mail's picture) of mails
        finished before ``before`` (or already forgotten, asked before ``before``); returns
        how many. A pending request, or a decided one whose mail is still held or sending,
        stays."""
        with self._tx() as db:
            found = db.execute(
                _DECIDED_BEFORE, (*_PENDING_REQUESTS, before, *FINISHED_STATES, before)
            )
            ids = [row[0] for row in found]
            for request_id in ids:
                db.execute("DELETE FROM previews WHERE request_id = ?", (request_id,))
                db.execute("DELETE FROM requests WHERE request_id = ?", (request_id,))
            return len(ids)

    # ------------------------------------------------------------------------------- outbox

    def queue_notice(self, mail_id: str, kind: str, rcpt: str, data: bytes) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO outbox (mail_id, kind, rcpt, data, next_try) VALUES (?, ?, ?, ?, ?)",
                (mail_id, kind, rcpt, self._seal(data), self.clock()),
            )

    def due_notices(self) -> list[Notice]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, mail_id, kind, rcpt, data, attempts FROM outbox WHERE next_try <= ?"
                " ORDER BY id",
                (self.clock(),),
            ).fetchall()
        return [Notice(r[0], r[1], r[2], r[3], self._notice_data(r), r[5]) for r in rows]

    def notice_sent(self, notice_id: int) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM outbox WHERE id = ?", (notice_id,))

    def notice_deferred(self, notice_id: int, next_try: float, error: str) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE outbox SET attempts = attempts + 1, next_try = ?, last_error = ?"
                " WHERE id = ?",
                (next_try, error, notice_id),
            )

    def notices(self) -> list[Notice]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, mail_id, kind, rcpt, data, attempts FROM outbox ORDER BY id"
            ).fetchall()
        return [Notice(r[0], r[1], r[2], r[3], self._notice_data(r), r[5]) for r in rows]

    def _seal(self, blob: bytes) -> bytes:
        return self.at_rest.seal(blob)

    def _open(self, stored: bytes, where: str) -> bytes:
        return self.at_rest.open(stored, where) if is_sealed(stored) else stored

    def _notice_data(self, row: Sequence[Any]) -> bytes:
        return self._open(bytes(row[4]), f"outbox notice {row[0]}")


_REQUEST_COLUMNS = (
    "request_id, mail_id, state, approvers, since, reminded, escalations, decided_by, reason"
)

_PREFIXED_COLUMNS = ", ".join(f"r.{name.strip()}" for name in _REQUEST_COLUMNS.split(","))


def _request_values(request: Request) -> tuple[Any, ...]:
    return (
        request.request_id,
        request.mail_id,
        str(request.state),
        json.dumps(list(request.approvers)),
        request.since,
        int(request.reminded),
        request.escalations,
        request.decided_by,
        request.reason,
    )


def _request(row: tuple[Any, ...]) -> Request:
    return Request(
        request_id=row[0],
        mail_id=row[1],
        state=State(row[2]),
        approvers=tuple(json.loads(row[3])),
        since=row[4],
        reminded=bool(row[5]),
        escalations=row[6],
        decided_by=row[7],
        reason=row[8],
    )


def _mail_row(row: tuple[Any, ...]) -> MailRow:
    return MailRow(
        mail_id=row[0],
        state=row[1],
        mail_from=row[2],
        rcpt_to=tuple(json.loads(row[3])),
        subject=row[4],
        received_at=row[5],
        decision=json.loads(row[6]),
        findings=json.loads(row[7]),
        decided_by=row[8],
    )
