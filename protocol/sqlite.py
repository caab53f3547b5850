"""SQLite: the one place where a database of ours is opened (decision D3).

Every state database of both agents — the link's sender and receiver state, the injection
queue, the outbound state and directory, the audit log — is opened by
:func:`open_wal_database`: a private folder, WAL, a busy timeout, the synchronous level the
caller names, the schema script. :func:`open_read_only_database` opens another process's
database for looking only (``maildiode stats``, ``status``, the tools).
"""

from __future__ import annotations

import enum
import os
import sqlite3
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from protocol.durable import PRIVATE_DIR_MODE
from protocol.errors import LocalError

__all__ = [
    "AGENT_BUSY_TIMEOUT_S",
    "BUSY_TIMEOUT_S",
    "Synchronous",
    "fsync_wal",
    "open_read_only_database",
    "open_wal_database",
    "read_meta",
    "write_meta",
    "write_transaction",
]

BUSY_TIMEOUT_S = 30.0  # another process (e.g. `maildiode resend`) may hold the write lock briefly
# The agents' queues, directory and audit log have always waited 5 s for a lock (the SMTP
# acceptors open the audit log at once); a lock held longer is reported, not waited out.
AGENT_BUSY_TIMEOUT_S = 5.0


class Synchronous(enum.Enum):
    """How much a commit waits for the disk (SQLite's ``PRAGMA synchronous`` in WAL mode)."""

    FULL = "FULL"  # every commit fsyncs the WAL: where a lost commit could lose or repeat mail
    NORMAL = "NORMAL"  # fsync at checkpoints: a power cut may lose the last commits (audit log)


def open_wal_database(
    path: Path,
    schema: str,
    *,
    synchronous: Synchronous,
    busy_timeout_s: float = BUSY_TIMEOUT_S,
) -> sqlite3.Connection:
    """Open (creating it and a private folder) the database at ``path`` in WAL mode.

    The connection is in autocommit mode (callers write ``BEGIN IMMEDIATE`` themselves) and may
    be shared by threads behind the caller's lock. ``schema`` runs every time, so it must be
    idempotent (``CREATE ... IF NOT EXISTS``)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    # The busy timeout is set by connect(), before the first statement: switching to WAL needs
    # a lock that another process opening the same file may hold for a moment.
    db = sqlite3.connect(
        path, timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
    )
    try:
        (mode,) = db.execute("PRAGMA journal_mode=WAL").fetchone()
        if str(mode).lower() != "wal":
            raise LocalError(
                f"{path}: SQLite keeps journal mode {mode!r} instead of WAL; the database "
                "must be a file on a local file system"
            )
        db.execute(f"PRAGMA synchronous={synchronous.value}")
        db.executescript(schema)
    except BaseException:
        db.close()
        raise
    return db


def open_read_only_database(path: Path) -> sqlite3.Connection:
    """Open another process's database for reading: never creates the file (the agent would
    then find an empty one) and never takes a write lock. Raises sqlite3.OperationalError
    when the file does not exist."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def fsync_wal(path: Path) -> None:
    """What ``synchronous=FULL`` does at commit: fsync the write-ahead log of the database at
    ``path`` (or the database file, before it has a log). For a caller that committed with
    ``NORMAL`` and syncs on another thread while it does other work (the Sender)."""
    wal = path.with_name(path.name + "-wal")
    fd = os.open(wal if wal.exists() else path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def read_meta(db: sqlite3.Connection, key: str, default: int = 0) -> int:
    """An integer from the ``meta`` table every state database has."""
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return default if row is None else int(row[0])


def write_meta(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) "
        "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
        (key, value),
    )


@contextmanager
def write_transaction(
    db: sqlite3.Connection, lock: AbstractContextManager[object]
) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` on a connection of :func:`open_wal_database` shared
    behind ``lock`` (a Lock or an RLock): the write lock is taken at the start, so another
    process's writer waits its busy timeout instead of failing half-way; anything raised
    rolls back."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
