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
