"""The outer agent's status report: what it carries, its events exactly once across crashes,
a backlog in bounded reports, and its thread."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from agentkit.audit import AuditLog
from agentkit.auditimport import ImportedEvent
from agentkit.control import (
    MAX_EVENT_BYTES_PER_REPORT,
    MAX_EVENTS_PER_REPORT,
    StatusReport,
    decode_control,
)
from agentkit.hostfigures import HostSampler
from outer_agent.delivery import DeliveryQueue, OutboundItem, delivery_summary
from outer_agent.report import ReportCursor, ReportSources, StatusReporter
from protocol import Kind, LinkStatus

NOW = 1767225600.0


@dataclass
class FakeSender:
    """protocol.Sender as the reporter sees it; ``fail`` makes the next publish raise."""

    stream: str = "inbound"
    epoch: int = 4
    last_seq: int = 17
    published: list[tuple[bytes, bytes, Kind]] = field(default_factory=list)
    fail: bool = False

    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> Any:
        if self.fail:
            raise OSError(28, "No space left on device")
        self.published.append((bundle, bundle_id, kind))
        return None

    def reports(self) -> list[StatusReport]:
        decoded = [decode_control(bundle, "inbound") for bundle, _, _ in self.published]
        assert all(isinstance(r, StatusReport) for r in decoded)
        return decoded  # type: ignore[return-value]


def _link_status() -> LinkStatus:
    return LinkStatus(
        stream="outbound", highest_seq=12, sender_epoch=2, last_seen_ms=int(NOW * 1000) - 4000,
        last_heartbeat_ms=int(NOW * 1000) - 4000, silent=False, gaps=(9, 10), in_flight=0,
        bytes_held=0, counters={"quarantined:bad-signature": 3, "quarantine_dropped": 1,
                                "chunks_accepted": 40},
    )  # fmt: skip


def _reporter(tmp_path: Path, sender: FakeSender, audit: AuditLog, **kw: Any) -> StatusReporter:
    sources = ReportSources(
        host=HostSampler(tmp_path), spool_root=tmp_path / "spool/inbound",
        delivery_root=tmp_path / "spool/outbound", sender=sender,
        receiver_status=kw.pop("receiver_status", _link_status), audit=audit,
    )  # fmt: skip
    cursor = ReportCursor(tmp_path / "spool/report-cursor.json")
    return StatusReporter(sources, cursor, interval_s=30, clock=lambda: NOW, **kw)


def test_a_report_carries_host_figures_queues_link_ends_and_events(tmp_path: Path) -> None:
    for state, names in {
        "received": ["a.0", "b.0"],
        "rendering": ["c.0"],
        "quarantine": ["d"],
    }.items():
        (tmp_path / "spool/inbound" / state).mkdir(parents=True)
        for name in names:
            (tmp_path / "spool/inbound" / state / name).write_bytes(b"mail")
    queue = DeliveryQueue(tmp_path / "spool/outbound", clock=lambda: NOW)
    queue.store(OutboundItem("o1", b"\x01" * 16, "a@corp.example", ("x@ext.example",),
                             ["x@ext.example"], b"mail", first_seen=NOW - 600, attempts=2))  # fmt: skip
    queue.store(OutboundItem("o2", b"\x02" * 16, "a@corp.example", ("y@ext.example",),
                             ["y@ext.example"], b"mail", first_seen=NOW - 60))  # fmt: skip
    audit = AuditLog(tmp_path / "audit.db", agent="outer")
    audit.record("m1", "received", rcpts=["u@corp.example", "v@corp.example"], bytes=120)
    audit.record("m1", "published", seq=17)
    sender = FakeSender()
    reporter = _reporter(tmp_path, sender, audit)

    assert reporter.publish_once() == 0
    [(_, bundle_id, kind)] = sender.published
    assert kind is Kind.CONTROL
    assert len(bundle_id) == 16
    [report] = sender.reports()
    assert report.made_ms == int(NOW * 1000)
    assert report.interval_s == 30
    assert report.policy_version == 0
    assert report.host.memory_total
    assert report.host.disk_total
    assert report.host.uptime_s
    assert (report.spool.received, report.spool.rendering, report.spool.quarantine) == (2, 1, 1)
    assert report.delivery.queued == 2
    assert report.delivery.retrying == 1
    assert report.delivery.oldest_waiting_s == 600.0
    assert (report.link.sender.stream, report.link.sender.epoch, report.link.sender.last_seq) == (
        "inbound", 4, 17,
    )  # fmt: skip
    receiver = report.link.receiver
    assert receiver is not None
    assert (receiver.gaps, receiver.gap_count, receiver.quarantined, receiver.dropped) == (
        (9, 10), 2, 2, 1,
    )  # fmt: skip
    assert [(e.id, e.mail_id, e.step) for e in report.events] == [
        (1, "m1", "received"), (2, "m1", "published"),
    ]  # fmt: skip
    assert report.events[0].details == {"rcpts": "u@corp.example, v@corp.example", "bytes": 120}
    assert report.events_behind == 0

    assert reporter.publish_once() == 0
    assert sender.reports()[1].events == ()  # each event once
    assert sender.published[0][1] != sender.published[1][1]  # a fresh bundle id per report


def test_without_an_outbound_link_the_receiver_figures_are_nil(tmp_path: Path) -> None:
    sender = FakeSender()
    reporter = _reporter(tmp_path, sender, AuditLog(tmp_path / "audit.db"), receiver_status=None)
    reporter.publish_once()
    [report] = sender.reports()
    assert report.link.receiver is None
    assert report.spool.received == 0  # no spool folders yet: counted as empty


def test_a_failed_publish_keeps_the_events_for_the_next_report(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="outer")
    for n in range(3):
        audit.record(f"m{n}", "received")
    sender = FakeSender(fail=True)
    reporter = _reporter(tmp_path, sender, audit)
    with pytest.raises(OSError, match="No space left"):
        reporter.publish_once()
    assert not (tmp_path / "spool/report-cursor.json").exists()
    sender.fail = False
    reporter.publish_once()
    assert [e.id for e in sender.reports()[0].events] == [1, 2, 3]


def test_a_crash_after_publishing_resends_the_events_and_the_import_keeps_each_once(
    tmp_path: Path,
) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="outer")
    for n in range(4):
        audit.record(f"m{n}", "received")
    sender = FakeSender()
    first = _reporter(tmp_path, sender, audit)
    first.publish_once()  # cursor at 4
    audit.record("m4", "received")
    audit.record("m5", "received")

    class Crash(Exception):
        pass

    def crash(last_event_id: int) -> None:
        raise Crash  # killed after publish returned, before the cursor was written

    first.cursor.save = crash  # type: ignore[method-assign]
    with pytest.raises(Crash):
        first.publish_once()
    restarted = _reporter(tmp_path, sender, audit)  # reads the cursor from its file
    restarted.publish_once()
    ids = [[e.id for e in report.events] for report in sender.reports()]
    assert ids == [[1, 2, 3, 4], [5, 6], [5, 6]]  # sent twice: the crash window

    inner = AuditLog(tmp_path / "inner-audit.db", agent="inner")
    for report in sender.reports():
        inner.import_events(
            "outer",
            (ImportedEvent(e.id, e.ts, e.mail_id, e.step, e.details) for e in report.events),
        )
    assert sorted(e.mail_id for e in inner.query()) == [f"m{n}" for n in range(6)]


def test_a_backlog_goes_in_reports_of_at_most_n_events_and_m_bytes(tmp_path: Path) -> None:
    audit = AuditLog(tmp_path / "audit.db", agent="outer")
    for n in range(250):
        audit.record(f"m{n}", "quarantined", detail="가" * 400, reason="나" * 400)
    for n in range(250, 500):
        audit.record(f"m{n}", "received", bytes=n)
    sender = FakeSender()
    reporter = _reporter(tmp_path, sender, audit)
    behind = [reporter.publish_once() for _ in range(6)]
    reports = sender.reports()
    sizes = [len(bundle) for bundle, _, _ in sender.published]
    counts = [len(r.events) for r in reports]
    assert all(count <= MAX_EVENTS_PER_REPORT for count in counts)
    assert max(sizes) <= MAX_EVENT_BYTES_PER_REPORT + 4096
    assert counts[0] < MAX_EVENTS_PER_REPORT  # the byte budget cut the first one short
    ids = [e.id for r in reports for e in r.events]
    assert ids == list(range(1, 501))  # every event once, in order
    assert behind[0] > 0
    assert behind[-1] == 0


def test_the_thread_reports_at_start_and_stops_promptly(tmp_path: Path) -> None:
    sender = FakeSender()
    reporter = StatusReporter(
        ReportSources(HostSampler(tmp_path), tmp_path / "in", tmp_path / "out", sender, None,
                      AuditLog(tmp_path / "audit.db")),
        ReportCursor(tmp_path / "cursor.json"), interval_s=3600,
    )  # fmt: skip
    reporter.start()
    deadline = time.monotonic() + 10
    while not sender.published and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    reporter.stop()
    assert time.monotonic() - started < 2
    assert len(sender.published) == 1


def test_delivery_summary_reads_headers_only(tmp_path: Path) -> None:
    queue = DeliveryQueue(tmp_path, clock=lambda: NOW)
    queue.store(OutboundItem("o1", b"\x01" * 16, "a@corp.example", ("x@ext.example",),
                             ["x@ext.example"], b"m" * 200_000, first_seen=NOW - 90))  # fmt: skip
    queue.quarantine("bad", b"junk", "undecodable")
    (tmp_path / "queue" / "torn").write_bytes(b"MDSPOOL 1\n99999\n{")
    summary = delivery_summary(tmp_path, NOW)
    assert summary == {"queued": 2, "retrying": 0, "quarantine": 1, "oldest_waiting_s": 90.0}
    assert delivery_summary(tmp_path / "missing", NOW)["queued"] == 0


def test_report_interval_defaults_to_the_heartbeat(tmp_path: Path) -> None:
    from maildiode.commands.check import load_agent_config
    from tests.support.command import maildiode

    assert maildiode("init", str(tmp_path / "trial")).returncode == 0
    toml = tmp_path / "trial" / "outer.toml"
    config = load_agent_config(toml, "outer")
    assert config.report_interval_s == 30  # link.heartbeat_s
    toml.write_text(toml.read_text().replace("# interval_s = 30", "interval_s = 7"))
    assert load_agent_config(toml, "outer").report_interval_s == 7
    toml.write_text(toml.read_text().replace("interval_s = 7", "interval_s = 0"))
    refused = maildiode("check", "-c", str(toml))
    assert refused.returncode != 0
    assert "report.interval_s" in refused.stdout + refused.stderr
