"""The audit log records, queries and exports events."""

from __future__ import annotations

import csv
import io
import json
from itertools import count
from pathlib import Path

import pytest

from maildiode.audit import AuditLog, export


def make_log(tmp_path: Path) -> AuditLog:
    ticks = count(1_700_000_000)
    return AuditLog(tmp_path / "audit.db", agent="outer", clock=lambda: float(next(ticks)))


def test_events_are_queryable_by_mail_step_and_time(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "received", client="203.0.113.5", size=1200)
    log.record("m2", "received", client="198.51.100.7", size=300)
    log.record("m1", "rendered", pages=2, ms=180)
    log.record("m1", "published", seq=7)
    assert [e.step for e in log.query(mail_id="m1")] == ["received", "rendered", "published"]
    assert [e.mail_id for e in log.query(step="received")] == ["m1", "m2"]
    assert [e.step for e in log.query(since=1_700_000_002, until=1_700_000_003)] == ["rendered"]
    assert log.query(mail_id="m1")[0].details == {"client": "203.0.113.5", "size": 1200}


def test_events_survive_reopening(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "quarantined", reason="bad-signature")
    log.close()
    again = AuditLog(tmp_path / "audit.db")
    assert [(e.agent, e.step, e.details["reason"]) for e in again.query()] == [
        ("outer", "quarantined", "bad-signature")
    ]


def test_unknown_step_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown audit step"):
        make_log(tmp_path).record("m1", "teleported")


def test_export_jsonl_and_csv(tmp_path: Path) -> None:
    log = make_log(tmp_path)
    log.record("m1", "held", rule="rrn-approval", findings="800101-1******")
    lines = "".join(export(log.query(), "jsonl")).splitlines()
    row = json.loads(lines[0])
    assert row["mail_id"] == "m1"
    assert row["rule"] == "rrn-approval"
    assert row["time"].endswith("Z")
    table = list(csv.reader(io.StringIO("".join(export(log.query(), "csv")))))
    assert table[0] == ["time", "agent", "mail_id", "step", "details"]
    assert table[1][2:4] == ["m1", "held"]
