"""The archive copy (issue 17.6): each original, unchanged, to an internet-side mailbox by SMTP,
kept in its own queue, retried, never in the inbound path's way."""

from __future__ import annotations

import time
from pathlib import Path

from outer_agent.archive import ArchiveForwarder, ArchiveQueue
from outer_agent.delivery import SmtpHop
from outer_agent.spool import Envelope, Spool, new_bundle_id
from tests.outer.sinks import FaultySink, start_sink
from tests.outer.test_pipeline import FakeAudit

ORIGINAL = (b"From: kim@partner.example\r\nTo: u@corp.example\r\nSubject: =?utf-8?b?6rKs7KCB?=\r\n"
            b"\r\nbody with a lone dot\r\n.\r\nand 8bit \xed\x95\x9c\r\n")  # fmt: skip


def claimed_mail(spool: Spool) -> tuple[Path, Envelope]:
    bundle_id = new_bundle_id()
    envelope = Envelope(bundle_id.hex(), bundle_id, "kim@partner.example",
                        ("u@corp.example", "v@corp.example"), time.time(), "203.0.113.5", "h",
                        False)  # fmt: skip
    spool.write_received(envelope, ORIGINAL)
    claimed = spool.claim(f"{envelope.mail_id}.0")
    assert claimed is not None
    return claimed, envelope


def forwarder(queue: ArchiveQueue, port: int, audit: FakeAudit, clock: list[float],
              mailbox: str | None = "archive@corp.example") -> ArchiveForwarder:  # fmt: skip
    hop = SmtpHop(smarthost=("127.0.0.1", port), helo="outer.test", starttls="off", timeout_s=5)
    return ArchiveForwarder(queue, hop, audit, where=f"127.0.0.1:{port}", mailbox=mailbox,
                            retry_initial_s=10, retry_max_s=40, expire_s=100, poll_s=1,
                            clock=lambda: clock[0])  # fmt: skip


def test_the_original_survives_its_spool_copy_and_arrives_unchanged(tmp_path: Path) -> None:
    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    claimed, envelope = claimed_mail(spool)
    queue.keep(claimed, envelope)
    spool.remove_published(claimed)  # the pipeline removes its copy right after
    sink, audit, clock = FaultySink(), FakeAudit(), [time.time()]
    controller = start_sink(sink)
    try:
        assert forwarder(queue, controller.port, audit, clock).run_due() == 1
    finally:
        controller.stop()
    assert len(sink.received) == 1
    assert sink.received[0].data == ORIGINAL  # byte for byte
    assert sink.received[0].rcpt_to == ["archive@corp.example"]
    assert sink.received[0].mail_from == "kim@partner.example"
    assert queue.waiting() == []
    assert [s for _, s, _ in audit.events] == ["archived"]


def test_temporary_failures_are_retried_with_backoff_then_given_up(tmp_path: Path) -> None:
    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    claimed, envelope = claimed_mail(spool)
    queue.keep(claimed, envelope)
    queue.keep(claimed, envelope)  # kept again after a crash: one copy
    sink = FaultySink(replies=["451 4.3.0 try later", "451 4.3.0 try later", "250 2.0.0 OK"])
    audit, clock = FakeAudit(), [1000.0]
    controller = start_sink(sink)
    try:
        archive = forwarder(queue, controller.port, audit, clock, mailbox=None)
        assert archive.run_due() == 0  # 451: deferred 10 s
        assert archive.run_due() == 0
        assert sink.data_calls == 1
        clock[0] += 10
        assert archive.run_due() == 0  # 451 again: deferred 20 s
        clock[0] += 20
        assert archive.run_due() == 1
    finally:
        controller.stop()
    assert sink.received[0].rcpt_to == ["u@corp.example", "v@corp.example"]  # as received
    assert [s for _, s, _ in audit.events] == ["archive_deferred", "archive_deferred", "archived"]


def test_a_refused_copy_is_kept_for_an_administrator(tmp_path: Path) -> None:
    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    claimed, envelope = claimed_mail(spool)
    queue.keep(claimed, envelope)
    sink, audit, clock = FaultySink(replies=["554 5.7.1 no"]), FakeAudit(), [1000.0]
    controller = start_sink(sink)
    try:
        forwarder(queue, controller.port, audit, clock).run_due()
    finally:
        controller.stop()
    assert (tmp_path / "archive" / "failed" / envelope.mail_id).read_bytes() == claimed.read_bytes()
    assert [s for _, s, _ in audit.events] == ["archive_failed"]


