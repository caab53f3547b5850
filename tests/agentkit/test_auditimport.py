"""Another agent's audit events taken into this agent's audit log: idempotent and checked."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from agentkit.audit import AuditLog, ImportedEvent

NOW = 1_800_000_000.0


def log_at(tmp_path: Path) -> AuditLog:
    return AuditLog(tmp_path / "audit.db", agent="inner", clock=lambda: NOW)


def event(source_id: Any, ts: Any = NOW - 60, mail_id: Any = "m1", step: Any = "received",
          details: Any = None) -> ImportedEvent:  # fmt: skip
    return ImportedEvent(
        source_id, ts, mail_id, step, {"bytes": 10} if details is None else details
    )


def test_an_import_is_idempotent_per_agent_and_source_id(tmp_path: Path) -> None:
    log = log_at(tmp_path)
    first = log.import_events("outer", [event(1), event(2, step="rendered"), event(1)])
    assert (first.added, first.already, first.refused) == (2, 1, ())
    again = log.import_events("outer", [event(2, step="rendered"), event(3, step="published")])
    assert (again.added, again.already) == (1, 1)
    assert [(e.agent, e.step) for e in log.query()] == [
        ("outer", "received"), ("outer", "rendered"), ("outer", "published")]  # fmt: skip
    assert log.last_imported("outer") == 3
    assert log.last_imported("dmz") == 0
    other = log.import_events("dmz", [event(1)])  # the key is the agent and the source id
    assert other.added == 1


def test_imported_events_join_the_local_ones_of_the_same_mail(tmp_path: Path) -> None:
    from zoneinfo import ZoneInfo

    from agentkit.mailindex import MailIndex, MailQuery

    log = log_at(tmp_path)
    log.record("m1", "received_inside", subject="안녕", mail_from="a@b.example")
    log.record("m1", "injected", part=1)
    log.import_events("outer", [event(7, details={"bytes": 4242, "client": "192.0.2.9"})])
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    (item,) = index.search(MailQuery(), ZoneInfo("Asia/Seoul"))["items"]
    assert (item["agents"], item["size"], item["client"]) == (["inner", "outer"], 4242, "192.0.2.9")
    assert item["time"].startswith("2027-01-15T16:59:00")  # the outer agent's intake comes first


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (event("7"), "source id is not an integer"),
        (event(True), "source id is not an integer"),
        (event(0), "out of range"),
        (event(1 << 63), "out of range"),
        (event(1, ts="now"), "time is not a number"),
        (event(1, ts=math.nan), "time is not a number"),
        (event(1, ts=-5.0), "before 1970"),
        (event(1, ts=NOW + 2 * 86400), "a day ahead"),
        (event(1, mail_id=""), "mail id is not a string"),
        (event(1, mail_id="x" * 129), "mail id is not a string"),
        (event(1, mail_id="m1\r\nX"), "control characters"),
        (event(1, step="teleported"), "unknown step"),
        (event(1, details=["not", "an", "object"]), "details are not a JSON object"),
        (event(1, details={"blob": b"\x00"}), "details are not a JSON object"),
        (event(1, details={"nan": math.inf}), "details are not a JSON object"),
        (event(1, details={1: "int key"}), "details are not a JSON object"),
        (event(1, details={"x": "y" * 9000}), "details are not a JSON object"),
    ],
)
def test_a_bad_event_is_refused_alone_with_its_reason(
    tmp_path: Path, bad: ImportedEvent, why: str
) -> None:
    log = log_at(tmp_path)
    result = log.import_events("outer", [bad, event(99)])
    assert result.added == 1
    (refused,) = result.refused
    assert why in refused.reason
    assert [e.step for e in log.query()] == ["received"]


def test_the_agent_name_is_checked(tmp_path: Path) -> None:
    log = log_at(tmp_path)
    for bad in ("", "Outer", "outer agent", "x" * 17, "inner"):  # inner: this log's own
        with pytest.raises(ValueError, match="agent|own"):
            log.import_events(bad, [event(1)])
    assert log.query() == []


def test_events_after_gives_what_a_report_carries(tmp_path: Path) -> None:
    log = log_at(tmp_path)
    for n in range(5):
        log.record(f"m{n}", "received")
    after = log.events_after(2, limit=2)
    assert [(i, e.mail_id) for i, e in after] == [(3, "m2"), (4, "m3")]
    copy = AuditLog(tmp_path / "inner.db", agent="inner", clock=lambda: NOW)
    result = copy.import_events("outer", [ImportedEvent(i, e.ts, e.mail_id, e.step, e.details)
                                          for i, e in log.events_after(0, 100)])  # fmt: skip
    assert result.added == 5
