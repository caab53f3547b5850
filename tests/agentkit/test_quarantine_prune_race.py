"""The retention prune against a quarantine in progress (D87): a file renamed into a quarantine
keeps its old time, so it must never stand there without its (young) reason file, or a prune
listing the folder at that moment deletes a mail older than the retention that was only just
quarantined. The prune is run at every step of each quarantine that moves a file in."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from agentkit.retention import DAY_S
from agentkit.storeretention import prune_files_older
from inner_agent.outbound.spool import Spool as OutboundSpool
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from outer_agent.delivery import DeliveryQueue
from protocol import durable
from tests.support.smalldisk import fill, small_disk

RETENTION_DAYS = 90


class PruneAtEveryStep:
    """Wraps the durable moves and writes: the prune runs before each of them."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.deleted = 0

    def prune(self) -> None:
        self.deleted += prune_files_older(self.folder, time.time() - RETENTION_DAYS * DAY_S)

    def wrap(self, step: Callable[..., Any]) -> Callable[..., Any]:
        def pruned_first(*args: Any, **kwargs: Any) -> Any:
            self.prune()
            return step(*args, **kwargs)

        return pruned_first


def _aged(path: Path, days: float) -> None:
    old = time.time() - days * DAY_S
    os.utime(path, (old, old))


def test_an_old_outbound_mail_quarantined_during_a_prune_keeps_its_file_and_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = OutboundSpool(tmp_path)
    mail_id = new_mail_id()
    spool.store(SpooledMail(mail_id, "kim@corp.example", ("p@ext.example",), 0.0, "::1", "h"),
                b"Subject: waited long\r\n\r\nbody\r\n")  # fmt: skip
    _aged(tmp_path / "mail" / mail_id, RETENTION_DAYS + 10)  # held past the retention
    prunes = PruneAtEveryStep(tmp_path / "quarantine")
    for seam in ("move_durably", "write_durably"):
        for module in ("agentkit.storeretention", "inner_agent.outbound.spool"):
            if hasattr(__import__(module, fromlist=[seam]), seam):
                monkeypatch.setattr(f"{module}.{seam}", prunes.wrap(getattr(durable, seam)))
    spool.quarantine(mail_id, "unreadable after an upgrade")
    prunes.prune()  # and once right after
    assert prunes.deleted == 0
    kept = tmp_path / "quarantine" / mail_id
    assert kept.read_bytes().startswith(b"MDOUT1\n")
    assert kept.with_name(f"{mail_id}.reason").read_text() == "unreadable after an upgrade\n"


def test_an_old_unreadable_delivery_queue_file_is_quarantined_with_a_reason_and_kept(
    tmp_path: Path,
) -> None:
    queue = DeliveryQueue(tmp_path)
    torn = tmp_path / "queue" / f"{'ab' * 16}.{'cd' * 16}"
    torn.write_bytes(b"MDSPOOL 1\n9999\n{")
    _aged(torn, RETENTION_DAYS + 10)  # queued long ago, by a version that left it torn
    assert queue.items() == []
    assert prune_files_older(tmp_path / "quarantine", time.time() - RETENTION_DAYS * DAY_S) == 0
    kept = tmp_path / "quarantine" / torn.name
    assert kept.read_bytes() == b"MDSPOOL 1\n9999\n{"
    assert kept.with_name(torn.name + ".reason").read_text().startswith("unreadable: ")
    # aged by its quarantine time: pruned once that is past the retention
    later = time.time() + (RETENTION_DAYS + 1) * DAY_S
    assert prune_files_older(tmp_path / "quarantine", later - RETENTION_DAYS * DAY_S) == 1
    assert list((tmp_path / "quarantine").iterdir()) == []


def test_on_a_full_disk_the_quarantine_needs_no_room_and_the_prune_still_waits(
    tmp_path: Path,
) -> None:
    """No room even for the reason file (a real full tmpfs): the mail still goes into the
    quarantine (a rename needs none), its time set to its quarantine time. Before, reason
    first (D87) left it in ``mail/`` with the error swallowed by the caller, where the next
    scan removed it as a finished mail's leftover; moved first, it was pruned at once."""
    with small_disk(tmp_path / "disk", 1 << 20) as disk:
        spool = OutboundSpool(disk)
        mail_id = new_mail_id()
        spool.store(SpooledMail(mail_id, "kim@corp.example", ("p@ext.example",), 0.0, "::1",
                                "h"), b"Subject: waited long\r\n\r\nbody\r\n")  # fmt: skip
        _aged(disk / "mail" / mail_id, RETENTION_DAYS + 10)
        fill(disk)
        spool.quarantine(mail_id, "unreadable after an upgrade")
        assert spool.ids() == []
        kept = disk / "quarantine" / mail_id
        assert kept.read_bytes().startswith(b"MDOUT1\n")
        cutoff = time.time() - RETENTION_DAYS * DAY_S
        assert prune_files_older(disk / "quarantine", cutoff) == 0
        assert kept.exists()
