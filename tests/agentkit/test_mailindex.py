"""The mail index over the audit log: catch-up, filters, paging, statistics, the JSON shapes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from agentkit.audit import AuditLog, ImportedEvent
from agentkit.mailindex import (
    AmbiguousMail,
    IndexFollower,
    MailIndex,
    MailQuery,
    QueryRefused,
    StatsQuery,
)
from agentkit.mailindex.fold import fold_all, mail_key
from agentkit.mailindex.shapes import MAIL_FIELDS
from agentkit.mailindex.store import _event, index_path_for
from tests.support import auditgen

SEOUL = ZoneInfo("Asia/Seoul")
ROOT = Path(__file__).resolve().parents[2]


def at(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self) -> None:
        self.now = at("2026-11-01T00:00:00")

    def __call__(self) -> float:
        return self.now


def record(log: AuditLog, clock: Clock, when: str, mail: str, step: str, **details: Any) -> None:
    clock.now = at(when)
    log.record(mail, step, **details)


@pytest.fixture
def sample(tmp_path: Path) -> tuple[Path, MailIndex]:
    """Six mails, three each way, from both agents (the outer agent's imported)."""
    clock = Clock()
    path = tmp_path / "audit.db"
    log = AuditLog(path, agent="inner", clock=clock)
    r = lambda when, mail, step, **d: record(log, clock, when, mail, step, **d)  # noqa: E731
    r(
        "2026-11-01T10:00:05",
        "in1",
        "received_inside",
        mail_from="a@partner.example",
        rcpts=["u1@corp.example"],
        subject="견적서 송부",
        client="203.0.113.5",
        attachments=["견적서.pdf"],
        attachment_count=1,
    )
    r("2026-11-01T10:00:06", "in1", "injected", part=1)
    r(
        "2026-11-01T23:30:00",
        "in2",
        "received_inside",
        mail_from="b@other.example",
        rcpts=["u2@corp.example", "u3@corp.example"],
        subject="Invoice =SUM(A1)",
        client="198.51.100.7",
    )
    r("2026-11-01T23:30:01", "in2", "quarantined", reason="refused_by_internal_server")
    r(
        "2026-12-05T09:00:00",
        "in3",
        "received_inside",
        mail_from="c@partner.example",
        rcpts=["u1@corp.example"],
        subject="회의록",
        client="203.0.113.77",
        withheld=[{"name": "setup.exe"}],
        withheld_count=1,
        attachment_count=1,
    )
    r("2026-12-05T09:00:01", "in3", "injected", part=1)
    r(
        "2026-11-02T01:00:00",
        "out1",
        "accepted_outbound",
        mail_from="kim@corp.example",
        rcpts=["x@ext.example", "y@partner.example"],
        client="10.1.0.5",
    )
    r(
        "2026-11-02T01:00:01",
        "out1",
        "scanned",
        subject="계약서 검토",
        rule="rrn-hold",
        department="영업부",
        attachments=["계약서.hwp", "사진.jpg"],
        attachment_count=2,
        bytes=8000,
    )
    r("2026-11-02T01:00:01", "out1", "held", rule="rrn-hold", request_id="q1")
    r("2026-11-02T03:00:00", "out1", "approved", by="boss@corp.example", request_id="q1")
    r("2026-11-02T03:00:01", "out1", "sent_out", bytes=8100)
    r(
        "2026-11-03T08:00:00",
        "out2",
        "accepted_outbound",
        mail_from="lee@corp.example",
        rcpts=["z@partner.example"],
        client="10.1.0.6",
    )
    r(
        "2026-11-03T08:00:01",
        "out2",
        "scanned",
        subject="카드번호 안내",
        rule="card-block",
        department="인사부",
        attachments=[],
        attachment_count=0,
    )
    r("2026-11-03T08:00:01", "out2", "blocked", rule="card-block", explanation="카드번호")
    r(
        "2026-11-04T08:00:00",
        "out3",
        "accepted_outbound",
        mail_from="kim@corp.example",
        rcpts=["x@ext.example"],
        client="10.1.0.5",
    )
    r(
        "2026-11-04T08:00:01",
        "out3",
        "scanned",
        subject="Re: 견적서",
        department="영업부",
        attachments=["견적서.pdf"],
        attachment_count=1,
    )
    r("2026-11-04T08:00:01", "out3", "allowed", rule=None)
    r("2026-11-04T08:00:02", "out3", "sent_out", bytes=100)
    clock.now = at("2026-12-31T00:00:00")
    log.import_events("outer", [
        ImportedEvent(1, at("2026-11-01T10:00:00"), "in1", "received",
                      {"mail_from": "a@partner.example", "rcpts": ["u1@corp.example"],
                       "bytes": 70_000, "client": "203.0.113.5"}),
        ImportedEvent(2, at("2026-11-04T08:00:05"), "out3", "received_outbound", {"bytes": 120}),
        ImportedEvent(3, at("2026-11-04T08:00:06"), "out3", "delivered", {"rcpt": ["x"]}),
    ])  # fmt: skip
    log.close()
    index = MailIndex(path)
    index.catch_up()
    return path, index


def ids(answer: dict[str, Any]) -> list[str]:
    return [item["id"] for item in answer["items"]]


def search(index: MailIndex, **filters: Any) -> list[str]:
    return ids(index.search(MailQuery(**filters), SEOUL))


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, ["in3", "out3", "out2", "out1", "in2", "in1"]),  # newest first
        ({"direction": "in"}, ["in3", "in2", "in1"]),
        ({"direction": "out"}, ["out3", "out2", "out1"]),
        ({"q": "견적서"}, ["out3", "in1"]),  # subject or attachment name
        ({"q": "PARTNER.example"}, ["in3", "out2", "out1", "in1"]),  # any address, any case
        ({"q": "IN2"}, ["in2"]),  # the mail id
        ({"q": "사진.jpg"}, ["out1"]),
        ({"sender": "KIM@"}, ["out3", "out1"]),
        ({"recipient": "u1@corp"}, ["in3", "in1"]),
        ({"domain": "partner.example"}, ["in3", "out2", "out1", "in1"]),  # sender or recipient
        ({"domain": "ext.example"}, ["out3", "out1"]),
        ({"domain": "example"}, []),  # a domain exactly, not a part of one
        ({"subject": "invoice"}, ["in2"]),
        ({"subject": "견적서"}, ["out3", "in1"]),
        ({"client": "203.0.113.5"}, ["in1"]),  # exactly: not 203.0.113.77
        ({"client": "203.0.113."}, ["in3", "in1"]),  # a prefix ending in "."
        ({"outcomes": ("quarantined",)}, ["in2"]),
        ({"outcomes": ("approved", "blocked")}, ["out2", "out1"]),
        ({"outcomes": ("delivered",)}, ["out3", "in1"]),  # out3: the outer agent delivered it
        ({"outcomes": ("withheld",)}, ["in3"]),
        ({"rule": "rrn-hold"}, ["out1"]),
        ({"reason": "refused_by_internal_server"}, ["in2"]),
        ({"department": "영업부"}, ["out3", "out1"]),
        ({"attachment": "SETUP"}, ["in3"]),
        ({"address": "KIM@corp.example"}, ["out3", "out1"]),  # exactly, ignoring case
        ({"address": "u1@corp.example"}, ["in3", "in1"]),  # a recipient exactly
        ({"address": "im@corp.example"}, []),  # never a part of one (a role's scope)
        ({"address": "u1@corp"}, []),
        ({"attachment_count": 2}, ["out1"]),
        ({"attachment_count": 0}, ["out2", "in2"]),
        ({"attachment_count_min": 1}, ["in3", "out3", "out1", "in1"]),
        ({"since": at("2026-11-02T00:00:00")}, ["in3", "out3", "out2", "out1"]),
        ({"until": at("2026-11-02T00:00:00")}, ["in2", "in1"]),  # exclusive
        ({"since": at("2026-11-01T23:30:00"), "until": at("2026-11-02T01:00:00")}, ["in2"]),
        ({"direction": "out", "q": "견적", "department": "영업부"}, ["out3"]),
    ],
)
def test_every_filter(
    sample: tuple[Path, MailIndex], filters: dict[str, Any], expected: list[str]
) -> None:
    _, index = sample
    answer = index.search(MailQuery(**filters), SEOUL)
    assert ids(answer) == expected
    assert answer["total"] == len(expected)


