"""The host's figures for a status report: uptime, CPU, load, memory, disk.

Read from ``/proc`` and ``os.statvfs`` (Linux; no psutil): a handful of small files, well under
a millisecond. The parsers are pure (text in, numbers out) and tested alone; a figure the host
does not give (another system, a restricted container) is None, never a guess.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentkit.control import MAX_HOSTNAME_CHARS, HostFigures

__all__ = [
    "CpuTimes",
    "HostSampler",
    "busy_percent",
    "parse_cpu_times",
    "parse_meminfo",
    "parse_uptime",
]

PROC = Path("/proc")
# Columns of /proc/stat's "cpu" line that are idle time: idle and iowait (proc(5)).
_IDLE_COLUMNS = (3, 4)
# Columns counted at all: user .. steal; guest time is already inside user and nice.
_COUNTED_COLUMNS = 8


@dataclass(frozen=True)
class CpuTimes:
    """Cumulative CPU time of all CPUs since boot, in clock ticks."""

    busy: int
    total: int


def parse_cpu_times(stat_text: str) -> CpuTimes | None:
    """The first line of /proc/stat (``cpu  user nice system idle iowait irq softirq steal``)."""
    first = stat_text.split("\n", 1)[0].split()
    if len(first) < 1 + _COUNTED_COLUMNS or first[0] != "cpu":
        return None
    try:
        ticks = [int(value) for value in first[1 : 1 + _COUNTED_COLUMNS]]
    except ValueError:
        return None
    idle = sum(ticks[column] for column in _IDLE_COLUMNS)
    total = sum(ticks)
    return CpuTimes(busy=total - idle, total=total)


def busy_percent(before: CpuTimes | None, now: CpuTimes | None) -> float | None:
    """Busy share of all CPUs between two readings (``before`` None: since boot)."""
    if now is None:
        return None
    start = before or CpuTimes(0, 0)
    elapsed = now.total - start.total
    if elapsed <= 0:
        return None  # the same reading twice, or a counter that went back
    return round(min(100.0, max(0.0, 100.0 * (now.busy - start.busy) / elapsed)), 1)


def parse_meminfo(text: str) -> tuple[int, int] | None:
    """(MemTotal, MemAvailable) in bytes from /proc/meminfo (values there are in KiB)."""
    found: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("MemTotal", "MemAvailable"):
            parts = rest.split()
            if parts and parts[0].isdigit():
                found[key] = int(parts[0]) * 1024
    if len(found) != 2:
        return None
    return found["MemTotal"], min(found["MemAvailable"], found["MemTotal"])


def parse_uptime(text: str) -> int | None:
    """Whole seconds since boot: the first number of /proc/uptime."""
    try:
        return int(float(text.split(maxsplit=1)[0]))
    except (IndexError, ValueError):
        return None


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="ascii", errors="replace")
    except OSError:
        return ""


def _load() -> tuple[float, float, float] | None:
    try:
        one, five, fifteen = os.getloadavg()
    except OSError:
        return None
    return (round(one, 2), round(five, 2), round(fifteen, 2))


def _disk(path: Path) -> tuple[int | None, int | None]:
    try:
        info = os.statvfs(path)
    except OSError:
        return None, None
    return info.f_blocks * info.f_frsize, info.f_bavail * info.f_frsize


class HostSampler:
    """Takes the host's figures; CPU use is measured between one sample and the next."""

    def __init__(self, disk_path: Path, *, proc: Path = PROC,
                 hostname: Callable[[], str] = socket.gethostname) -> None:  # fmt: skip
        self.disk_path = disk_path
        self.proc = proc
        self._hostname = hostname
        self._cpu_before: CpuTimes | None = None

    def sample(self) -> HostFigures:
        cpu_now = parse_cpu_times(_read(self.proc / "stat"))
        percent = busy_percent(self._cpu_before, cpu_now)
        self._cpu_before = cpu_now or self._cpu_before
        memory = parse_meminfo(_read(self.proc / "meminfo"))
        disk_total, disk_free = _disk(self.disk_path)
        return HostFigures(
            hostname=_printable(self._hostname())[:MAX_HOSTNAME_CHARS] or "unknown",
            uptime_s=parse_uptime(_read(self.proc / "uptime")),
            cpu_count=os.cpu_count(),
            cpu_percent=percent,
            load=_load(),
            memory_total=None if memory is None else memory[0],
            memory_available=None if memory is None else memory[1],
            disk_total=disk_total,
            disk_free=disk_free,
        )


def _printable(name: str) -> str:
    return "".join(c for c in name if c.isprintable() and c.isascii())
