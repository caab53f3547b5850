"""agentkit.backup: a consistent copy while the state changes, and a restore that checks it."""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from agentkit.backup import (
    MANIFEST,
    BackupError,
    BackupPlan,
    StateItem,
    move_aside,
    restore_backup,
    take_backup,
)
from protocol.sqlite import Synchronous, open_wal_database


def _open(path: Path) -> sqlite3.Connection:
    return open_wal_database(
        path, "CREATE TABLE IF NOT EXISTS t (n INTEGER)", synchronous=Synchronous.NORMAL
    )


def _plan(root: Path, *, keys: bool = True) -> BackupPlan:
    return BackupPlan(
        "outer",
        root / "outer.toml",
        (StateItem("spool", root / "spool"), StateItem("audit", root / "spool" / "audit.db")),
        (StateItem("keys", root / "keys"),) if keys else (),
    )


@pytest.fixture
def state(tmp_path: Path) -> Path:
    root = tmp_path / "agent"
    for folder in ("spool/received", "spool/rendered", "keys"):
        (root / folder).mkdir(parents=True)
    for n in range(20):
        (root / "spool/received" / f"m{n:02d}.eml").write_bytes(f"mail {n}\n".encode() * 50)
    (root / "keys/outer.key").write_bytes(b"secret key")
    db = _open(root / "spool" / "state.db")
    db.execute("INSERT INTO t VALUES (1)")
    db.close()
    return root


def _restored_names(folder: Path) -> set[str]:
    return {p.name for p in folder.rglob("*") if p.is_file()}


def test_files_moving_on_during_the_backup_are_found_under_their_new_names(
    state: Path, tmp_path: Path
) -> None:
    """A mail that moves received -> rendered while the walk runs is still copied: the walk
    sees received/ first, and a file that left it is met again in rendered/ by a later walk."""
    moved = threading.Event()
    received, rendered = state / "spool/received", state / "spool/rendered"
    real_open = open

    def open_and_move(path: object, *args: object, **kwargs: object) -> object:
        if not moved.is_set() and str(path).endswith("m00.eml"):  # the first copy: move all
            moved.set()
            for mail in sorted(received.iterdir()):
                os.rename(mail, rendered / mail.name)
        return real_open(path, *args, **kwargs)  # type: ignore[call-overload]

    import builtins

    builtins.open = open_and_move  # type: ignore[assignment]
    try:
        report = take_backup(_plan(state), tmp_path / "b")
    finally:
        builtins.open = real_open
    assert moved.is_set()
    copied = _restored_names(tmp_path / "b" / "spool")
    assert {f"m{n:02d}.eml" for n in range(20)} <= copied
    assert report.passes >= 2


def test_a_database_written_meanwhile_is_copied_as_a_consistent_snapshot(
    state: Path, tmp_path: Path
) -> None:
    stop = threading.Event()

    def write() -> None:
        db = _open(state / "spool" / "state.db")
        n = 2
        while not stop.is_set():
            db.execute("INSERT INTO t VALUES (?)", (n,))  # autocommit: one commit each
            n += 1
        db.close()

    writer = threading.Thread(target=write)
    writer.start()
    try:
        report = take_backup(_plan(state), tmp_path / "b")
    finally:
        stop.set()
        writer.join()
    assert report.databases == 1
    copy = sqlite3.connect(tmp_path / "b" / "spool" / "state.db")
    assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = [n for (n,) in copy.execute("SELECT n FROM t ORDER BY n")]
    assert rows == list(range(1, len(rows) + 1))  # a prefix of the writes, nothing torn


def test_keys_only_on_request_and_a_restore_puts_everything_back(
    state: Path, tmp_path: Path
) -> None:
    take_backup(_plan(state), tmp_path / "b")
    manifest = json.loads((tmp_path / "b" / MANIFEST).read_text())
    assert all(entry["item"] != "keys" for entry in manifest["entries"])
    assert not (tmp_path / "b" / "keys").exists()

    fresh = tmp_path / "fresh"
    restore_backup(_plan(fresh, keys=False), tmp_path / "b")
    assert _restored_names(fresh / "spool") == _restored_names(state / "spool") - {
        "state.db-wal",
        "state.db-shm",
    }
    assert (fresh / "spool/received/m07.eml").read_bytes() == (
        state / "spool/received/m07.eml"
    ).read_bytes()


def test_restore_refuses_occupied_state_changed_files_and_unfinished_backups(
    state: Path, tmp_path: Path
) -> None:
    take_backup(_plan(state), tmp_path / "b")
    with pytest.raises(BackupError, match="not empty"):
        restore_backup(_plan(state), tmp_path / "b")

    fresh = tmp_path / "fresh"
    (tmp_path / "b/spool/received/m03.eml").write_bytes(b"changed")
    with pytest.raises(BackupError, match="SHA-256 differs"):
        restore_backup(_plan(fresh), tmp_path / "b")
    assert not (fresh / "spool").exists()  # nothing half-restored

    (tmp_path / "b" / MANIFEST).unlink()
    with pytest.raises(BackupError, match="did not finish"):
        restore_backup(_plan(fresh), tmp_path / "b")


def test_a_manifest_cannot_make_restore_read_outside_the_backup(
    state: Path, tmp_path: Path
) -> None:
    take_backup(_plan(state), tmp_path / "b")
    path = tmp_path / "b" / MANIFEST
    manifest = json.loads(path.read_text())
    manifest["entries"][0]["stored"] = "../../etc/shadow"
    path.write_text(json.dumps(manifest))
    with pytest.raises(BackupError, match="outside the backup folder"):
        restore_backup(_plan(tmp_path / "fresh"), tmp_path / "b")


def test_backup_refuses_a_folder_that_is_not_empty_and_a_restore_of_the_other_agent(
    state: Path, tmp_path: Path
) -> None:
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "x").write_text("x")
    with pytest.raises(BackupError, match="not empty"):
        take_backup(_plan(state), tmp_path / "b")
    take_backup(_plan(state), tmp_path / "c")
    inner = BackupPlan("inner", state / "inner.toml", (StateItem("state", tmp_path / "n"),))
    with pytest.raises(BackupError, match="outer agent, not inner"):
        restore_backup(inner, tmp_path / "c")


def test_move_aside_keeps_the_old_state_and_leaves_an_empty_folder(state: Path) -> None:
    aside = move_aside(StateItem("spool", state / "spool"), "T1")
    assert aside == state / "spool.before-restore-T1"
    assert (aside / "received/m00.eml").is_file()
    assert (state / "spool").is_dir()
    assert not any((state / "spool").iterdir())
