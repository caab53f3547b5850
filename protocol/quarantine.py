"""The link's quarantine folder: refused files kept as evidence, within a budget.

A refused file moves in under a generated name with a ``.reason.json`` beside it (written with
``durable.write_durably``), while both fit the budget (files and bytes, reason files included,
each file at least one block: ``refusals.QuarantineLimits``) and the reason's sample for the
interval has room; otherwise it is deleted and counted. The first refusal of a quiet reason is
logged by itself; the rest are summed up in one line per reason and interval, and the summaries
wait in ``take_summaries`` for the agent's audit log. The usage is counted from the folder at
start, so the budget holds across restarts, and again before a file is refused for want of
room, so files pruned or released meanwhile free their room in a running agent.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections import Counter, deque
from collections.abc import Callable
from pathlib import Path

from protocol.durable import ensure_private_dir, write_durably
from protocol.names import new_name
from protocol.refusals import (
    Outcome,
    QuarantineLimits,
    QuarantineUsage,
    RefusalDigest,
    RefusalSummary,
    disk_cost,
)

__all__ = ["MAX_NAME_IN_REASON", "MAX_PENDING_SUMMARIES", "Quarantine"]

log = logging.getLogger("protocol.intake")

MAX_NAME_IN_REASON = 255  # original names are recorded as data, cut to a file name's length
# Summaries waiting for an agent to audit them; where nobody asks (the outer agent has no link
# audit) only the latest are kept, and the log has them all.
MAX_PENDING_SUMMARIES = 1000
# A folder's modification time moves in the kernel's coarse clock ticks (a few ms): one read
# this close to now may not show a change made in the same tick.
FOLDER_TIME_GRAIN_NS = 1_000_000_000
# The reason under which entries that are not regular files are summed up (never claimed).
NOT_A_REGULAR_FILE = "not-a-regular-file"


class Quarantine:
    """Keep or delete refused files within ``limits``; count and sum up every refusal."""

    def __init__(
        self,
        folder: Path,
        limits: QuarantineLimits,
        counters: Counter[str],
        *,
        clock: Callable[[], float],
        random_bytes: Callable[[int], bytes],
    ) -> None:
        self.folder = ensure_private_dir(folder)
        self.limits = limits
        self.counters = counters
        self._counted_at: int | None = None
        self._count_usage()
        self._digest = RefusalDigest(limits)
        self._pending: deque[RefusalSummary] = deque(maxlen=MAX_PENDING_SUMMARIES)
        self._clock = clock
        self._random_bytes = random_bytes

    def add(self, path: Path, reason: str, detail: str, original_name: str = "") -> Path | None:
        """Move a work file in with its reason file; None when it was deleted instead."""
        now = self._clock()
        self.flush(now)
        first = self._digest.begin(reason, now)
        self.counters[f"quarantined:{reason}"] += 1
        target = self.folder / new_name(self._random_bytes, ".chunk")
        name = original_name[:MAX_NAME_IN_REASON]
        kept = self._digest.sample_left(reason) and self._keep(
            path, target, reason, detail=detail, name=name, now=now
        )
        if not kept:
            path.unlink(missing_ok=True)
            self.counters["quarantine_dropped"] += 1
        self._digest.count(reason, Outcome.KEPT if kept else Outcome.DROPPED)
        if first:
            self._log_one(target.name, reason, detail, name, kept=kept)
        return target if kept else None

    def ignored(self, name: str, why: str) -> None:
        """A file left in the delivery folder (not a regular file): counted, summed up."""
        now = self._clock()
        self.flush(now)
        self.counters["ignored"] += 1
        if self._digest.begin(NOT_A_REGULAR_FILE, now):
            log.warning("ignoring %r: %s", name, why)
        self._digest.count(NOT_A_REGULAR_FILE, Outcome.IGNORED)

    def flush(self, now: float | None = None) -> None:
        """Log a summary line for every reason whose interval ended; keep it for the audit."""
        for summary in self._digest.due(self._clock() if now is None else now):
            self._pending.append(summary)
            outcomes = ", ".join(f"{n} {o}" for o, n in sorted(summary.outcomes.items()))
            log.warning(
                "%d file(s) refused as %s in the last %.0f s (%s); the quarantine holds "
                "%d of %d files, %d of %d bytes",
                summary.refused, summary.reason, summary.until - summary.since, outcomes,
                self.usage.files, self.limits.max_files, self.usage.bytes, self.limits.max_bytes,
                extra={"reason": summary.reason, "refused": summary.refused},
            )  # fmt: skip

    def take_summaries(self) -> list[RefusalSummary]:
        """The summaries logged since the last call (for the agent's audit log)."""
        self.flush()
        taken = list(self._pending)
        self._pending.clear()
        return taken

    def _keep(
        self, path: Path, target: Path, reason: str, *, detail: str, name: str, now: float
    ) -> bool:
        """Move the file in with its reason file when both fit the budget; False otherwise."""
        try:
            info = os.stat(path)
        except OSError:
            return False  # gone already (nothing to keep)
        cost = disk_cost(info.st_blocks)
        if not self._fits(2, cost + disk_cost(0)):
            return False
        record = {
            "reason": reason, "detail": detail, "original_name": name, "size": info.st_size,
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)), "kept": True,
        }  # fmt: skip
        reason_path = target.with_name(target.name + ".reason.json")
        try:
            write_durably(reason_path, json.dumps(record, indent=1).encode(), mode=0o600)
            os.rename(path, target)
        except OSError as exc:
            log.error("cannot quarantine %s: %s; deleting it", path, exc)
            reason_path.unlink(missing_ok=True)
            return False
        self.usage.add(2, cost + disk_cost(os.stat(reason_path).st_blocks))
        return True

    def _fits(self, files: int, cost: int) -> bool:
        """Whether ``files`` more files costing ``cost`` stay within the budget. Files leave
        the folder behind this object's back (the retention prune, ``maildiode requeue``, an
        administrator), so before a refusal the folder is counted again: the running count
        only ever over-counts, and a folder emptied since is used again at once. The recount
        runs only when the folder changed since the last one (its modification time: a name
        added or removed), so a flood against a full quarantine costs one stat per refusal,
        not a listing (counting 10,000 files took 90 ms here)."""
        if self.usage.fits(files, cost, self.limits):
            return True
        changed = os.stat(self.folder).st_mtime_ns
        if changed == self._counted_at:
            return False  # nothing came or went since the last count: it is still right
        self._count_usage()
        return self.usage.fits(files, cost, self.limits)

    def _count_usage(self) -> None:
        """Count the folder, remembering its modification time first (a change during the
        count shows next time); a time within FOLDER_TIME_GRAIN_NS of now is not remembered,
        since a later change in the same clock tick would leave it unchanged. "Now" is the
        system clock the file system stamps with, not the injected one."""
        changed = os.stat(self.folder).st_mtime_ns
        settled = time.time_ns() - changed > FOLDER_TIME_GRAIN_NS
        self._counted_at = changed if settled else None
        self.usage = _folder_usage(self.folder)

    def _log_one(self, target: str, reason: str, detail: str, name: str, *, kept: bool) -> None:
        outcome = f"quarantined {target}" if kept else "deleted (over the quarantine budget)"
        log.warning(
            "refused a file (%s): %s [original name %r]; %s; further %s refusals are summed "
            "up every %.0f s", reason, detail, name, outcome, reason, self.limits.interval_s,
            extra={"reason": reason, "quarantine_file": target if kept else ""},
        )  # fmt: skip


def _folder_usage(folder: Path) -> QuarantineUsage:
    """What the folder holds now: every regular file, at its cost."""
    usage = QuarantineUsage()
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_file(follow_symlinks=False):
                usage.add(1, disk_cost(entry.stat(follow_symlinks=False).st_blocks))
    return usage
