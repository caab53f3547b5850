"""SQLite: the one place where a database of ours is opened (decision D3).

Every state database of both agents — the link's sender and receiver state, the injection
queue, the outbound state and directory, the audit log — is opened by
:func:`open_wal_database`: a private folder, WAL, a busy timeout, the synchronous level the
caller names, the schema script. :func:`open_read_only_database` opens another process's
database for looking only (``maildiode stats``, ``status``, the tools).

Versions (decision D71, "Versioned state"): every store declares a :class:`StoreVersions` — its
name and its migrations in order, plain functions on a connection; migration ``i`` takes a
file from version ``i`` to ``i + 1``, and the file's ``PRAGMA user_version`` says how many it
has had. Opening a file:

1. at this release's version: nothing more (no write lock taken);
2. at a newer version: refused with :class:`NewerStateError` (file, its version, ours);
3. at an older version, with tables in it: a copy first (:func:`copy_database`, beside it as
   ``NAME.vOLD-STAMP.bak``), then the schema script (it only makes what is missing), then the
   missing migrations and the new version in one transaction — a failing migration rolls
   them all back, and the copy stays;
4. new (no tables): the schema script, then every migration, no copy.

A migration stands on its own: it makes what it changes when absent (a file several stores
share may have been made by another of them first) and checks before adding a column that a
schema script may already make. A store's first migration, where it had none before, is
:func:`schema_made` (D109): its own schema script, run statement by statement inside the
upgrade's transaction, so the upgrade at start makes this release's tables where missing and
a file of an earlier release (version 0) is recorded as brought to version 1.

Before anything is upgraded, an agent's start checks every file (:func:`found_version`): a
newer release's file anywhere stops it with nothing changed (``agentkit.upgrade``).
"""

from __future__ import annotations

import enum
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from protocol.durable import PRIVATE_DIR_MODE, fsync_dir
from protocol.errors import LocalError, NewerStateError

__all__ = [
    "AGENT_BUSY_TIMEOUT_S",
    "BUSY_TIMEOUT_S",
    "Migrated",
    "Migration",
    "StoreVersions",
    "Synchronous",
    "copy_database",
    "found_version",
    "fsync_wal",
    "open_existing_database",
    "open_read_only_database",
    "open_wal_database",
    "read_meta",
    "schema_made",
    "schema_version",
    "upgrade_database",
    "write_meta",
    "write_transaction",
]

BUSY_TIMEOUT_S = 30.0  # another process (e.g. `maildiode resend`) may hold the write lock briefly
# The agents' queues, directory and audit log have always waited 5 s for a lock (the SMTP
# acceptors open the audit log at once); a lock held longer is reported, not waited out.
AGENT_BUSY_TIMEOUT_S = 5.0


Migration = Callable[[sqlite3.Connection], None]


@dataclass(frozen=True)
class StoreVersions:
    """A store's schema history. ``store`` names it in refusals and in the audit."""

    store: str
    migrations: tuple[Migration, ...] = ()

    @property
    def version(self) -> int:
        """This release's version of the store: the migrations it knows."""
        return len(self.migrations)


@dataclass(frozen=True)
class Migrated:
    """A file brought forward: what the agent records as ``state_migrated``."""

    store: str
    path: Path
    from_version: int
    to_version: int
    backup: Path


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
    versions: StoreVersions | None = None,
) -> sqlite3.Connection:
    """Open (creating it and a private folder) the database at ``path`` in WAL mode.

    The connection is in autocommit mode (callers write ``BEGIN IMMEDIATE`` themselves) and may
    be shared by threads behind the caller's lock. ``schema`` runs every time, so it must be
    idempotent (``CREATE ... IF NOT EXISTS``). ``versions``: the store's migrations, run as the
    module docstring says (every store of the agents gives them; None only for scratch files)."""
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
        if versions is not None:  # the copy stays on disk; the agents audit their upgrades
            _guard(db, path, versions)  # at start, before any store opens (upgrade_database)
        db.executescript(schema)
        if versions is not None:
            _migrate(db, path, versions)
    except BaseException:
        db.close()
        raise
    return db


