"""Statistics from the audit log: per period, per group, distinct mails per step."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from agentkit.audit import STEPS, AuditEvent, AuditLog
from agentkit.stats import STEP_ORDER, tally
from maildiode.commands.check import load_agent_config
from tests.support.command import maildiode


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


def inbound(mail: str, when: str, sender: str, rcpts: list[str], *, parts: int = 1) -> list:
    ts = at(when)
    events = [AuditEvent(ts, "inner", mail, "received_inside",
                         {"mail_from": sender, "rcpts": rcpts})]  # fmt: skip
    events += [AuditEvent(ts + 1 + n, "inner", mail, "injected", {"part": n + 1})
               for n in range(parts)]  # fmt: skip
    return events


EVENTS = [
    *inbound("m1", "2026-11-01T10:00:00", "a@Partner.example", ["u1@corp.example"], parts=3),
    *inbound("m2", "2026-11-01T23:30:00", "b@partner.example", ["u1@corp.example", "u2@corp.example"]),
    *inbound("m3", "2026-12-05T09:00:00", "c@other.example", ["u2@corp.example"]),
    AuditEvent(at("2026-12-05T09:10:00"), "inner", "m4", "quarantined", {"reason": "image_decode"}),
    AuditEvent(at("2026-12-06T09:10:00"), "inner", "m5", "quarantined", {"reason": "bad_package"}),
    AuditEvent(at("2026-12-06T09:20:00"), "inner", "m6", "quarantined", {"reason": "bad_package"}),
]  # fmt: skip


def test_every_audit_step_has_a_column_position() -> None:
    assert set(STEP_ORDER) == STEPS
    assert len(STEP_ORDER) == len(STEPS)


def test_per_day_counts_distinct_mails_per_step() -> None:
    table = tally(EVENTS, period="day", zone=UTC)
    assert table.steps == ("received_inside", "injected", "quarantined")
    assert [(p, c) for p, _, c in table.rows] == [
        ("2026-11-01", (2, 2, 0)),  # m1's three notifications count once
        ("2026-12-05", (1, 1, 1)),
        ("2026-12-06", (0, 0, 2)),
    ]
    assert table.totals() == [3, 3, 3]


def test_periods_follow_the_time_zone() -> None:
    """23:30 UTC is 08:30 the next day in Seoul."""
    table = tally(EVENTS, period="day", zone=ZoneInfo("Asia/Seoul"))
    assert [(p, c[0]) for p, _, c in table.rows][:2] == [("2026-11-01", 1), ("2026-11-02", 1)]


def test_per_month_and_year() -> None:
    months = tally(EVENTS, period="month", zone=UTC)
    assert [(p, c) for p, _, c in months.rows] == [("2026-11", (2, 2, 0)), ("2026-12", (1, 1, 3))]
    (year,) = tally(EVENTS, period="year", zone=UTC).rows
    assert year == ("2026", "", (3, 3, 3))


def test_per_sender_domain_applies_to_every_step_of_the_mail() -> None:
    table = tally(EVENTS, period="month", group="sender-domain", zone=UTC)
    assert list(table.rows) == [
        ("2026-11", "partner.example", (2, 2, 0)),  # domains folded to lower case
        ("2026-12", "(unknown)", (0, 0, 3)),  # quarantined before anything named a sender
        ("2026-12", "other.example", (1, 1, 0)),
    ]


def test_per_recipient_each_recipient_counts() -> None:
    table = tally(EVENTS, period="year", group="recipient", zone=UTC)
    rows = {k: dict(zip(table.steps, c, strict=True)) for _, k, c in table.rows}
    assert rows["u1@corp.example"]["injected"] == 2
    assert rows["u2@corp.example"]["injected"] == 2
    assert rows["(unknown)"]["quarantined"] == 3


def test_per_reason_counts_only_events_that_name_one() -> None:
    table = tally(EVENTS, period="year", group="reason", zone=UTC)
    assert table.steps == ("quarantined",)
    assert [(k, c) for _, k, c in table.rows] == [("bad_package", (2,)), ("image_decode", (1,))]


def test_command_prints_a_table_writes_csv_and_an_excel_sheet(tmp_path: Path) -> None:
    from openpyxl import load_workbook

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = root / "inner.toml"
    log = AuditLog(load_agent_config(config, "inner").audit.path, agent="inner")
    for event in EVENTS:
        log.record(event.mail_id, event.step, **event.details)  # now: all in one period
    log.close()

    shown = maildiode("stats", "-c", str(config), "--by", "year", "--tz", "Asia/Seoul")
    assert shown.returncode == 0, shown.stderr
    header, row, total = shown.stdout.splitlines()
    assert header.split() == ["year", "received_inside", "injected", "quarantined"]
    assert row.split()[1:] == ["3", "3", "3"]
    assert total.split() == ["total", "3", "3", "3"]

    grouped = maildiode("stats", "-c", str(config), "--by", "month", "--group", "reason",
                   "--format", "csv")  # fmt: skip
    records = list(csv.reader(io.StringIO(grouped.stdout)))
    assert records[0] == ["month", "reason", "quarantined"]
    assert sorted((r[1], r[2]) for r in records[1:]) == [
        ("bad_package", "2"),
        ("image_decode", "1"),
    ]

    target = tmp_path / "stats.xlsx"
    written = maildiode("stats", "-c", str(config), "--group", "sender-domain", "--format", "xlsx",
                   "-o", str(target))  # fmt: skip
    assert written.returncode == 0, written.stderr
    sheet = load_workbook(target).active
    rows = [[c.value for c in r] for r in sheet.iter_rows()]
    assert rows[0][:2] == ["day", "sender-domain"]
    assert rows[-1][0] == "total"
    assert sum(r[2] for r in rows[1:-1] if isinstance(r[2], int)) == 3  # received_inside
    assert maildiode("stats", "-c", str(config), "--format", "xlsx").returncode == 2  # no -o
    assert maildiode("stats", "-c", str(config), "--tz", "Mars/Olympus").returncode == 2


def test_exports_never_turn_internet_text_into_spreadsheet_formulas(tmp_path: Path) -> None:
    """A sender domain such as ``=HYPERLINK(...)`` is valid SMTP syntax; in the CSV and the
    Excel sheet it must stay text."""
    from openpyxl import load_workbook

    root = tmp_path / "trial"
    assert maildiode("init", str(root)).returncode == 0
    config = root / "inner.toml"
    log = AuditLog(load_agent_config(config, "inner").audit.path, agent="inner")
    evil = '=HYPERLINK("http://evil.example","x")'
    log.record("m1", "received_inside", mail_from=f"a@{evil}", rcpts=["+cmd@corp.example"])
    log.close()
    for group in ("sender-domain", "recipient"):
        shown = maildiode("stats", "-c", str(config), "--group", group, "--format", "csv")
        (row,) = list(csv.reader(io.StringIO(shown.stdout)))[1:]
        assert row[1].startswith("'")
        assert row[1][1:] in (evil.lower(), "+cmd@corp.example")
    target = tmp_path / "s.xlsx"
    assert maildiode("stats", "-c", str(config), "--group", "sender-domain", "--format", "xlsx",
                     "-o", str(target)).returncode == 0  # fmt: skip
    cell = load_workbook(target).active["B2"]
    assert (cell.data_type, cell.value) == ("s", evil.lower())
