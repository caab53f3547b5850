"""CPU seconds per process and per thread from /proc (Linux), for the benchmarks.

A process's own time is the scheduler's run time of its threads (``/proc/PID/task/*/schedstat``,
nanoseconds); ``utime + stime`` from ``/proc/PID/stat`` count in clock ticks (``SC_CLK_TCK``,
100 per second) and are used only where schedstat is missing. At 10 ms per process a round of
Postfix's small, short-lived processes was off by a tenth. The time of children a process has
reaped is ``cutime + cstime`` (ticks; a Postfix master collects the time of every service
process that exited).
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


def _parse(pid: int, stat: str, run_s: float | None = None) -> ProcCpu:
    name = stat[stat.index("(") + 1 : stat.rindex(")")]
    fields = stat.rpartition(")")[2].split()
    own = (int(fields[11]) + int(fields[12])) / _TICKS if run_s is None else run_s
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return ProcCpu(pid, int(fields[1]), name, own, reaped)


def _run_time(task_dir: Path) -> float | None:
    """Seconds on a CPU of every thread under ``task_dir`` (None without schedstat)."""
    total = 0
    try:
        for task in os.listdir(task_dir):
            total += int((task_dir / task / "schedstat").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return total / 1e9


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
        table[int(entry)] = _parse(int(entry), stat, _run_time(Path(f"/proc/{entry}/task")))
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
    task = Path(f"/proc/self/task/{native_id}")
    try:
        return int((task / "schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return _parse(native_id, (task / "stat").read_text()).own_s
