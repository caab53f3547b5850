"""The audit log's hash chain (issue 21.1): untouched it holds; one row changed, deleted or
inserted with sqlite3 breaks it, and verification names that event."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from agentkit.auditimport import ImportedEvent

Tamper = Callable[[sqlite3.Connection], None]


def filled(path: Path, agent: str) -> AuditLog:
    """A log of both kinds of writer: this agent's events, one by one and in a batch, and
    (inside) the other agent's imported events, through two connections as two processes."""
    log = AuditLog(path, agent=agent)
    for n in range(4):
        log.record(f"m{n}", "received", n=n, subject="견적서")
    log.record_many([("m4", "rendered", {}), ("m4", "published", {"seq": 7})])
    other = AuditLog(path, agent=agent)  # the web process or a command, in the same file
    other.record("-", "access", account="auditor@bank.example", action="signed_in")
    other.close()
    if agent == "inner":
        sent = [ImportedEvent(10 + n, 1_700_000_000.0 + n, f"o{n}", "received", {"n": n})
                for n in range(3)]  # fmt: skip
        assert log.import_events("outer", sent).added == 3
    log.record("m5", "quarantined", reason="bad-signature")
    return log


@pytest.mark.parametrize("agent", ["outer", "inner"])
def test_an_untouched_log_verifies(tmp_path: Path, agent: str) -> None:
    log = filled(tmp_path / "audit.db", agent)
    report = log.verify()
    assert report.ok, report.describe()
    assert report.checked == log.last_id() == (11 if agent == "inner" else 8)
    assert "holds: " in report.describe()


TAMPERING: dict[str, tuple[Tamper, int, str]] = {
    "a detail changed": (
        lambda db: db.execute("UPDATE events SET details = '{}' WHERE id = 3"), 3, "changed"),
    "a time changed": (
        lambda db: db.execute("UPDATE events SET ts = ts - 3600 WHERE id = 5"), 5, "changed"),
    "a step changed": (
        lambda db: db.execute("UPDATE events SET step = 'delivered' WHERE id = 2"), 2, "changed"),
    "a link rewritten": (
        lambda db: db.execute("UPDATE events SET link = zeroblob(32) WHERE id = 4"), 4, "changed"),
    "a middle event deleted": (
        lambda db: db.execute("DELETE FROM events WHERE id = 4"), 4, "removed"),
    "the first event deleted": (
        lambda db: db.execute("DELETE FROM events WHERE id = 1"), 1, "removed"),
    "the newest event deleted": (
        lambda db: db.execute("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)"),
        -1, "removed"),
    "an event appended": (
        lambda db: db.execute("INSERT INTO events (ts, agent, mail_id, step, details, link) "
                              "VALUES (1, 'inner', 'x', 'delivered', '{}', zeroblob(32))"),
        0, "inserted"),
    "an unlinked event appended": (
        lambda db: db.execute("INSERT INTO events (ts, agent, mail_id, step, details) "
                              "VALUES (1, 'inner', 'x', 'delivered', '{}')"),
        0, "inserted"),
    "an event put before the first": (
        lambda db: db.execute("INSERT INTO events (id, ts, agent, mail_id, step, details) "
                              "VALUES (0, 1, 'inner', 'x', 'delivered', '{}')"),
        -2, "inserted before"),
}  # fmt: skip


@pytest.mark.parametrize("agent", ["outer", "inner"])
@pytest.mark.parametrize("how", list(TAMPERING))
def test_one_row_changed_deleted_or_inserted_is_named(tmp_path: Path, agent: str, how: str) -> None:
    tamper, event_id, word = TAMPERING[how]
    log = filled(tmp_path / "audit.db", agent)
    newest = log.last_id()
    log.close()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        tamper(db)
    report = AuditLog(tmp_path / "audit.db").verify()
    assert not report.ok
    expected = {-1: newest, 0: newest + 1, -2: 0}.get(event_id, event_id)
    assert report.event_id == expected, report.describe()
    assert word in (report.problem or "")
    assert f"event {expected}: " in report.describe()


def test_the_head_record_changed_is_named(tmp_path: Path) -> None:
    filled(tmp_path / "audit.db", "outer").close()
    with sqlite3.connect(tmp_path / "audit.db") as db:
        db.execute("UPDATE chain SET link = zeroblob(32) WHERE name = 'head'")
    report = AuditLog(tmp_path / "audit.db").verify()
    assert report.problem == "the chain's head record was changed"


def test_a_log_of_an_earlier_version_gets_a_chain_after_its_events(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    with sqlite3.connect(path) as db:  # the schema before the chain
        db.executescript(
            "CREATE TABLE events (id INTEGER PRIMARY KEY, ts REAL NOT NULL, agent TEXT NOT NULL,"
            " mail_id TEXT NOT NULL, step TEXT NOT NULL, details TEXT NOT NULL);"
            "INSERT INTO events (ts, agent, mail_id, step, details) VALUES"
            " (1, 'outer', 'old1', 'received', '{}'), (2, 'outer', 'old2', 'received', '{}');"
        )
    log = AuditLog(path, agent="outer")
    log.record("new", "received")
    report = log.verify()
    assert (report.ok, report.checked, report.legacy) == (True, 1, 2)
    assert "2 from before the chain began" in report.describe()
    log.close()
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM events WHERE mail_id = 'old1'")
    report = AuditLog(path).verify()
    assert report.problem == "1 event(s) from before the chain began removed"
