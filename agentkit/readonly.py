"""Read an agent's SQLite state from another process without disturbing the agent.

Opened read-only, so looking never creates the file (the agent would then find an empty one)
and never takes a write lock; a database or table the agent has not created yet reads as no
rows, so tools can look before, during and after the agent runs.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from protocol.sqlite import open_read_only_database

__all__ = ["query_read_only"]


def query_read_only(path: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """The rows of ``sql`` on the database at ``path``; [] while it or its tables do not exist."""
    if not path.exists():
        return []
    db = open_read_only_database(path)
    try:
        return db.execute(sql, params).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return []
        raise
    finally:
        db.close()
