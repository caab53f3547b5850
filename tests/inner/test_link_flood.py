"""Issue 15.6 on the inner agent: 20,000 garbage files dropped into the receive folder while the
link thread runs leave the quarantine within its budgets, the log short, and the audit log and
the status saying how many files were refused and deleted."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from inner_agent.link_service import LinkService
from protocol import FolderIntake, Keyring, LinkReader, Receiver
from protocol.refusals import MIN_FILE_COST, QuarantineLimits
from tests.protocol.golden import KEY_A
from tests.protocol.test_quarantine import FLOOD, drop_garbage, quarantine_usage

LIMITS = QuarantineLimits(max_bytes=60 * MIN_FILE_COST, max_files=40, sample_per_reason=10,
                          interval_s=1.0)  # fmt: skip


def test_a_flood_of_garbage_files_is_bounded_summed_up_and_audited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    intake = FolderIntake(tmp_path / "recv", tmp_path / "work", tmp_path / "quarantine",
                          settle_s=0, watch=False, quarantine_limits=LIMITS)  # fmt: skip
    receiver = Receiver(tmp_path / "state", "inbound", Keyring([KEY_A.verify_key]))
    reader = LinkReader(intake, receiver)
    audit = AuditLog(tmp_path / "audit.db", agent="inner")
    service = LinkService(reader, lambda bundle: None, rescan_s=0.2, audit=audit)
    service.start()
    try:
        drop_garbage(tmp_path / "recv", FLOOD)
        deadline = time.monotonic() + 120
        while _audited(audit)[0] < FLOOD and time.monotonic() < deadline:
            time.sleep(0.2)
        refused, dropped = _audited(audit)
        counters = reader.status().counters
    finally:
        service.stop()  # closes the reader
    files, size = quarantine_usage(tmp_path / "quarantine")
    assert files <= LIMITS.max_files
    assert size <= LIMITS.max_bytes
    assert refused == FLOOD
    assert dropped == FLOOD - files // 2 == counters["quarantine_dropped"]
    lines = [r for r in caplog.records if r.name.startswith(("protocol", "inner_agent"))]
    assert len(lines) < 100, len(lines)
    audit.close()


def _audited(audit: AuditLog) -> tuple[int, int]:
    """(refused, dropped) over the ``link_refused`` events so far."""
    events = audit.query(step="link_refused")
    return sum(e.details["refused"] for e in events), sum(e.details["dropped"] for e in events)
