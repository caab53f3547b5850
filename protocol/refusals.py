"""What the link's quarantine may hold, and refusals summed up per reason and interval.

Issue 15.6: 20,000 empty files dropped into the receive folder became 40,029 files in the
quarantine and 20,000 log lines, because empty files cost nothing against a byte budget and
reason files were never counted. Here the budget counts files *and* bytes (each file at least
one block), a flood keeps only a sample, and it is logged once per reason and interval.

Pure: sizes, counts and times in, decisions and summaries out; the folder work is
``protocol.quarantine``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

__all__ = [
    "DEFAULT_MAX_QUARANTINE_BYTES",
    "DEFAULT_MAX_QUARANTINE_FILES",
    "DEFAULT_QUARANTINE_SAMPLE",
    "DEFAULT_REFUSAL_INTERVAL_S",
    "MIN_FILE_COST",
    "Outcome",
    "QuarantineLimits",
    "QuarantineUsage",
    "RefusalDigest",
    "RefusalSummary",
    "disk_cost",
]

# An empty file still takes an inode and a directory entry: every file costs at least a block.
MIN_FILE_COST = 4096
DEFAULT_MAX_QUARANTINE_BYTES = 2 << 30  # 2 GiB: the quarantine cannot fill the disk
# Files held, reason files included: a folder an operator can still list, read and clear.
DEFAULT_MAX_QUARANTINE_FILES = 10_000
# Refused files kept per reason and interval: enough evidence to diagnose, never a flood.
DEFAULT_QUARANTINE_SAMPLE = 100
# A flood is logged (and audited) once per reason per minute, with its count.
DEFAULT_REFUSAL_INTERVAL_S = 60.0


@dataclass(frozen=True, slots=True)
class QuarantineLimits:
    """The quarantine's budget and how refusals are summed up (see the constants above)."""

    max_bytes: int = DEFAULT_MAX_QUARANTINE_BYTES
    max_files: int = DEFAULT_MAX_QUARANTINE_FILES
    sample_per_reason: int = DEFAULT_QUARANTINE_SAMPLE
    interval_s: float = DEFAULT_REFUSAL_INTERVAL_S


def disk_cost(blocks_512: int) -> int:
    """What a file costs the budget: its blocks on disk (``st_blocks``), at least one block."""
    return max(blocks_512 * 512, MIN_FILE_COST)


@dataclass(slots=True)
class QuarantineUsage:
    """Files and bytes the quarantine folder holds (counted from the folder at start and
    before a refusal for want of room; added to as files are kept)."""

    files: int = 0
    bytes: int = 0

    def fits(self, files: int, cost: int, limits: QuarantineLimits) -> bool:
        """Whether ``files`` more files costing ``cost`` bytes stay within both budgets."""
        return self.files + files <= limits.max_files and self.bytes + cost <= limits.max_bytes

    def add(self, files: int, cost: int) -> None:
        self.files += files
        self.bytes += cost


class Outcome(StrEnum):
    """What became of one refused file."""

    KEPT = "kept"  # moved into the quarantine with its reason file
    DROPPED = "dropped"  # deleted: over the budget, or past the reason's sample this interval
    IGNORED = "ignored"  # left where it is: not a regular file, never claimed


@dataclass(frozen=True, slots=True)
class RefusalSummary:
    """The refusals of one reason in one interval."""

    reason: str
    since: float
    until: float
    outcomes: Mapping[str, int]

    @property
    def refused(self) -> int:
        return sum(self.outcomes.values())


@dataclass(slots=True)
class _Window:
    since: float
    first_logged: bool  # its first refusal was logged by itself
    outcomes: Counter[str] = field(default_factory=Counter)


class RefusalDigest:
    """Refusals per reason, in windows of ``interval_s``.

    The first refusal of a quiet reason is logged by itself (``begin`` says so); the others are
    only counted, and summed up once when the window ends (``due``). A window that ends with
    refusals in it is followed at once by the next, so a flood is summed up once per interval
    and never logged file by file; a window that ends empty closes, and the reason is quiet.
    Within a window the first ``sample_per_reason`` files may be kept, the rest are dropped.
    """

    def __init__(self, limits: QuarantineLimits) -> None:
        self._limits = limits
        self._windows: dict[str, _Window] = {}

    def begin(self, reason: str, now: float) -> bool:
        """A refusal of ``reason`` starts; True when it is the first of a quiet spell."""
        if reason in self._windows:
            return False
        self._windows[reason] = _Window(now, first_logged=True)
        return True

    def sample_left(self, reason: str) -> bool:
        """Whether this interval's sample of ``reason`` has room for one more kept file."""
        window = self._windows.get(reason)
        kept = window.outcomes[Outcome.KEPT] if window else 0
        return kept < self._limits.sample_per_reason

    def count(self, reason: str, outcome: Outcome) -> None:
        self._windows[reason].outcomes[outcome] += 1

    def due(self, now: float) -> list[RefusalSummary]:
        """Summaries of the windows that ended by ``now`` (each followed by the next window)."""
        summaries = []
        for reason, window in list(self._windows.items()):
            if now - window.since < self._limits.interval_s:
                continue
            unlogged = window.outcomes.total() - (1 if window.first_logged else 0)
            if unlogged > 0 or window.outcomes[Outcome.DROPPED]:
                summaries.append(RefusalSummary(reason, window.since, now, dict(window.outcomes)))
                self._windows[reason] = _Window(now, first_logged=False)
            else:
                del self._windows[reason]
        return summaries
