"""CPU seconds per process and per thread from /proc (Linux), for the benchmarks.

A process's own time is its ``utime + stime``; the time of its children that it has reaped is
``cutime + cstime`` (a Postfix master collects the time of every service process that exited).
Both are read in clock ticks (``SC_CLK_TCK``, 100 per second), so a figure is meant to be a
difference over a run of seconds, not a single mail.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["ProcCpu", "cmdline", "descendants", "snapshot", "thread_cpu"]

_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class ProcCpu:
    """One process as /proc showed it at a snapshot."""

    pid: int
    ppid: int
    name: str  # the kernel's command name (``comm``): "smtpd", "python", ...
    own_s: float  # utime + stime
    reaped_s: float  # cutime + cstime: children that exited and were waited for

    @property
    def total_s(self) -> float:
        return self.own_s + self.reaped_s


def _parse(pid: int, stat: str) -> ProcCpu:
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat.rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / _TICKS
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return ProcCpu(pid, int(fields[1]), name, own, reaped)


def snapshot() -> dict[int, ProcCpu]:
    """Every process now: pid -> ProcCpu (processes that vanish while read are left out)."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        table[int(entry)] = _parse(int(entry), stat)
    return table


def descendants(table: dict[int, ProcCpu], roots: Iterable[int]) -> set[int]:
    """``roots`` and every process below them in ``table``."""
    children: dict[int, list[int]] = {}
    for process in table.values():
        children.setdefault(process.ppid, []).append(process.pid)
    found = set(roots)
    frontier = list(found)
    while frontier:
        for child in children.get(frontier.pop(), []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def thread_cpu(native_id: int | None) -> float:
    """CPU seconds of one thread of this process (e.g. a carrier thread in the benchmark)."""
    if native_id is None:
        return 0.0
    stat = Path(f"/proc/self/task/{native_id}/stat").read_text()
    return _parse(native_id, stat).own_s
