"""A full disk while one mail of a linked segment (D81) is archived or quarantined (D86): the
write its own copy needs is refused with ENOSPC; the mail stays where it was, no thread dies,
and once the disk frees the mail ends archived or quarantined with its reason."""

from __future__ import annotations

import errno
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from outer_agent.archive import ArchiveQueue
from outer_agent.spool import Envelope, Spool, SpoolRecord, new_bundle_id
from protocol.durable import write_durably
from tests.outer.test_pipeline import FakeAudit, FakePackager, FakeSender, run_pipeline, wait_for
from tests.support.smalldisk import fill, free, small_disk


class FullDisk:
    """``write_durably`` as a disk that has room for small files (reason files) only while
    ``full`` is set: a bigger file is refused with ENOSPC, the way a real one refuses it."""

    def __init__(self, room_bytes: int = 200) -> None:
        self.full = True
        self.room_bytes = room_bytes
        self.refused: list[Path] = []
        self.lock = threading.Lock()

    def write_durably(self, target: Path, source: Any, **kwargs: Any) -> None:
        if self.full and isinstance(source, bytes) and len(source) > self.room_bytes:
            with self.lock:
                self.refused.append(target)
            raise OSError(errno.ENOSPC, "No space left on device", str(target))
        write_durably(target, source, **kwargs)


def linked_segment(spool: Spool, bodies: list[bytes]) -> list[Envelope]:
    envelopes = []
    for _ in bodies:
        bundle_id = new_bundle_id()
        envelopes.append(Envelope(bundle_id.hex(), bundle_id, "kim@partner.example",
                                  ("u@corp.example",), time.time(), "203.0.113.5", "h", False))  # fmt: skip
    spool.write_segment([(env, body + b" " * 300) for env, body in zip(envelopes, bodies, strict=True)])  # fmt: skip
    return envelopes


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("outer_agent.pipeline.PUBLISH_RETRY_S", 0.05)


