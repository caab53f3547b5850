"""The prune every store shares (agentkit.storeretention) and its place in the audit upkeep:
a quarantined file goes with its reason file, aged by the younger; a broken audit chain stops
every prune; a store that fails does not stop the others."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from zoneinfo import ZoneInfo

from agentkit.retention import DAY_S
from agentkit.storeretention import StorePrune, prune_files_older
from tests.support.retention import START, Upkeep, written


def test_a_file_goes_with_its_reason_aged_by_the_younger(tmp_path: Path) -> None:
    # the file kept its arrival time through the rename; the reason says when it was quarantined
    moved = written(tmp_path / "bundle-a.bin", START - 10 * DAY_S)
    reason = written(tmp_path / "bundle-a.reason.json", START - DAY_S)
    lone = written(tmp_path / "md-b.chunk", START - 10 * DAY_S)
    assert prune_files_older(tmp_path, START - 5 * DAY_S) == 1
    assert [p.exists() for p in (moved, reason, lone)] == [True, True, False]
    assert prune_files_older(tmp_path, START) == 1
    assert list(tmp_path.iterdir()) == []


def test_links_are_neither_followed_nor_deleted(tmp_path: Path) -> None:
    outside = written(tmp_path / "outside" / "keep.eml", START - 10 * DAY_S)
    quarantine = tmp_path / "quarantine"
    quarantine.mkdir()
    (quarantine / "elsewhere").symlink_to(outside.parent)
    (quarantine / "file-link").symlink_to(outside)
    assert prune_files_older(quarantine, START) == 0
    assert outside.exists()
    assert (quarantine / "file-link").is_symlink()


def test_a_missing_folder_holds_nothing(tmp_path: Path) -> None:
    assert prune_files_older(tmp_path / "never-made", START) == 0


def test_a_broken_audit_chain_stops_every_prune(tmp_path: Path) -> None:
    old = written(tmp_path / "q" / "m1", START - 100 * DAY_S)
    stores = [StorePrune("outer_quarantine", 30, lambda cut: prune_files_older(old.parent, cut))]
    upkeep = Upkeep.open(tmp_path / "audit.db", "outer", stores)
    with sqlite3.connect(upkeep.audit.path) as db:
        db.execute("UPDATE events SET mail_id = 'm2' WHERE id = 1")
    upkeep.days_later(1)
    assert old.exists()  # the evidence stays while the chain is broken
    assert upkeep.pruned() == []
    (verified,) = upkeep.events("audit_verified")
    assert verified.details["ok"] is False


def test_a_store_that_fails_is_skipped_and_the_others_pruned(tmp_path: Path) -> None:
    old = written(tmp_path / "q" / "m1", START - 100 * DAY_S)

    def broken(cutoff: float) -> int:
        raise sqlite3.OperationalError("database is locked")

    def unreadable(cutoff: float) -> int:
        raise PermissionError(os.strerror(13))

    stores = [StorePrune("approval", 30, broken), StorePrune("link_quarantine", 30, unreadable),
              StorePrune("outer_quarantine", 30, lambda c: prune_files_older(old.parent, c))]  # fmt: skip
    upkeep = Upkeep.open(tmp_path / "audit.db", "outer", stores)
    upkeep.days_later(1)
    assert not old.exists()
    assert [p["store"] for p in upkeep.pruned()] == ["outer_quarantine"]
    assert upkeep.chain_holds()


def test_the_mail_index_forgets_mails_whose_events_were_pruned(tmp_path: Path) -> None:
    from agentkit.mailindex import MailIndex, MailQuery
    from agentkit.retention import Retention

    upkeep = Upkeep.open(tmp_path / "audit.db", "inner", [])
    upkeep.audit.record("old", "accepted_outbound", mail_from="kim@corp.example",
                        rcpts=["partner@ext.example"])  # fmt: skip
    upkeep.audit.checkpoint(upkeep.key)
    upkeep.clock.now += 400 * DAY_S
    upkeep.audit.record("young", "accepted_outbound", mail_from="lee@corp.example",
                        rcpts=["partner@ext.example"])  # fmt: skip
    index = MailIndex(upkeep.audit.path)
    index.catch_up()  # following the log: its position is past what the prune takes
    assert upkeep.audit.prune(Retention(365, 730, 1095)) == 2  # "received", "old"
    index.catch_up()
    found = index.search(MailQuery(), ZoneInfo("Asia/Seoul"))
    assert [m["id"] for m in found["items"]] == ["young"]
