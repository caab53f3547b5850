"""The injection queue and workers against a real (aiosmtpd) server that injects faults."""

from __future__ import annotations

from pathlib import Path

from agentkit.audit import AuditLog
from inner_agent.inject import InjectionQueue, Injector, RetryPolicy
from inner_agent.smtpclient import Hop
from maildiode.trial.stack import free_port, wait_for
from tests.inner.smtpsink import FaultySink


def _injector(tmp_path: Path, port: int, queue: InjectionQueue, audit: AuditLog) -> Injector:
    return Injector(queue, Hop("127.0.0.1", port, timeout_s=5), audit,
                    policy=RetryPolicy(attempts_per_pass=2, retry_initial_s=0.2, retry_max_s=0.5),
                    workers=2, postmaster="postmaster@corp.example",
                    report_from="maildiode@corp.example", quarantine_dir=tmp_path / "q",
                    poll_s=0.05)  # fmt: skip


def test_add_bundle_is_durable_and_idempotent(tmp_path: Path) -> None:
    queue = InjectionQueue(tmp_path / "q.db")
    assert queue.add_bundle(b"1" * 16, "m1", "a@corp.example", ["u@corp.example"], [b"x", b"y"])
    assert not queue.add_bundle(b"1" * 16, "m1", "a@corp.example", ["u@corp.example"], [b"x"])
    queue.close()
    reopened = InjectionQueue(tmp_path / "q.db")
    assert reopened.has_bundle(b"1" * 16)
    assert reopened.counts() == {"queued": 2}


def test_4xx_is_retried_until_accepted(tmp_path: Path, sink: tuple[FaultySink, int]) -> None:
    handler, port = sink
    handler.temporary = 5  # more than one pass of quick retries
    queue, audit = InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db")
    queue.add_bundle(
        b"2" * 16, "m2", "maildiode@corp.example", ["u@corp.example"], [b"Subject: x\r\n\r\nhi\r\n"]
    )
    injector = _injector(tmp_path, port, queue, audit)
    injector.start()
    try:
        wait_for(lambda: queue.counts().get("accepted") == 1, 30, "acceptance")
    finally:
        injector.stop()
    assert len(handler.received) == 1
    steps = [e.step for e in audit.query(mail_id="m2")]
    assert steps[0] == "deferred"
    assert steps[-1] == "injected"


def test_connection_refused_keeps_the_mail(tmp_path: Path) -> None:
    queue, audit = InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db")
    queue.add_bundle(b"3" * 16, "m3", "maildiode@corp.example", ["u@corp.example"], [b"x\r\n"])
    injector = _injector(tmp_path, free_port(), queue, audit)  # nobody listens there
    injector.start()
    try:
        wait_for(lambda: bool(audit.query(mail_id="m3", step="deferred")), 10, "a deferral")
    finally:
        injector.stop()
    assert queue.counts() == {"queued": 1}


def test_5xx_is_quarantined_and_reported_to_the_postmaster(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    handler, port = sink
    queue, audit = InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db")
    queue.add_bundle(
        b"4" * 16,
        "m4",
        "maildiode@corp.example",
        ["refuse@corp.example", "u@corp.example"],
        [b"Subject: x\r\n\r\nhi\r\n"],
    )
    injector = _injector(tmp_path, port, queue, audit)
    injector.start()
    try:
        wait_for(lambda: len(handler.received) == 2, 10, "notification and report")
    finally:
        injector.stop()
    (to_user, report) = sorted(handler.received, key=lambda r: r[1])
    assert to_user[1] == ["u@corp.example"] or report[1] == ["u@corp.example"]
    rcpts = sorted(r[1][0] for r in handler.received)
    assert rcpts == ["postmaster@corp.example", "u@corp.example"]
    [report_data] = [r[2] for r in handler.received if r[1] == ["postmaster@corp.example"]]
    assert b"\r\nX-Maildiode-Notification: postmaster-report\r\n" in report_data  # ownmail
    steps = {e.step for e in audit.query(mail_id="m4")}
    assert {"injected", "quarantined", "postmaster_notified"} <= steps
    assert len(list((tmp_path / "q").glob("refused-m4-*.eml"))) == 1


def test_4xx_for_one_recipient_retries_only_that_one(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    handler, port = sink
    queue, audit = InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db")
    queue.add_bundle(
        b"5" * 16,
        "m5",
        "maildiode@corp.example",
        ["u@corp.example", "later@corp.example"],
        [b"x\r\n"],
    )
    injector = _injector(tmp_path, port, queue, audit)
    injector.start()
    try:
        wait_for(lambda: len(audit.query(mail_id="m5", step="deferred")) >= 1, 10, "a deferral")
    finally:
        injector.stop()
    assert [r[1] for r in handler.received] == [["u@corp.example"]]
    assert queue.counts() == {"queued": 1}
    assert queue.next_due(set()) is None or queue.next_due(set()).rcpts == ("later@corp.example",)
