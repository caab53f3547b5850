"""Retention of every store beside the audit log (issue 21.2): quarantines, finished outbound
mail, the approval state. Each store has its own ``[retention]`` setting in days; the audit
upkeep (agentkit.auditsigning) prunes them all once a day, right after the audit log, and
records each prune that deleted something as a ``retention_pruned`` event (store, count, days,
cutoff).

What the law sets (docs/compliance.md, "Retention of each store"): the records of mail
exchanged with the internet are the audit events (≥ 1 year, five by default); these stores
hold the mail itself or working state, which 개인정보의 안전성 확보조치 기준 제13조 asks to
destroy when no longer needed, and nothing is kept past five years (전자금융거래법 제22조: up
to five years, then destroyed). So each setting lies between ``STORE_FLOOR_DAYS`` (an
administrator gets a day to look) and ``STORE_CEILING_DAYS``.

Held mail that is not decided is never a store's to prune: the stores here hold quarantined
files and finished mail only (the held mail's own expiry decides it first).

The link sender's kept chunks (``sent-<stream>/``, for resends) are pruned by the sender itself
after ``[link] resend_window_s``, but only when it publishes: a sender that goes quiet, or the
stream of an outer agent no longer configured, kept them for ever. So the daily pass prunes
them too (``kept_chunks``), every ``sent-*`` folder, by the window rounded up to whole days.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import sqlite3
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from agentkit.retention import DAY_S
from protocol.durable import move_durably, write_durably

__all__ = [
    "REASON_SUFFIXES",
    "STORE_CEILING_DAYS",
    "STORE_FLOOR_DAYS",
    "EventRecorder",
    "StorePrune",
    "kept_chunks",
    "move_into_quarantine",
    "prune_files_older",
    "prune_stores",
]

log = logging.getLogger(__name__)

STORE_FLOOR_DAYS = 1  # a quarantined file stays at least a day, for an administrator to look
STORE_CEILING_DAYS = 1825  # 전자금융거래법 제22조: up to five years, then destroyed
# The reason files kept beside a quarantined file: deleted with it, not counted on their own.
REASON_SUFFIXES = (".reason", ".reason.json")


class EventRecorder(Protocol):
    def record(self, mail_id: str, step: str, **details: object) -> None: ...


@dataclass(frozen=True)
class StorePrune:
    """One store's prune: ``prune(cutoff)`` deletes what is older than ``cutoff`` (seconds
    since the epoch) and returns how many items went."""

    store: str  # the name in ``retention_pruned`` events, e.g. "outer_quarantine"
    days: int
    prune: Callable[[float], int]


def prune_stores(stores: Iterable[StorePrune], audit: EventRecorder, now: float) -> dict[str, int]:
    """Prune each store to its setting and record each prune that deleted something. A store
    that fails is logged and skipped (the next day's pass tries again); the others go on."""
    pruned: dict[str, int] = {}
    for store in stores:
        cutoff = now - store.days * DAY_S
        try:
            count = store.prune(cutoff)
        except (OSError, sqlite3.Error) as exc:
            log.error("retention: pruning %s failed (%s); trying again tomorrow", store.store, exc)
            continue
        pruned[store.store] = count
        if count:
            log.info("retention: %d item(s) of %s older than %d days deleted",
                     count, store.store, store.days)  # fmt: skip
            audit.record("-", "retention_pruned", store=store.store, count=count,
                         days=store.days, before=round(cutoff, 3))  # fmt: skip
    return pruned


def prune_files_older(folder: Path, cutoff: float) -> int:
    """Delete every quarantined item under ``folder`` (its ``released/`` copies too) whose
    files were all last written before ``cutoff``; returns how many files went, reason files
    not counted. An item is the files sharing a name up to its first dot (``bundle-X.bin``
    with ``bundle-X.reason.json``, ``md….chunk`` with ``md….chunk.reason.json``), so a file
    and its reason go together, aged by the younger of them: the reason file is written when
    the file is quarantined, the file itself keeps its older time through the rename. A
    missing folder holds nothing. Symbolic links are neither followed nor deleted."""
    if not folder.is_dir():
        return 0
    deleted = 0
    for parent, _, names in os.walk(folder, followlinks=False):
        items: dict[str, list[Path]] = {}
        for name in names:
            items.setdefault(name.split(".", 1)[0], []).append(Path(parent, name))
        for paths in items.values():
            if all(_older(path, cutoff) for path in paths):
                for path in paths:
                    path.unlink(missing_ok=True)
                deleted += sum(not path.name.endswith(REASON_SUFFIXES) for path in paths)
    return deleted


def move_into_quarantine(
    source: Path, target: Path, reason: bytes, *, reason_path: Path, staging: Path | None = None
) -> None:
    """Move ``source`` into a quarantine folder as ``target``, its reason file first (D87).

    A rename keeps the file's old time, so a file renamed in alone is aged by when it was
    written, not by when it was quarantined: a mail older than the retention, quarantined
    while the prune lists the folder, would be deleted before its reason file exists. Written
    first, the reason file (new, so young) ages the item by its quarantine time from the moment
    the file arrives. A failed move removes the reason file again (the file stays where it
    was, and OSError is raised). A disk with no room even for the reason file (D86) does not
    stop the quarantine, which needs no space itself: the file's time is set to now first
    (the time the prune then ages it by) and it goes in alone, its reason in the log."""
    try:
        write_durably(reason_path, reason, staging=staging, sync_folder=False)
    except OSError as exc:
        log.error("no room for the reason file of %s (%s); quarantined without it, reason: %s",
                  target, exc, reason.decode(errors="replace").strip())  # fmt: skip
        os.utime(source)
        move_durably([(source, target)])
        return
    try:
        move_durably([(source, target)])  # syncs the quarantine folder (the reason too)
    except OSError:
        reason_path.unlink(missing_ok=True)
        raise


def kept_chunks(sender_state: Path, resend_window_s: float) -> StorePrune:
    """The kept chunk copies under ``sender_state`` (the folder an agent gives its senders) as
    a store of the daily pass: older than the resend window, rounded up to whole days, the
    sender would have dropped them at its next publish; never kept past the ceiling."""
    days = math.ceil(resend_window_s / DAY_S)
    days = min(max(days, STORE_FLOOR_DAYS), STORE_CEILING_DAYS)
    return StorePrune("kept_chunks", days, functools.partial(_prune_kept, sender_state))


def _prune_kept(sender_state: Path, cutoff: float) -> int:
    """Every stream's kept chunks, also a stream no longer configured: a bundle's chunk files
    share its seq up to their first dot, so they go together (``prune_files_older``). Empty
    folders stay: the sender may be about to link a chunk into one."""
    if not sender_state.is_dir():
        return 0
    kept = (f for f in sorted(sender_state.glob("sent-*")) if f.is_dir() and not f.is_symlink())
    return sum(prune_files_older(folder, cutoff) for folder in kept)


def _older(path: Path, cutoff: float) -> bool:
    try:
        info = path.lstat()
    except FileNotFoundError:
        return True  # released or deleted meanwhile: nothing of it to keep
    return stat.S_ISREG(info.st_mode) and info.st_mtime < cutoff