def test_the_list_answers_exactly_the_contract_shape(sample: tuple[Path, MailIndex]) -> None:
    _, index = sample
    answer = index.search(MailQuery(limit=2), SEOUL)
    assert set(answer) == {"items", "total"}
    assert answer["total"] == 6
    for item in answer["items"]:
        assert list(item) == list(MAIL_FIELDS)
        assert {"id", "direction", "time", "sender", "recipients", "subject", "outcome"} <= set(
            item
        )
    first = answer["items"][0]
    assert first["time"] == "2026-12-05T18:00:00+09:00"  # ISO 8601 in the site's zone
    assert isinstance(first["recipients"], list)
    assert isinstance(first["attachments"], list)


def test_the_detail_adds_the_trail_of_both_agents(sample: tuple[Path, MailIndex]) -> None:
    _, index = sample
    detail = index.detail("out3", SEOUL)
    assert detail is not None
    assert list(detail) == [*MAIL_FIELDS, "trail"]
    trail = detail["trail"]
    assert [(t["agent"], t["step"]) for t in trail] == [
        ("inner", "accepted_outbound"), ("inner", "scanned"), ("inner", "allowed"),
        ("inner", "sent_out"), ("outer", "received_outbound"), ("outer", "delivered"),
    ]  # fmt: skip
    assert all(list(t)[:3] == ["time", "agent", "step"] for t in trail)
    assert trail[0]["time"] == "2026-11-04T17:00:00+09:00"
    assert trail[1]["subject"] == "Re: 견적서"
    assert detail["size"] == 120  # the outer agent's received_outbound, over nothing else
    assert index.detail("nope", SEOUL) is None


