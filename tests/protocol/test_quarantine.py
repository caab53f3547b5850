"""Issue 15.6: the link's quarantine is bounded in files and bytes, and a flood of refused files
is summed up in a few log lines instead of one line (and two files) per file."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import pytest

from protocol import FolderIntake, Keyring, LinkReader, Reason, Receiver
from protocol.refusals import (
    DEFAULT_MAX_QUARANTINE_BYTES,
    DEFAULT_MAX_QUARANTINE_FILES,
    MIN_FILE_COST,
    Outcome,
    QuarantineLimits,
    RefusalDigest,
    disk_cost,
)
from tests.protocol.conftest import FakeClock
from tests.protocol.golden import KEY_A

FLOOD = 20_000


def drop_garbage(folder: Path, count: int) -> None:
    """Half empty files, half small garbage (1-200 bytes), as the attacker dropped them."""
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"junk-{index}.mdc").write_bytes(os.urandom(index % 200) if index % 2 else b"")


def quarantine_usage(folder: Path) -> tuple[int, int]:
    """(files, bytes) as the budget counts them: every file at least one block."""
    sizes = [disk_cost(os.lstat(p).st_blocks) for p in folder.iterdir() if p.is_file()]
    return len(sizes), sum(sizes)


def open_reader(root: Path, clock: FakeClock, **intake_options: object) -> LinkReader:
    intake = FolderIntake(root / "recv", root / "work", root / "quarantine", settle_s=0,
                          watch=False, clock=clock, **intake_options)  # type: ignore[arg-type]  # fmt: skip
    keyring = Keyring([KEY_A.verify_key])
    return LinkReader(intake, Receiver(root / "state", "inbound", keyring, clock=clock))


def drain(reader: LinkReader, recv: Path) -> None:
    while any(recv.iterdir()):
        reader.poll(lambda bundle: None)


def link_log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name.startswith("protocol")]


def test_twenty_thousand_garbage_files_stay_within_the_default_budget_and_log(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The attack as reported, with the default configuration: the old code kept every file
    and a reason file beside it (40,000 files) and logged one line per file."""
    caplog.set_level(logging.INFO)
    reader = open_reader(tmp_path, FakeClock())
    drop_garbage(tmp_path / "recv", FLOOD)
    drain(reader, tmp_path / "recv")
    files, size = quarantine_usage(tmp_path / "quarantine")
    assert files <= DEFAULT_MAX_QUARANTINE_FILES
    assert size <= DEFAULT_MAX_QUARANTINE_BYTES
    assert len(link_log_lines(caplog)) < 100
    counters = reader.status().counters
    refused = sum(v for k, v in counters.items() if k.startswith("quarantined:"))
    assert refused == FLOOD
    assert counters["quarantine_dropped"] == FLOOD - files // 2
    reader.close()


def test_small_budgets_hold_and_each_interval_is_summed_up_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    limits = QuarantineLimits(max_bytes=40 * MIN_FILE_COST, max_files=30, sample_per_reason=8,
                              interval_s=10.0)  # fmt: skip
    reader = open_reader(tmp_path, clock, quarantine_limits=limits)
    for _ in range(3):  # three intervals of flood
        drop_garbage(tmp_path / "recv", 500)
        drain(reader, tmp_path / "recv")
        clock.advance(10.0)
    reader.poll(lambda bundle: None)  # the last interval ends
    files, size = quarantine_usage(tmp_path / "quarantine")
    assert files <= 30
    assert size <= 40 * MIN_FILE_COST
    summaries = reader.refusal_summaries()
    assert sum(s.refused for s in summaries) == 1500
    dropped = sum(s.outcomes.get(Outcome.DROPPED, 0) for s in summaries)
    assert dropped == 1500 - files // 2 == reader.status().counters["quarantine_dropped"]
    lines = link_log_lines(caplog)
    reasons = {s.reason for s in summaries}
    assert len(lines) <= len(reasons) * 4  # per reason: the first refusal, one per interval
    assert all(str(s.refused) in " ".join(lines) for s in summaries)
    reader.close()


def test_the_budget_survives_a_restart(tmp_path: Path) -> None:
    limits = QuarantineLimits(max_files=4, sample_per_reason=100)
    reader = open_reader(tmp_path, FakeClock(), quarantine_limits=limits)
    drop_garbage(tmp_path / "recv", 10)
    drain(reader, tmp_path / "recv")
    reader.close()
    assert quarantine_usage(tmp_path / "quarantine")[0] == 4
    again = open_reader(tmp_path, FakeClock(), quarantine_limits=limits)
    drop_garbage(tmp_path / "recv", 10)
    drain(again, tmp_path / "recv")
    assert quarantine_usage(tmp_path / "quarantine")[0] == 4  # re-counted, not started at zero
    assert again.status().counters["quarantine_dropped"] == 8 + 10  # persistent counter
    again.close()


def test_empty_files_count_at_least_a_block() -> None:
    assert disk_cost(0) == MIN_FILE_COST
    assert disk_cost(8) == MIN_FILE_COST
    assert disk_cost(16) == 16 * 512