def upgrade_database(path: Path, versions: StoreVersions) -> Migrated | None:
    """Bring the existing database at ``path`` to this release's version before its store
    opens it (the agents' start, which records what this returns in the audit): a copy
    first, then the migrations in one transaction. None when nothing was to do (no file, a
    new one, or already at this version); :class:`NewerStateError` for a newer file."""
    if not path.is_file():
        return None
    db = sqlite3.connect(path, timeout=AGENT_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        backup = _guard(db, path, versions)
        found = _migrate(db, path, versions)
    finally:
        db.close()
    if backup is None or found is None:
        return None
    return Migrated(versions.store, path, found, versions.version, backup)


def found_version(path: Path, versions: StoreVersions) -> int | None:
    """The version of the existing file at ``path`` (None: no file), read without changing
    it; :class:`NewerStateError` when it is a newer release's. The check an upgrade makes on
    every file before it migrates any."""
    if not path.is_file():
        return None
    db = sqlite3.connect(path, timeout=AGENT_BUSY_TIMEOUT_S, isolation_level=None)
    try:
        found = schema_version(db)
    finally:
        db.close()
    _refuse_newer(path, found, versions)
    return found


def schema_made(schema: str) -> Migration:
    """A migration that runs ``schema``'s statements (each makes only what is missing:
    ``CREATE ... IF NOT EXISTS``) on the upgrade's connection, inside its transaction —
    ``executescript`` would commit it half-way."""
    statements = _statements(schema)

    def make_schema(db: sqlite3.Connection) -> None:
        for statement in statements:
            db.execute(statement)

    return make_schema


def _statements(script: str) -> tuple[str, ...]:
    """``script`` cut into its statements (a ``;`` inside a comment or a string does not end
    one: SQLite's own ``complete_statement`` says where one ends)."""
    found, pending = [], ""
    for piece in script.split(";"):
        pending += piece + ";"
        if sqlite3.complete_statement(pending):
            if pending.rstrip(";").strip():
                found.append(pending.strip())
            pending = ""
    return tuple(found)


def schema_version(db: sqlite3.Connection) -> int:
    """The file's ``PRAGMA user_version``: how many migrations it has had."""
    (version,) = db.execute("PRAGMA user_version").fetchone()
    return int(version)


def _refuse_newer(path: Path, found: int, versions: StoreVersions) -> None:
    if found > versions.version:
        raise NewerStateError(
            f"{path}: {versions.store} schema version {found} is newer than this release's "
            f"{versions.version} — run the release that wrote it, or restore the copy taken "
            "before the upgrade"
        )


def _guard(db: sqlite3.Connection, path: Path, versions: StoreVersions) -> Path | None:
    """Refuse a newer file; copy an older one that holds tables aside (its path)."""
    found = schema_version(db)
    _refuse_newer(path, found, versions)
    if found == versions.version or not _has_tables(db):
        return None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    backup = path.with_name(f"{path.name}.v{found}-{stamp}.bak")
    partial = backup.with_name(backup.name + ".part")  # a copy cut short is never a .bak
    partial.unlink(missing_ok=True)
    copy_database(path, partial)
    os.replace(partial, backup)
    fsync_dir(backup.parent)
    return backup


def _migrate(db: sqlite3.Connection, path: Path, versions: StoreVersions) -> int | None:
    """The missing migrations and the new version in one transaction; the version the file
    had, or None when it had this one (another process may have migrated it meanwhile)."""
    if schema_version(db) == versions.version:
        return None  # the usual opening: no write lock taken
    db.execute("BEGIN IMMEDIATE")  # two processes opening an old file: one migrates
    try:
        found = schema_version(db)
        _refuse_newer(path, found, versions)
        for migration in versions.migrations[found:]:
            migration(db)
        db.execute(f"PRAGMA user_version = {versions.version}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return None if found == versions.version else found


def _has_tables(db: sqlite3.Connection) -> bool:
    return db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table'").fetchone() is not None


def open_read_only_database(path: Path) -> sqlite3.Connection:
    """Open another process's database for reading: never creates the file (the agent would
    then find an empty one) and never takes a write lock. Raises sqlite3.OperationalError
    when the file does not exist."""
    return sqlite3.connect(f"{path.absolute().as_uri()}?mode=ro", uri=True)


def open_existing_database(
    path: Path, busy_timeout_s: float = BUSY_TIMEOUT_S
) -> sqlite3.Connection:
    """Open another process's database to lock or write it, in autocommit mode (the caller
    writes ``BEGIN IMMEDIATE``): never creates the file (a command must not make the agent's
    store as another user). Raises sqlite3.OperationalError when the file does not exist."""
    return sqlite3.connect(
        f"{path.absolute().as_uri()}?mode=rw", uri=True, timeout=busy_timeout_s,
        isolation_level=None,
    )  # fmt: skip


def copy_database(source: Path, target: Path) -> None:
    """A transactionally consistent copy of the live database at ``source`` into the new file
    ``target`` (mode 0600), by SQLite's online backup: whatever the owner commits meanwhile, the
    copy holds a state it committed, with what its write-ahead log held folded in."""
    origin = sqlite3.connect(source, timeout=BUSY_TIMEOUT_S)
    try:
        copy = sqlite3.connect(target)
        try:
            origin.backup(copy)
        finally:
            copy.close()
    finally:
        origin.close()
    os.chmod(target, 0o600)


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