def test_an_unreachable_archive_never_holds_up_the_spool(tmp_path: Path) -> None:
    """The pipeline's hook is a hard link: the mail's own path goes on at once."""
    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    claimed, envelope = claimed_mail(spool)
    started = time.monotonic()
    queue.keep(claimed, envelope)
    spool.remove_published(claimed)
    assert time.monotonic() - started < 0.5
    audit, clock = FakeAudit(), [1000.0]
    archive = forwarder(queue, 1, audit, clock)  # nothing listens on port 1
    archive.run_due()
    assert queue.waiting() == [envelope.mail_id]
    assert [s for _, s, _ in audit.events] == ["archive_deferred"]


def test_the_pipeline_archives_each_original_before_its_spool_copy_goes(tmp_path: Path) -> None:
    from outer_agent.pipeline import Pipeline
    from tests.outer.test_pipeline import FakePackager, FakeSender, put, wait_for

    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    sender, audit = FakeSender(), FakeAudit()
    pipeline = Pipeline(spool, FakePackager(), sender, audit, workers=1, archive=queue)
    envelopes = [put(spool, b"mail %d" % n) for n in range(5)]
    pipeline.start()
    try:
        wait_for(lambda: len(audit.steps("published")) == 5 and not spool.claimed())
    finally:
        pipeline.stop()
    assert queue.waiting() == sorted(e.mail_id for e in envelopes)
    assert {queue.read(e.mail_id).payload for e in envelopes} == {b"mail %d" % n for n in range(5)}


def test_the_running_agent_forwards_each_original_to_the_archive(tmp_path: Path) -> None:
    """``[archive] smtp`` in outer.toml: the agent's own forwarder, byte for byte."""
    import smtplib

    from tests.outer.agent_support import AgentProcess, make_agent_dir
    from tests.outer.test_pipeline import wait_for

    sink = FaultySink()
    controller = start_sink(sink)
    agent_dir = make_agent_dir(tmp_path / "agent", processes=1)
    agent_dir.edit("archive", "smtp", f'"127.0.0.1:{controller.port}"')
    agent_dir.edit("archive", "mailbox", '"archive@corp.example"')
    agent_dir.edit("archive", "starttls", '"off"')
    agent_dir.edit("archive", "poll_s", "0.2")
    agent = AgentProcess(agent_dir)
    agent.start()
    try:
        with smtplib.SMTP("127.0.0.1", agent_dir.port, timeout=30) as client:
            client.sendmail("kim@partner.example", ["u@corp.example"], ORIGINAL)
        wait_for(lambda: len(sink.received) == 1, timeout=60)
    finally:
        agent.stop()
        controller.stop()
    assert sink.received[0].data == ORIGINAL
    assert sink.received[0].mail_from == "kim@partner.example"
    assert sink.received[0].rcpt_to == ["archive@corp.example"]
    assert not list((tmp_path / "agent" / "outer" / "spool" / "archive" / "queue").iterdir())


def test_a_mail_of_a_linked_segment_is_archived_alone(tmp_path: Path) -> None:
    """D81: the spool name of a mail may be a segment shared with other mails; the archive
    keeps that mail's record only, never the others'."""
    spool, queue = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    envelopes = []
    for n in range(3):
        bundle_id = new_bundle_id()
        envelopes.append(Envelope(bundle_id.hex(), bundle_id, "kim@partner.example",
                                  ("u@corp.example",), time.time(), "203.0.113.5", "h", False))  # fmt: skip
    spool.write_segment([(env, ORIGINAL + b"%d" % n) for n, env in enumerate(envelopes)])
    spool.split_incoming()
    claimed = spool.claim(f"{envelopes[1].mail_id}.0")
    assert claimed is not None
    queue.keep(claimed, envelopes[1], spool.own_record(claimed))
    queue.keep(claimed, envelopes[1], spool.own_record(claimed))  # again after a crash: one copy
    spool.remove_published(claimed)
    assert queue.waiting() == [envelopes[1].mail_id]
    assert queue.read(envelopes[1].mail_id).payload == ORIGINAL + b"1"