@pytest.mark.usefixtures("quick_retries")
def test_an_archive_copy_the_full_disk_refuses_is_kept_and_written_once_it_frees(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    monkeypatch.setattr("outer_agent.archive.write_durably", disk.write_durably)
    spool, archive = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    sender, audit = FakeSender(), FakeAudit()
    envelopes = linked_segment(spool, [b"mail 0", b"mail 1", b"mail 2"])
    pipeline = run_pipeline(spool, FakePackager(), sender, audit, archive=archive)
    try:
        wait_for(lambda: len(audit.steps("published")) == 3 and len(disk.refused) >= 6)
        # published, but no archive copy yet: each mail's spool copy stays (never lost)
        assert archive.waiting() == []
        assert sorted(n.split(".")[0] for n in spool.claimed()) == sorted(
            e.mail_id for e in envelopes
        )
        disk.full = False
        wait_for(lambda: len(archive.waiting()) == 3 and spool.claimed() == [])
        later = linked_segment(spool, [b"after"])  # the publisher still works
        pipeline.notify_incoming()
        wait_for(lambda: later[0].mail_id in archive.waiting() and spool.claimed() == [])
    finally:
        pipeline.stop()
    for n, env in enumerate(envelopes):
        assert archive.read(env.mail_id).payload.startswith(b"mail %d " % n)
    assert sum(spool.counts().values()) == 0


@pytest.mark.usefixtures("quick_retries")
def test_the_archive_copy_still_missing_at_stop_goes_back_to_received(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = FullDisk()
    monkeypatch.setattr("outer_agent.archive.write_durably", disk.write_durably)
    spool, archive = Spool(tmp_path / "inbound"), ArchiveQueue(tmp_path / "archive")
    sender, audit = FakeSender(), FakeAudit()
    envelopes = linked_segment(spool, [b"mail 0", b"mail 1"])
    pipeline = run_pipeline(spool, FakePackager(), sender, audit, archive=archive)
    try:
        wait_for(lambda: len(audit.steps("published")) == 2 and len(disk.refused) >= 2)
    finally:
        pipeline.stop()
    assert sorted(spool.pending()) == sorted(f"{e.mail_id}.0" for e in envelopes)
    disk.full = False  # the next start publishes them again (same bundle ids), then archives
    pipeline = run_pipeline(spool, FakePackager(), sender, audit, archive=archive)
    try:
        wait_for(lambda: len(archive.waiting()) == 2 and sum(spool.counts().values()) == 0)
    finally:
        pipeline.stop()
    assert {b for _, b, _ in sender.published} == {e.bundle_id for e in envelopes}
    assert len(sender.seq_of) == 2


@pytest.mark.usefixtures("quick_retries")
def test_a_quarantine_the_full_disk_refuses_leaves_the_mail_then_keeps_it_with_its_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool, sender, audit = Spool(tmp_path), FakeSender(), FakeAudit()
    envelopes = linked_segment(spool, [b"fine 0", b"CRASH 1", b"fine 2"])
    disk = FullDisk()  # full after the segment was stored (its 250 was given)
    monkeypatch.setattr("outer_agent.spool.write_durably", disk.write_durably)
    pipeline = run_pipeline(spool, FakePackager(), sender, audit, on_failure="quarantine")
    try:
        wait_for(lambda: len(sender.published) == 2 and len(disk.refused) >= 3)
        # the mail is not quarantined yet, and no reason file stands without its mail
        assert audit.steps("quarantined") == []
        assert list(spool.folder("quarantine").iterdir()) == []
        waiting = spool.pending() + spool.claimed()
        assert [n.split(".")[0] for n in waiting] == [envelopes[1].mail_id]
        disk.full = False
        wait_for(lambda: len(audit.steps("quarantined")) == 1)
    finally:
        pipeline.stop()
    kept = spool.folder("quarantine") / envelopes[1].mail_id
    assert SpoolRecord.decode(kept.read_bytes(), str(kept)).payload.startswith(b"CRASH 1 ")
    reason = kept.with_name(kept.name + ".reason").read_text()
    assert reason.startswith("render_crash")
    assert spool.pending() == []
    assert spool.claimed() == []


@pytest.mark.usefixtures("quick_retries")
def test_on_a_real_full_file_system_every_mail_ends_archived_or_quarantined(
    tmp_path: Path,
) -> None:
    """The same on a tmpfs filled to ENOSPC after the segment's 250 (root, as CI runs): even
    a reason file finds no room; nothing is lost and no thread dies."""
    with small_disk(tmp_path / "disk", 1 << 20) as disk:
        spool, archive = Spool(disk / "inbound"), ArchiveQueue(disk / "archive")
        sender, audit = FakeSender(), FakeAudit()
        bodies = [b"fine 0" + b"x" * 20_000, b"CRASH 1" + b"y" * 20_000, b"fine 2" + b"z" * 20_000]
        envelopes = linked_segment(spool, bodies)
        fill(disk)
        pipeline = run_pipeline(spool, FakePackager(), sender, audit, archive=archive,
                                on_failure="quarantine")  # fmt: skip
        try:
            wait_for(lambda: len(audit.steps("published")) == 2)
            time.sleep(0.5)  # several retries against the full disk
            assert archive.waiting() == []
            assert os.listdir(spool.folder("quarantine")) == []
            assert len(spool.claimed()) + len(spool.pending()) == 3  # all still in the spool
            free(disk)
            wait_for(lambda: len(archive.waiting()) == 2 and len(audit.steps("quarantined")) == 1)
            wait_for(lambda: spool.claimed() == [])
        finally:
            pipeline.stop()
        assert sorted(archive.waiting()) == sorted(e.mail_id for e in (envelopes[0], envelopes[2]))
        assert sorted(os.listdir(spool.folder("quarantine"))) == sorted(
            [envelopes[1].mail_id, envelopes[1].mail_id + ".reason"]
        )
        assert sum(spool.counts().values()) == 1  # the quarantined mail
