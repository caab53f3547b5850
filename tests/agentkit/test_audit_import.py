"""The audit log's side of the status report: events after an id (what the outer agent sends),
and the import of those events on the inner side (idempotent, see also test_auditimport.py)."""

from __future__ import annotations

from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.auditimport import ImportedEvent


def test_events_after_an_id_in_order_with_their_ids(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="outer")
    for n in range(5):
        log.record(f"m{n}", "received", n=n)
    rows = log.events_after(2, limit=2)
    assert [(i, e.mail_id, e.details) for i, e in rows] == [
        (3, "m2", {"n": 2}),
        (4, "m3", {"n": 3}),
    ]
    assert log.events_after(5, limit=10) == []
    assert log.last_id() == 5


def test_what_one_side_sends_the_other_stores_once(tmp_path: Path) -> None:
    outer = AuditLog(tmp_path / "outer.db", agent="outer")
    outer.record("m1", "received", bytes=10)
    outer.record("m1", "published", seq=3)
    inner = AuditLog(tmp_path / "inner.db", agent="inner")
    inner.record("local", "received_inside")
    sent = [ImportedEvent(i, e.ts, e.mail_id, e.step, e.details)
            for i, e in outer.events_after(0, limit=10)]  # fmt: skip
    assert inner.import_events("outer", sent).added == 2
    assert inner.import_events("outer", sent).added == 0  # the same report again
    events = inner.query(mail_id="m1")
    assert [(e.agent, e.step) for e in events] == [("outer", "received"), ("outer", "published")]
    assert inner.query(mail_id="local")[0].agent == "inner"


def test_import_survives_a_reopen(tmp_path: Path) -> None:
    event = ImportedEvent(1, 1767225600.0, "m1", "received", {})
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    assert log.import_events("outer", [event]).added == 1
    log.close()
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    second = ImportedEvent(2, 1767225600.0, "m1", "received", {})
    assert log.import_events("outer", [event, second]).added == 1
    assert len(log.query()) == 2
