"""SQLite helpers shared by the sender and receiver state."""

from __future__ import annotations

import sqlite3
from pathlib import Path

__all__ = ["open_state_db"]

BUSY_TIMEOUT_S = 30.0  # another process (e.g. `maildiode resend`) may hold the write lock briefly


def open_state_db(path: Path, schema: str) -> sqlite3.Connection:
    """WAL mode; callers choose synchronous per transaction (FULL where loss would matter)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    db = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.executescript(schema)
    return db


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
