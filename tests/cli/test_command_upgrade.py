"""A command run on old state before the agent's first start (D71, D98): it upgrades the files
it opens as the start does, with the copy first, and the audit log records each upgrade as
``state_migrated`` (the old command migrated the files and recorded nothing)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agentkit.audit import AuditLog
from inner_agent.outbound.directory_schema import V0_SCHEMA
from tests.support.command import maildiode


def _as_before_versions(path: Path) -> None:
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()


def _migrations(audit_path: Path) -> list[tuple[str, int, int]]:
    log = AuditLog(audit_path, agent="inner")
    try:
        events = log.query(step="state_migrated")
        return [(e.details["store"], e.details["from"], e.details["to"]) for e in events]
    finally:
        log.close()


def test_a_directory_command_on_an_old_directory_records_its_upgrade(tmp_path: Path) -> None:
    old = sqlite3.connect(tmp_path / "dir.db")  # the first release's directory
    old.executescript(V0_SCHEMA)
    old.execute("INSERT INTO users VALUES ('kim@corp.example', 'Kim', 'Sales', 'member')")
    old.commit()
    old.close()
    config = tmp_path / "inner.toml"
    config.write_text('[outbound]\ndirectory_db = "dir.db"\n[audit]\npath = "audit.db"\n')
    listed = maildiode("directory", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert "kim@corp.example" in listed.stdout
    assert _migrations(tmp_path / "audit.db") == [("directory", 0, 2)]
    assert list(tmp_path.glob("dir.db.v0-*.bak"))  # the copy, as at the start
    again = maildiode("directory", "list", "-c", str(config))
    assert again.returncode == 0
    assert len(_migrations(tmp_path / "audit.db")) == 1  # once only


def test_an_inbound_command_on_an_old_audit_log_records_its_upgrade(tmp_path: Path) -> None:
    root = tmp_path / "site"
    assert maildiode("init", str(root)).returncode == 0
    (root / "inbound-rules.toml").write_text("version = 1\n", encoding="utf-8")
    config = root / "inner.toml"
    config.write_text(config.read_text(encoding="utf-8")
                      + '\n[inbound]\nrules_file = "inbound-rules.toml"\n', encoding="utf-8")  # fmt: skip
    audit_path = root / "inner" / "audit.db"  # where init puts it
    log = AuditLog(audit_path, agent="inner")
    log.record("m1", "received", bytes=10)
    log.close()
    _as_before_versions(audit_path)
    listed = maildiode("inbound", "list", "-c", str(config))
    assert listed.returncode == 0, listed.stderr
    assert _migrations(audit_path) == [("audit", 0, 1)]
