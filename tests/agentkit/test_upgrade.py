"""The agents' start-up upgrade (agentkit.upgrade): older files migrated with a copy first,
each upgrade recorded in the audit log as ``state_migrated``."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from agentkit.audit import VERSIONS as AUDIT_VERSIONS
from agentkit.audit import AuditLog
from agentkit.upgrade import (
    StateDatabase,
    audit_database,
    link_databases,
    record_upgrades,
    upgrade_state,
)
from protocol.errors import NewerStateError
from protocol.sqlite import StoreVersions, schema_version


def _as_before_versions(path: Path) -> None:
    """What a release before the versions left: user_version 0."""
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 0")
    db.commit()
    db.close()


def _old_audit(path: Path) -> None:
    log = AuditLog(path, agent="inner")
    log.record("m1", "received", bytes=10)
    log.close()
    _as_before_versions(path)


def test_an_older_audit_log_is_upgraded_and_the_upgrade_audited(tmp_path):
    path = tmp_path / "audit.db"
    _old_audit(path)
    migrated = upgrade_state([audit_database(path)])
    assert [(m.store, m.from_version, m.to_version) for m in migrated] == [("audit", 0, 1)]
    assert schema_version(sqlite3.connect(migrated[0].backup)) == 0
    log = AuditLog(path, agent="inner")
    record_upgrades(log, migrated)
    (event,) = log.query(step="state_migrated")
    assert event.mail_id == "-"
    assert event.details == {"store": "audit", "from": 0, "to": 1, "file": str(path),
                             "backup": str(migrated[0].backup)}  # fmt: skip
    assert log.verify().problem is None
    log.close()
    assert upgrade_state([audit_database(path)]) == []  # once only


def test_link_databases_are_found_per_stream(tmp_path):
    versions = StoreVersions("link sender", (lambda db: None,))
    for name in ("sender-inbound.db", "sender-outbound.db", "other.db"):
        db = sqlite3.connect(tmp_path / name)
        db.execute("CREATE TABLE t (x)")
        db.close()
    found = upgrade_state([StateDatabase(tmp_path, "sender-*.db", versions)])
    assert sorted(m.path.name for m in found) == ["sender-inbound.db", "sender-outbound.db"]
    assert {d.pattern for d in link_databases(tmp_path)} == {"sender-*.db", "receiver-*.db"}


def test_a_newer_file_stops_the_upgrade(tmp_path):
    path = tmp_path / "audit.db"
    _old_audit(path)
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 7")
    db.commit()
    db.close()
    with pytest.raises(NewerStateError, match="audit.db: audit schema version 7"):
        upgrade_state([audit_database(path)])


def test_nothing_to_do_records_nothing(tmp_path):
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    record_upgrades(log, upgrade_state([audit_database(tmp_path / "audit.db")]))
    assert log.query(step="state_migrated") == []
    log.close()


def test_a_newer_file_anywhere_stops_the_upgrade_before_any_file_changes(tmp_path):
    """D109: the audit log listed first was migrated (copy, version 1) before the newer file
    after it was refused; every file's version is now read first."""
    audit_path = tmp_path / "audit.db"
    _old_audit(audit_path)
    newer = tmp_path / "sender-inbound.db"
    db = sqlite3.connect(newer)
    db.execute("CREATE TABLE t (x)")
    db.execute("PRAGMA user_version = 9")
    db.commit()
    db.close()
    with pytest.raises(NewerStateError, match="sender-inbound.db: link sender schema version 9"):
        upgrade_state([audit_database(audit_path), *link_databases(tmp_path)])
    assert _version(audit_path) == 0
    assert not list(tmp_path.glob("audit.db.v0-*.bak"))
    from agentkit.upgrade import Found, check_state  # new with D109

    with pytest.raises(NewerStateError):
        check_state([audit_database(audit_path), *link_databases(tmp_path)])
    newer.unlink()
    assert check_state([audit_database(audit_path)]) == [
        Found("audit", audit_path, 0, AUDIT_VERSIONS.version)
    ]


def _version(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return schema_version(db)
    finally:
        db.close()
