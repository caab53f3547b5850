"""The directory database's schema, versioned: ``PRAGMA user_version`` says which migrations a
file has had, and opening it runs the missing ones forward, in place, each in one transaction.

Version 0 is the schema every release before the version existed made (people and
departments). A migration only adds (columns with defaults, tables), so a file never needs
copying aside; a file from a *newer* release is refused rather than half-understood.

=========  =================================================================================
version    what it adds
=========  =================================================================================
1          people's job rank (직급), manager, disabled flag and source; named groups;
           the stored sync/import reports
=========  =================================================================================
"""

from __future__ import annotations

import sqlite3

from inner_agent.outbound.errors import DirectoryError

__all__ = ["SCHEMA_VERSION", "V0_SCHEMA", "migrate"]

# What the first release made; it runs on every opening (idempotent) before the migrations.
V0_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    email TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL, role TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS departments (name TEXT PRIMARY KEY, parent TEXT);
"""

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (  # 0 -> 1
        "ALTER TABLE users ADD COLUMN rank TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE users ADD COLUMN manager TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE user_groups (grp TEXT NOT NULL, email TEXT NOT NULL,"
        " PRIMARY KEY (grp, email))",
        "CREATE TABLE directory_reports (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
        " source TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL)",
    ),
)
SCHEMA_VERSION = len(_MIGRATIONS)


def migrate(db: sqlite3.Connection, where: str) -> int:
    """Bring the (autocommit) connection's database to SCHEMA_VERSION; the version it had."""
    (seen,) = db.execute("PRAGMA user_version").fetchone()
    if seen == SCHEMA_VERSION:
        return int(seen)  # the usual opening: no write lock taken
    db.execute("BEGIN IMMEDIATE")  # two processes opening an old file: one migrates
    try:
        (found,) = db.execute("PRAGMA user_version").fetchone()
        if found > SCHEMA_VERSION:
            raise DirectoryError(
                f"{where}: directory schema version {found} is newer than this release's "
                f"{SCHEMA_VERSION}; run the release that wrote it"
            )
        for steps in _MIGRATIONS[found:]:
            for statement in steps:
                db.execute(statement)
        db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
    return int(found)
