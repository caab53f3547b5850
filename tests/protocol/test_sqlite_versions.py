"""Versioned state (protocol.sqlite): migrations forward with a copy first, newer refused."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from protocol.errors import NewerStateError
from protocol.sqlite import (
    StoreVersions,
    Synchronous,
    open_wal_database,
    schema_version,
    upgrade_database,
)

SCHEMA = "CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, text TEXT NOT NULL);"


def _add_author(db: sqlite3.Connection) -> None:
    db.execute("ALTER TABLE notes ADD COLUMN author TEXT NOT NULL DEFAULT ''")


def _add_tags(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE tags (note INTEGER NOT NULL, tag TEXT NOT NULL)")


def _broken(db: sqlite3.Connection) -> None:
    db.execute("CREATE TABLE half_done (x)")
    raise sqlite3.OperationalError("disk I/O error")


V0 = StoreVersions("notes")
V2 = StoreVersions("notes", (_add_author, _add_tags))


def _open(path: Path, versions: StoreVersions) -> sqlite3.Connection:
    return open_wal_database(path, SCHEMA, synchronous=Synchronous.FULL, versions=versions)


def _old_file(path: Path, rows: int = 3) -> None:
    """A file as a release before the versions made it: version 0, with rows."""
    db = _open(path, V0)
    db.executemany("INSERT INTO notes (text) VALUES (?)", [(f"n{i}",) for i in range(rows)])
    db.close()


def _backups(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.bak"))


def test_a_new_file_gets_every_migration_and_no_copy(tmp_path):
    db = _open(tmp_path / "s.db", V2)
    assert schema_version(db) == 2
    db.execute("INSERT INTO notes (text, author) VALUES ('x', 'kim')")
    db.execute("INSERT INTO tags VALUES (1, 'a')")
    db.close()
    assert _backups(tmp_path) == []


def test_an_older_file_is_copied_then_migrated_in_place(tmp_path):
    path = tmp_path / "s.db"
    _old_file(path)
    db = _open(path, V2)
    assert schema_version(db) == 2
    assert db.execute("SELECT text, author FROM notes ORDER BY id").fetchall() == [
        ("n0", ""), ("n1", ""), ("n2", "")
    ]  # fmt: skip
    db.close()
    (backup,) = _backups(tmp_path)
    assert backup.name.startswith("s.db.v0-")
    assert backup.stat().st_mode & 0o777 == 0o600
    copy = sqlite3.connect(backup)
    assert schema_version(copy) == 0  # the file as the older release left it
    assert copy.execute("SELECT COUNT(*) FROM notes").fetchone() == (3,)
    assert "author" not in {row[1] for row in copy.execute("PRAGMA table_info(notes)")}
    copy.close()


def test_a_second_opening_migrates_nothing_and_copies_nothing(tmp_path):
    path = tmp_path / "s.db"
    _old_file(path)
    _open(path, V2).close()
    first = _backups(tmp_path)
    _open(path, V2).close()
    assert upgrade_database(path, V2) is None
    assert _backups(tmp_path) == first


def test_upgrade_database_reports_what_it_did(tmp_path):
    path = tmp_path / "s.db"
    _old_file(path)
    migrated = upgrade_database(path, V2)
    assert migrated is not None
    assert (migrated.store, migrated.path, migrated.from_version, migrated.to_version) == (
        "notes", path, 0, 2
    )  # fmt: skip
    assert migrated.backup.is_file()
    assert schema_version(sqlite3.connect(path)) == 2
    assert upgrade_database(tmp_path / "absent.db", V2) is None
    assert not (tmp_path / "absent.db").exists()  # never creates a file


def test_migrations_run_from_the_files_version(tmp_path):
    path = tmp_path / "s.db"
    _old_file(path)
    _open(path, StoreVersions("notes", (_add_author,))).close()  # a release in between
    migrated = upgrade_database(path, V2)
    assert migrated is not None
    assert migrated.from_version == 1  # _add_author not run twice


def test_a_failing_migration_leaves_the_file_as_it_was(tmp_path):
    path = tmp_path / "s.db"
    _old_file(path)
    with pytest.raises(sqlite3.OperationalError, match="disk I/O"):
        _open(path, StoreVersions("notes", (_add_author, _broken)))
    db = sqlite3.connect(path)
    assert schema_version(db) == 0
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "half_done" not in tables
    assert "author" not in {row[1] for row in db.execute("PRAGMA table_info(notes)")}
    db.close()
    assert len(_backups(tmp_path)) == 1  # the copy stays


def test_a_file_of_a_newer_release_is_refused_untouched(tmp_path):
    path = tmp_path / "s.db"
    _open(path, V2).close()
    before = path.read_bytes()
    with pytest.raises(NewerStateError) as refused:
        _open(path, StoreVersions("notes", (_add_author,)))
    line = str(refused.value)
    assert "\n" not in line
    assert str(path) in line
    assert "schema version 2 is newer than this release's 1" in line
    with pytest.raises(NewerStateError):
        upgrade_database(path, V0)
    assert path.read_bytes() == before
    assert _backups(tmp_path) == []


def test_a_copy_cut_short_is_no_backup_and_nothing_is_migrated(tmp_path, monkeypatch):
    path = tmp_path / "s.db"
    _old_file(path)

    def disk_full(source: Path, target: Path) -> None:
        target.write_bytes(b"SQLite format 3\x00 and then the disk was full")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("protocol.sqlite.copy_database", disk_full)
    with pytest.raises(OSError, match="No space left"):
        upgrade_database(path, V2)
    assert _backups(tmp_path) == []
    assert schema_version(sqlite3.connect(path)) == 0
    monkeypatch.undo()
    migrated = upgrade_database(path, V2)  # the agent's next attempt
    assert migrated is not None
    assert migrated.backup in _backups(tmp_path)
    assert not list(tmp_path.glob("*.part"))