def test_the_trail_masks_free_text_an_event_held_in_clear(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    log.record("m1", "scanned", subject="주민번호 800101-1234567", rule="r",
               attachments=["800101-1234567.hwp"])  # fmt: skip
    log.record("m1", "rejected", reason="800101-1234567 보임", by="boss", note="x")
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    detail = index.detail("m1", SEOUL)
    assert detail is not None
    assert "1234567" not in str(detail["trail"])  # the approver's reason too, as recorded
    assert "1234567" not in detail["subject"]
    assert detail["trail"][1]["reason"].startswith("800101-1")


def test_a_mail_id_in_both_directions_needs_its_direction(tmp_path: Path) -> None:
    """Ids are random; only a compromised outer agent reporting an inner mail's id makes two."""
    log = AuditLog(tmp_path / "audit.db", agent="inner")
    log.record("same", "accepted_outbound", mail_from="kim@corp.example")
    log.import_events("outer", [ImportedEvent(1, time.time(), "same", "received", {})])
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    with pytest.raises(AmbiguousMail, match="both directions"):
        index.detail("same", SEOUL)
    detail = index.detail("same", SEOUL, "out")
    assert detail is not None
    assert [t["step"] for t in detail["trail"]] == ["accepted_outbound"]
    with pytest.raises(QueryRefused, match="direction"):
        index.detail("same", SEOUL, "sideways")  # type: ignore[arg-type]


# ------------------------------------------------------------------------------ statistics


def stats(
    index: MailIndex, by: str, group: str, zone: Any = SEOUL, **filters: Any
) -> list[tuple[str, str, int]]:
    answer = index.statistics(StatsQuery(by, group, zone, MailQuery(**filters)))  # type: ignore[arg-type]
    assert set(answer) == {"rows"}
    assert all(list(row) == ["period", "group", "count"] for row in answer["rows"])
    return [(r["period"], r["group"], r["count"]) for r in answer["rows"]]


def test_a_mail_at_23_30_utc_counts_on_the_next_day_in_seoul(
    sample: tuple[Path, MailIndex],
) -> None:
    _, index = sample
    november = {"until": at("2026-11-03T00:00:00")}
    assert stats(index, "day", "none", UTC, **november) == [
        ("2026-11-01", "", 2), ("2026-11-02", "", 1)]  # fmt: skip
    assert stats(index, "day", "none", **november) == [
        ("2026-11-01", "", 1),
        ("2026-11-02", "", 2),
    ]  # in2 at 08:30 on the 2nd in Seoul; fmt: skip


def test_month_and_year_follow_the_zone_too(tmp_path: Path) -> None:
    log = AuditLog(tmp_path / "audit.db", agent="inner", clock=lambda: at("2026-12-31T20:00:00"))
    log.record("m1", "received_inside", mail_from="a@b.example")  # 2027-01-01 05:00 in Seoul
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    assert stats(index, "month", "none", UTC) == [("2026-12", "", 1)]
    assert stats(index, "month", "none") == [("2027-01", "", 1)]
    assert stats(index, "year", "none") == [("2027", "", 1)]


def test_days_across_a_daylight_saving_change(tmp_path: Path) -> None:
    """New York moves from -05:00 to -04:00 at 07:00 UTC on 2026-03-08."""
    moments = iter([at("2026-03-08T06:30:00"), at("2026-03-09T04:30:00")])
    log = AuditLog(tmp_path / "audit.db", agent="inner", clock=lambda: next(moments))
    log.record("m1", "received_inside")  # 01:30 EST on the 8th
    log.record("m2", "received_inside")  # 00:30 EDT on the 9th (23:30 on the 8th at -05:00)
    log.close()
    index = MailIndex(tmp_path / "audit.db")
    index.catch_up()
    assert stats(index, "day", "none", ZoneInfo("America/New_York")) == [
        ("2026-03-08", "", 1), ("2026-03-09", "", 1)]  # fmt: skip


@pytest.mark.parametrize(
    ("group", "filters", "expected"),
    [
        ("rule", {"direction": "out"}, [("2026-11", "", 1), ("2026-11", "card-block", 1),
                                        ("2026-11", "rrn-hold", 1)]),
        ("sender-domain", {}, [("2026-11", "corp.example", 3), ("2026-11", "other.example", 1),
                               ("2026-11", "partner.example", 1),
                               ("2026-12", "partner.example", 1)]),
        # out1 goes to two domains: it counts once in each
        ("recipient-domain", {"direction": "out"}, [("2026-11", "ext.example", 2),
                                                    ("2026-11", "partner.example", 2)]),
        ("sender-user", {"direction": "out"}, [("2026-11", "kim@corp.example", 2),
                                               ("2026-11", "lee@corp.example", 1)]),
        ("department", {"direction": "out"}, [("2026-11", "영업부", 2), ("2026-11", "인사부", 1)]),
        ("outcome", {}, [("2026-11", "approved", 1), ("2026-11", "blocked", 1),
                         ("2026-11", "delivered", 2), ("2026-11", "quarantined", 1),
                         ("2026-12", "withheld", 1)]),
        ("direction", {"outcomes": ("delivered",)}, [("2026-11", "in", 1), ("2026-11", "out", 1)]),
        ("reason", {"direction": "in", "until": at("2026-12-01T00:00:00")},
         [("2026-11", "", 1), ("2026-11", "refused_by_internal_server", 1)]),
    ],
)  # fmt: skip
def test_statistics_groups(sample: tuple[Path, MailIndex], group: str, filters: dict[str, Any],
                           expected: list[tuple[str, str, int]]) -> None:  # fmt: skip
    _, index = sample
    assert stats(index, "month", group, **filters) == expected


def test_statistics_of_nothing_is_no_rows(tmp_path: Path) -> None:
    index = MailIndex(tmp_path / "audit.db")  # no audit log yet: nothing to fold
    assert index.catch_up() == 0
    assert stats(index, "day", "none") == []
    assert index.search(MailQuery(), SEOUL) == {"items": [], "total": 0}


# ------------------------------------------------------------------------------ paging


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """A generated store of 4,000 events (about 600 mails of both directions)."""
    path = tmp_path_factory.mktemp("generated") / "audit.db"
    auditgen.build_store(path, 4000, seed=3)
    log = AuditLog(path)
    events = log.events_after(0, 10_000)
    log.close()
    return path, [event for _, event in events]


def test_the_index_is_the_fold_of_every_event(
    generated: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    path, events = generated
    index = MailIndex(path, tmp_path / "index.db")
    assert index.catch_up(batch_events=333) == len(events)
    expected = fold_all(events)
    items = list(index.iter_mails(MailQuery(), SEOUL))
    assert len(items) == len(expected) > 500
    for item in items:
        row = expected[(item["id"], item["direction"])]
        assert (item["outcome"], item["sender"], item["recipients"], item["subject"],
                item["attachment_count"], item["size"]) == (
            row.outcome, row.sender, list(row.recipients), row.subject, row.attachment_count,
            row.size)  # fmt: skip
    outcomes = {item["outcome"] for item in items}
    assert {"delivered", "withheld", "approved", "blocked", "quarantined", "rejected"} <= outcomes


@pytest.mark.parametrize("one_pass", [20_000, 10])
@pytest.mark.parametrize("filters", [{}, {"direction": "in"}, {"q": "@"}, {"sender": "user"}])
def test_pages_by_offset_and_by_cursor_cover_every_mail_once(
    generated: tuple[Path, list[Any]],
    tmp_path: Path,
    filters: dict[str, Any],
    one_pass: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """{} and direction page along the time index; q and sender by one pass over the rows,
    or (more matches than one pass carries) by SQL counting and sorting."""
    from agentkit.mailindex import store

    monkeypatch.setattr(store, "ONE_PASS_MATCHES", one_pass)
    path, _ = generated
    index = MailIndex(path, tmp_path / "index.db")
    index.catch_up()
    everything = index.search(MailQuery(limit=500, **filters), SEOUL)
    total = everything["total"]
    assert total > 50
    assert len(everything["items"]) == min(total, 500)
    by_offset, by_cursor, after = [], [], ""
    for page in range(0, min(total, 500), 37):
        answer = index.search(MailQuery(limit=37, offset=page, **filters), SEOUL)
        assert answer["total"] == total
        by_offset += answer["items"]
    while len(by_cursor) < min(total, 500):
        answer = index.search(MailQuery(limit=37, after=after, **filters), SEOUL)
        assert answer["total"] == total
        assert answer["items"]
        by_cursor += answer["items"]
        after = answer["items"][-1]["cursor"]
    assert by_offset[:500] == everything["items"] == by_cursor[:500]
    times = [(i["time"], i["id"]) for i in everything["items"]]
    assert [t for t, _ in times] == sorted((t for t, _ in times), reverse=True)


def test_a_bad_cursor_is_refused(sample: tuple[Path, MailIndex]) -> None:
    _, index = sample
    with pytest.raises(QueryRefused, match="after"):
        index.search(MailQuery(after="yesterday"), SEOUL)


def test_an_export_reads_every_mail_page_by_page(
    generated: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    path, _events = generated
    index = MailIndex(path, tmp_path / "index.db")
    index.catch_up()
    items = list(index.iter_mails(MailQuery(direction="out", limit=3), SEOUL))
    assert len(items) == index.search(MailQuery(direction="out"), SEOUL)["total"] > 500 // 2
    assert len({(i["id"], i["direction"]) for i in items}) == len(items)


# ------------------------------------------------------------------------------ catch-up


def test_catch_up_is_idempotent_and_takes_only_new_events(sample: tuple[Path, MailIndex]) -> None:
    path, index = sample
    before = index.search(MailQuery(), SEOUL)
    assert index.catch_up() == 0
    assert index.search(MailQuery(), SEOUL) == before
    log = AuditLog(path, agent="inner")
    log.record("in2", "requeued", bundle_id="b")
    log.record("in2", "injected", part=1)
    log.close()
    assert index.catch_up() == 2
    (item,) = index.search(MailQuery(q="in2"), SEOUL)["items"]
    assert item["outcome"] == "delivered"
    assert index.search(MailQuery(), SEOUL)["total"] == 6


def test_a_failure_inside_a_batch_leaves_the_index_at_the_batch_before(
    generated: tuple[Path, list[Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agentkit.mailindex import store

    path, events = generated
    index = MailIndex(path, tmp_path / "index.db")
    real_fold, calls = store.fold, []

    def failing(row: Any, event: Any) -> Any:
        calls.append(1)
        if len(calls) == 1500:
            raise OSError("disk went away")
        return real_fold(row, event)

    monkeypatch.setattr(store, "fold", failing)
    with pytest.raises(OSError, match="disk went away"):
        index.catch_up(batch_events=1000)
    assert index.indexed_up_to() == 1000  # the second batch rolled back whole
    partial = index.search(MailQuery(), SEOUL)["total"]
    assert partial == len(fold_all(events[:1000]))
    monkeypatch.setattr(store, "fold", real_fold)
    index.catch_up(batch_events=1000)
    assert index.search(MailQuery(), SEOUL)["total"] == len(fold_all(events))


CATCH_UP_SLOWLY = """
import sys, time
from pathlib import Path
from agentkit.mailindex import MailIndex
index = MailIndex(Path(sys.argv[1]), Path(sys.argv[2]))
while index.catch_up(batch_events=150, max_batches=1):
    print(index.indexed_up_to(), flush=True)
    time.sleep(0.02)
print("done", flush=True)
"""


def test_catch_up_killed_between_batches_resumes_to_the_same_index(
    generated: tuple[Path, list[Any]], tmp_path: Path
) -> None:
    path, events = generated
    target = tmp_path / "index.db"
    child = subprocess.Popen([sys.executable, "-c", CATCH_UP_SLOWLY, str(path), str(target)],
                             stdout=subprocess.PIPE, text=True, cwd=ROOT)  # fmt: skip
    assert child.stdout is not None
    seen = [child.stdout.readline() for _ in range(4)]
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    assert seen[-1].strip().isdigit()
    index = MailIndex(path, target)
    reached = index.indexed_up_to()
    assert reached % 150 == 0
    assert 600 <= reached < len(events)
    assert index.search(MailQuery(), SEOUL)["total"] == len(fold_all(events[:reached]))
    index.catch_up()
    fresh = MailIndex(path, tmp_path / "fresh.db")
    fresh.catch_up()

    def mails(of: MailIndex) -> list[dict[str, Any]]:  # row ids (in cursors) may differ
        return [{**item, "cursor": ""} for item in of.iter_mails(MailQuery(), SEOUL)]

    assert mails(index) == mails(fresh)


def test_a_replaced_audit_log_or_a_new_schema_rebuilds_the_index(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path, agent="inner")
    for n in range(5):
        log.record(f"m{n}", "received_inside")
    log.close()
    index = MailIndex(path)  # open all along, as in the console
    index.catch_up()
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (tmp_path / name).unlink(missing_ok=True)
    log = AuditLog(path, agent="inner")
    for n in range(7):  # more events than the old log had: the position alone cannot tell
        log.record("new" if n == 6 else f"n{n}", "received_inside")
    log.close()
    index.catch_up()
    assert search(index, limit=10) == ["new", "n5", "n4", "n3", "n2", "n1", "n0"]
    index.close()

    import sqlite3

    db = sqlite3.connect(index_path_for(path))
    db.execute("UPDATE meta SET value = 0 WHERE key = 'schema_version'")
    db.commit()
    db.close()
    index = MailIndex(path)
    assert index.indexed_up_to() == 0
    assert search(index) == []
    index.catch_up()
    assert search(index, limit=1) == ["new"]


def test_the_follower_keeps_the_index_current(tmp_path: Path) -> None:
    path = tmp_path / "audit.db"
    log = AuditLog(path, agent="inner")
    index = MailIndex(path)
    follower = IndexFollower(index, interval_s=0.05)
    follower.start()
    try:
        log.record("m1", "received_inside", subject="안녕")
        deadline = time.monotonic() + 10
        while not search(index, q="안녕") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert search(index, q="안녕") == ["m1"]
        detail = index.detail("m1", SEOUL)  # this thread reads what the follower's indexed
        assert detail is not None
        assert [t["step"] for t in detail["trail"]] == ["received_inside"]
    finally:
        follower.stop()
        log.close()


def test_the_generated_store_reads_like_the_agents_events(
    generated: tuple[Path, list[Any]],
) -> None:
    """The benchmark's store holds only steps and mails the index understands."""
    _, events = generated
    assert all(mail_key(e) is not None or e.step == "link_refused" for e in events)
    assert {e.agent for e in events} == {"inner", "outer"}
    assert _event((1, 2.0, "outer", "m", "received", "not json")).details == {}


def test_the_follower_outlives_a_failed_catch_up(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index = MailIndex(tmp_path / "audit.db")
    real, calls = index.catch_up, []

    def flaky(**options: Any) -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a bug met once")
        return real(**options)

    index.catch_up = flaky  # type: ignore[method-assign]
    follower = IndexFollower(index, interval_s=0.01)
    follower.start()
    deadline = time.monotonic() + 10
    while len(calls) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    follower.stop()
    assert len(calls) >= 3
    assert "a bug met once" in caplog.text
