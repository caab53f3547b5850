"""The sign-in database (SQLite, WAL): lockout strikes by account and client, sessions, and
the last second-factor time step each account used. Survives restarts; bounded.

Sessions are made at sign-in and only then: before issue 15.8 every anonymous request stored
one (20,000 GETs, 20,030 rows). Strikes are kept for unknown addresses too (the lockout must
not tell who has an account), so their table is capped at ``MAX_STRIKES`` rows: past it, the
pairs idle longest go first, unlocked ones before locked ones.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from inner_agent.web.lockout import FORGET_AFTER_S, Strikes
from protocol.sqlite import (
    AGENT_BUSY_TIMEOUT_S,
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_made,
    write_transaction,
)

__all__ = ["MAX_STRIKES", "SessionRow", "SignInStore"]

# Rows of strikes kept at most: a flood of random addresses cannot grow the file past a few MB.
MAX_STRIKES = 50_000
# Dropped in one go when the cap is passed, so the cap is not checked on every insert.
EVICT_BATCH = 1000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS strikes (
    account      TEXT NOT NULL,
    client       TEXT NOT NULL,
    failures     INTEGER NOT NULL,
    locks        INTEGER NOT NULL,
    locked_until REAL NOT NULL,
    updated      REAL NOT NULL,
    PRIMARY KEY (account, client)
);
CREATE INDEX IF NOT EXISTS strikes_updated ON strikes (locked_until > updated, updated);
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    user       TEXT NOT NULL,
    created    REAL NOT NULL,
    last_seen  REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS second_factor (account TEXT PRIMARY KEY, last_step INTEGER NOT NULL);
"""

# The schema's history (protocol.sqlite). Version 1 (D109): this schema, made where missing,
# so a file of the release before versions (0) is upgraded and recorded like any other.
VERSIONS = StoreVersions("sign-in", (schema_made(_SCHEMA),))

SessionRow = tuple[str, float, float]  # user, created, last seen


class SignInStore:
    """One connection shared by the threads of one process, guarded by a lock."""

    def __init__(self, path: Path) -> None:
        self._lock = threading.Lock()
        # NORMAL: a strike or session lost to a power cut costs one more guess or one more
        # sign-in, never mail.
        self._db = open_wal_database(
            path,
            _SCHEMA,
            synchronous=Synchronous.NORMAL,
            busy_timeout_s=AGENT_BUSY_TIMEOUT_S,
            versions=VERSIONS,
        )
        self._strike_rows = self._count("strikes")

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]:
        return write_transaction(self._db, self._lock)

    def _count(self, table: str) -> int:
        with self._lock:
            row = self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()  # noqa: S608
        return int(row[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------------------- strikes

    def strikes(self, account: str, client: str) -> Strikes:
        with self._lock:
            row = self._db.execute(
                "SELECT failures, locks, locked_until, updated FROM strikes"
                " WHERE account = ? AND client = ?",
                (account, client),
            ).fetchone()
        return Strikes() if row is None else Strikes(*row)

    def put_strikes(self, account: str, client: str, strikes: Strikes) -> None:
        self.update_strikes(account, client, lambda _old: strikes)

    def update_strikes(
        self, account: str, client: str, change: Callable[[Strikes], Strikes]
    ) -> Strikes:
        """Store ``change(stored strikes)`` in one transaction (tries checked at the same time
        each count); the strikes stored."""
        with self._tx() as db:
            row = db.execute(
                "SELECT failures, locks, locked_until, updated FROM strikes"
                " WHERE account = ? AND client = ?",
                (account, client),
            ).fetchone()
            strikes = change(Strikes() if row is None else Strikes(*row))
            db.execute(
                "INSERT OR REPLACE INTO strikes VALUES (?, ?, ?, ?, ?, ?)",
                (account, client, strikes.failures, strikes.locks, strikes.locked_until,
                 strikes.updated),
            )  # fmt: skip
            self._strike_rows += row is None
            if self._strike_rows > MAX_STRIKES:
                self._evict(db, strikes.updated)
        return strikes

    def _evict(self, db: sqlite3.Connection, now: float) -> None:
        db.execute("DELETE FROM strikes WHERE updated < ? AND locked_until < ?",
                   (now - FORGET_AFTER_S, now))  # fmt: skip
        db.execute(
            "DELETE FROM strikes WHERE rowid IN (SELECT rowid FROM strikes"
            " ORDER BY locked_until > updated, updated LIMIT ?)",
            (max(0, self._rows(db) - MAX_STRIKES + EVICT_BATCH),),
        )
        self._strike_rows = self._rows(db)

    @staticmethod
    def _rows(db: sqlite3.Connection) -> int:
        return int(db.execute("SELECT COUNT(*) FROM strikes").fetchone()[0])

    def clear_strikes(self, account: str, client: str) -> None:
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM strikes WHERE account = ? AND client = ?", (account, client)
            )
            self._strike_rows -= cursor.rowcount

    def strike_rows(self) -> int:
        return self._count("strikes")

    # ------------------------------------------------------------------------------- sessions

    def add_session(self, session_id: str, user: str, now: float) -> None:
        with self._tx() as db:
            db.execute("INSERT INTO sessions VALUES (?, ?, ?, ?)", (session_id, user, now, now))

    def session(self, session_id: str) -> SessionRow | None:
        with self._lock:
            row = self._db.execute(
                "SELECT user, created, last_seen FROM sessions WHERE session_id = ?",
                (session_id,),
            ).fetchone()
        return None if row is None else (str(row[0]), float(row[1]), float(row[2]))

    def touch_session(self, session_id: str, now: float) -> None:
        with self._tx() as db:
            db.execute("UPDATE sessions SET last_seen = ? WHERE session_id = ?", (now, session_id))

    def drop_session(self, session_id: str) -> None:
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE session_id = ?", (session_id,))

    def drop_sessions_before(self, created_before: float, seen_before: float) -> int:
        """Forget sessions past their absolute or idle limit; how many."""
        with self._tx() as db:
            cursor = db.execute(
                "DELETE FROM sessions WHERE created < ? OR last_seen < ?",
                (created_before, seen_before),
            )
            return cursor.rowcount

    # ------------------------------------------------------------------------ second factor

    def spend_step(self, account: str, step: int) -> bool:
        """Record that ``account`` used the code of time step ``step``; False when it used
        that step or a later one before (a code works once)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT last_step FROM second_factor WHERE account = ?", (account,)
            ).fetchone()
            if row is not None and int(row[0]) >= step:
                return False
            db.execute("INSERT OR REPLACE INTO second_factor VALUES (?, ?)", (account, step))
            return True
