"""The directory database's schema, versioned (protocol.sqlite's mechanism): ``PRAGMA
user_version`` says which migrations a file has had, and opening it runs the missing ones
forward, in place, in one transaction, after a copy of the file.

Version 0 is the schema every release before the version existed made (people and
departments). The file is shared: the web listener's accounts and API tokens live in it too,
so every store opening it gives :data:`VERSIONS`, and each migration makes what it changes
when absent (any of the three stores may have made the file). A file from a *newer* release is
refused rather than half-understood.

=========  =================================================================================
version    what it adds
=========  =================================================================================
1          people's job rank (직급), manager, disabled flag and source; named groups;
           the stored sync/import reports
2          the accounts' columns added since the table was first made (second factor, console
           role, console-only, disabled, created); before, added at every opening
=========  =================================================================================
"""

from __future__ import annotations

import sqlite3

from protocol.sqlite import StoreVersions

__all__ = ["ACCOUNTS_V0_SCHEMA", "SCHEMA_VERSION", "V0_SCHEMA", "VERSIONS"]

# What the first release made; it runs on every opening (idempotent) before the migrations.
V0_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    email TEXT PRIMARY KEY, name TEXT NOT NULL, department TEXT NOT NULL, role TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS departments (name TEXT PRIMARY KEY, parent TEXT);
"""

# The accounts table as it was first made; its later columns are migration 2's.
ACCOUNTS_V0_SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (email TEXT PRIMARY KEY, hash TEXT NOT NULL, totp TEXT);
"""
# Columns added to the accounts since the table was first made.
_ACCOUNT_COLUMNS = {
    "totp": "TEXT",  # a base32 TOTP secret, or NULL: no second factor
    "role": "TEXT NOT NULL DEFAULT ''",  # a console role, or '' (none)
    "console_only": "INTEGER NOT NULL DEFAULT 0",  # 1: works without a directory entry
    "disabled": "INTEGER NOT NULL DEFAULT 0",
    "created": "REAL NOT NULL DEFAULT 0",  # 0: made before it was recorded
}


def _add_people_details(db: sqlite3.Connection) -> None:
    """1: rank, manager, disabled; groups; the stored reports."""
    _run(db, V0_SCHEMA)  # the file may have been made by the accounts' or the tokens' store
    for statement in (
        "ALTER TABLE users ADD COLUMN rank TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE users ADD COLUMN manager TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0",
        "CREATE TABLE user_groups (grp TEXT NOT NULL, email TEXT NOT NULL,"
        " PRIMARY KEY (grp, email))",
        "CREATE TABLE directory_reports (id INTEGER PRIMARY KEY, at REAL NOT NULL,"
        " source TEXT NOT NULL, summary TEXT NOT NULL, details TEXT NOT NULL)",
    ):
        db.execute(statement)


def _add_account_columns(db: sqlite3.Connection) -> None:
    """2: the accounts' later columns (a file of any earlier release may lack some)."""
    _run(db, ACCOUNTS_V0_SCHEMA)
    present = {row[1] for row in db.execute("PRAGMA table_info(accounts)")}
    for column, kind in _ACCOUNT_COLUMNS.items():
        if column not in present:
            db.execute(f"ALTER TABLE accounts ADD COLUMN {column} {kind}")


def _run(db: sqlite3.Connection, script: str) -> None:
    """A schema script statement by statement: ``executescript`` would commit the migration's
    transaction half-way."""
    for statement in script.split(";"):
        if statement.strip():
            db.execute(statement)


VERSIONS = StoreVersions("directory", (_add_people_details, _add_account_columns))
SCHEMA_VERSION = VERSIONS.version
