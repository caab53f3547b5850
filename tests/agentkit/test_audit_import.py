"""The audit log's side of the status report: events after an id, and idempotent import."""

from __future__ import annotations

from pathlib import Path

from agentkit.audit import AuditEvent, AuditLog


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


def test_imported_events_are_stored_once_under_their_agent(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    log.record("local", "received_inside")
    outer = [(7, AuditEvent(1767225600.0, "outer", "m1", "received", {"bytes": 10})),
             (8, AuditEvent(1767225601.0, "outer", "m1", "published", {"seq": 3}))]  # fmt: skip
    assert log.import_events(outer) == 2
    assert log.import_events(outer) == 0  # the same report again (a crash before its cursor)
    assert log.import_events([outer[1], (9, outer[0][1])]) == 1  # overlapping: only 9 is new
    events = log.query(mail_id="m1")
    assert [(e.agent, e.step, e.ts) for e in events] == [
        ("outer", "received", 1767225600.0), ("outer", "received", 1767225600.0),
        ("outer", "published", 1767225601.0),
    ]  # fmt: skip
    assert log.query(mail_id="local")[0].agent == "inner"
    # the same source id from another agent is another event
    assert log.import_events([(7, AuditEvent(1.0, "other", "m9", "received", {}))]) == 1


def test_import_survives_a_reopen(tmp_path: Path) -> None:
    event = AuditEvent(5.0, "outer", "m1", "received", {})
    log = AuditLog(tmp_path / "audit.db")
    assert log.import_events([(1, event)]) == 1
    log.close()
    log = AuditLog(tmp_path / "audit.db")
    assert log.import_events([(1, event), (2, event)]) == 1
    assert len(log.query()) == 2


def test_a_failing_import_stores_nothing(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db")

    class Unstorable:
        def __str__(self) -> str:
            raise RuntimeError("cannot write this")

    good = AuditEvent(5.0, "outer", "m1", "received", {})
    bad = AuditEvent(6.0, "outer", "m2", "received", {"x": Unstorable()})
    try:
        log.import_events([(1, good), (2, bad)])
    except RuntimeError:
        pass
    assert log.query() == []
    assert log.import_events([(1, good)]) == 1  # the marker of 1 was rolled back too