def test_ignored_entries_are_summed_up_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    clock = FakeClock()
    intake = FolderIntake(tmp_path / "recv", tmp_path / "work", tmp_path / "q", settle_s=0,
                          watch=False, clock=clock,
                          quarantine_limits=QuarantineLimits(interval_s=5))  # fmt: skip
    for index in range(300):
        (tmp_path / "recv" / f"d{index}").mkdir()
    intake.claim_ready()
    clock.advance(5)
    (summary,) = intake.refusal_summaries()
    assert summary.outcomes == {"ignored": 300}
    assert intake.counters["ignored"] == 300
    assert len(link_log_lines(caplog)) == 2


# --------------------------------------------------------------------------- the digest alone


def test_digest_logs_the_first_refusal_then_one_summary_per_interval() -> None:
    digest = RefusalDigest(QuarantineLimits(sample_per_reason=2, interval_s=10))
    firsts = []
    for second in range(25):  # a refusal a second for 25 s
        firsts.append(digest.begin("bad-magic", float(second)))
        digest.count("bad-magic", Outcome.KEPT if digest.sample_left("bad-magic") else
                     Outcome.DROPPED)  # fmt: skip
        assert digest.due(float(second)) == [] or second in (10, 20)
    assert firsts.count(True) == 1


def test_digest_windows_end_with_summaries_and_quiet_reasons_close() -> None:
    digest = RefusalDigest(QuarantineLimits(sample_per_reason=1, interval_s=10))
    for now in (0.0, 1.0, 2.0):
        digest.begin("too-short", now)
        outcome = Outcome.KEPT if digest.sample_left("too-short") else Outcome.DROPPED
        digest.count("too-short", outcome)
    (summary,) = digest.due(10.0)
    assert (summary.reason, summary.refused, summary.since, summary.until) == (
        "too-short", 3, 0.0, 10.0)  # fmt: skip
    assert summary.outcomes == {"kept": 1, "dropped": 2}
    assert digest.due(20.0) == []  # nothing in the next interval: the reason is quiet again
    assert digest.begin("too-short", 21.0) is True
    digest.count("too-short", Outcome.KEPT)
    assert digest.due(31.0) == []  # one refusal, logged by itself and kept: nothing to add


def test_digest_reports_a_single_dropped_refusal() -> None:
    digest = RefusalDigest(QuarantineLimits(sample_per_reason=0))
    digest.begin("bad-magic", 0.0)
    assert not digest.sample_left("bad-magic")
    digest.count("bad-magic", Outcome.DROPPED)
    (summary,) = digest.due(60.0)
    assert summary.outcomes == {"dropped": 1}


def test_quarantine_reason_codes_are_summed_up_separately(tmp_path: Path) -> None:
    clock = FakeClock()
    intake = FolderIntake(tmp_path / "recv", tmp_path / "work", tmp_path / "q", settle_s=0,
                          watch=False, clock=clock,
                          quarantine_limits=QuarantineLimits(interval_s=1))  # fmt: skip
    drop_garbage(tmp_path / "recv", 6)
    for index, claimed in enumerate(intake.claim_ready()):
        reason = Reason.BAD_MAGIC if index % 2 else Reason.TRUNCATED
        intake.quarantine(claimed.path, reason, "x")
    clock.advance(1)
    summaries = intake.refusal_summaries()
    assert {s.reason: s.refused for s in summaries} == {"bad-magic": 3, "truncated": 3}


def test_the_socket_link_has_the_same_budget(tmp_path: Path) -> None:
    """Frames from a diode proxy become files of a FolderIntake: the same quarantine."""
    from protocol import TcpTransport
    from protocol.tcp_intake import TcpIntake

    limits = QuarantineLimits(max_files=4)
    intake = TcpIntake("127.0.0.1", 0, tmp_path / "spool", tmp_path / "work", tmp_path / "q",
                       quarantine_limits=limits)  # fmt: skip
    try:
        transport = TcpTransport(*intake.address)
        transport.publish_chunks([b"garbage %d" % i for i in range(10)])
        transport.close()
        claimed = []
        deadline = time.monotonic() + 10
        while len(claimed) < 10 and time.monotonic() < deadline:
            claimed += intake.claim_ready()
        for item in claimed:
            intake.quarantine(item.path, Reason.BAD_MAGIC, "garbage")
    finally:
        intake.close()
    assert len(claimed) == 10
    assert quarantine_usage(tmp_path / "q")[0] == 4
    assert intake.counters["quarantine_dropped"] == 8


def test_room_freed_while_running_is_used_again(tmp_path: Path) -> None:
    """The budget is counted again before a refusal: files the retention prune (or a requeue)
    took out of the folder of a running agent free their room (they were counted only at
    start, so a long-running agent dropped every refused file once the budget had been full)."""
    limits = QuarantineLimits(max_files=4, sample_per_reason=100)
    reader = open_reader(tmp_path, FakeClock(), quarantine_limits=limits)
    drop_garbage(tmp_path / "recv", 3)
    drain(reader, tmp_path / "recv")
    quarantine = tmp_path / "quarantine"
    assert quarantine_usage(quarantine)[0] == 4  # two kept with their reasons, one dropped
    for kept in quarantine.iterdir():  # the daily prune, or maildiode requeue
        kept.unlink()
    drop_garbage(tmp_path / "recv", 3)
    drain(reader, tmp_path / "recv")
    assert quarantine_usage(quarantine)[0] == 4  # kept again, within the budget
    assert reader.status().counters["quarantine_dropped"] == 1 + 1
    reader.close()
