"""protocol.sqlite: the one opener of our databases, and the read-only one for other processes."""

from __future__ import annotations

import os
import sqlite3
import stat
import time
from pathlib import Path
from typing import Any

import pytest

from protocol.errors import LocalError
from protocol.sqlite import (
    BUSY_TIMEOUT_S,
    Synchronous,
    fsync_wal,
    open_read_only_database,
    open_wal_database,
)

SCHEMA = "CREATE TABLE IF NOT EXISTS t (k INTEGER PRIMARY KEY, v TEXT);"
SYNCHRONOUS_LEVEL = {"NORMAL": 1, "FULL": 2}  # what PRAGMA synchronous answers


def pragma(db: sqlite3.Connection, name: str) -> Any:
    return db.execute(f"PRAGMA {name}").fetchone()[0]


@pytest.mark.parametrize("level", list(Synchronous))
def test_wal_the_named_synchronous_level_and_the_schema(tmp_path: Path, level: Synchronous) -> None:
    db = open_wal_database(tmp_path / "s.db", SCHEMA, synchronous=level)
    try:
        assert pragma(db, "journal_mode") == "wal"
        assert pragma(db, "synchronous") == SYNCHRONOUS_LEVEL[level.value]
        assert pragma(db, "busy_timeout") == int(BUSY_TIMEOUT_S * 1000)
        db.execute("INSERT INTO t (v) VALUES ('x')")  # autocommit: no transaction left open
        assert not db.in_transaction
    finally:
        db.close()
    again = open_wal_database(tmp_path / "s.db", SCHEMA, synchronous=level)  # schema idempotent
    assert again.execute("SELECT v FROM t").fetchall() == [("x",)]
    again.close()


def test_the_folder_is_created_private(tmp_path: Path) -> None:
    db = open_wal_database(tmp_path / "new" / "s.db", SCHEMA, synchronous=Synchronous.FULL)
    db.close()
    assert stat.S_IMODE((tmp_path / "new").stat().st_mode) == 0o700


def test_a_database_that_cannot_use_wal_is_refused_by_name() -> None:
    with pytest.raises(LocalError, match=r":memory:.*WAL"):
        open_wal_database(Path(":memory:"), SCHEMA, synchronous=Synchronous.FULL)


def test_a_bad_schema_closes_the_connection_and_raises(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        open_wal_database(tmp_path / "s.db", "CREATE TABLE (", synchronous=Synchronous.FULL)


def test_the_busy_timeout_waits_then_reports(tmp_path: Path) -> None:
    holder = open_wal_database(tmp_path / "s.db", SCHEMA, synchronous=Synchronous.FULL)
    holder.execute("BEGIN IMMEDIATE")
    waiter = open_wal_database(
        tmp_path / "s.db", SCHEMA, synchronous=Synchronous.FULL, busy_timeout_s=0.3
    )
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        waiter.execute("BEGIN IMMEDIATE")
    assert time.monotonic() - started >= 0.25
    holder.execute("ROLLBACK")
    waiter.execute("BEGIN IMMEDIATE")
    waiter.execute("COMMIT")
    holder.close()
    waiter.close()


# ------------------------------------------------------------------------------ read only


def test_read_only_never_creates_a_missing_database(tmp_path: Path) -> None:
    with pytest.raises(sqlite3.OperationalError):
        open_read_only_database(tmp_path / "absent.db").execute("SELECT 1").fetchall()
    assert list(tmp_path.iterdir()) == []


def test_read_only_reads_a_live_database_and_cannot_write(tmp_path: Path) -> None:
    writer = open_wal_database(tmp_path / "s.db", SCHEMA, synchronous=Synchronous.FULL)
    writer.execute("INSERT INTO t (v) VALUES ('seen')")
    reader = open_read_only_database(tmp_path / "s.db")
    try:
        assert reader.execute("SELECT v FROM t").fetchall() == [("seen",)]
        with pytest.raises(sqlite3.OperationalError, match="readonly"):
            reader.execute("INSERT INTO t (v) VALUES ('no')")
    finally:
        reader.close()
        writer.close()


@pytest.mark.parametrize("folder", ["with space", "what?", "hash#tag", "per%cent"])
def test_read_only_opens_paths_with_uri_characters(tmp_path: Path, folder: str) -> None:
    """The old opener pasted the path into a URI: '?' or '#' in a folder name cut it short."""
    path = tmp_path / folder / "s.db"
    writer = open_wal_database(path, SCHEMA, synchronous=Synchronous.FULL)
    writer.execute("INSERT INTO t (v) VALUES ('here')")
    reader = open_read_only_database(path)
    try:
        assert reader.execute("SELECT v FROM t").fetchall() == [("here",)]
    finally:
        reader.close()
        writer.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder]  # nothing created beside


def test_fsync_wal_syncs_the_write_ahead_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = open_wal_database(tmp_path / "s.db", SCHEMA, synchronous=Synchronous.NORMAL)
    db.execute("INSERT INTO t (v) VALUES ('x')")
    synced: list[str] = []
    real = os.fsync

    def spy(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fsync", spy)
    fsync_wal(tmp_path / "s.db")
    assert synced == [str(tmp_path / "s.db-wal")]
    db.close()
