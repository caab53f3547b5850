"""Host figures for the status report: the /proc parsers alone, then a sampler on a fake /proc."""

from __future__ import annotations

from pathlib import Path

from agentkit.hostfigures import (
    CpuTimes,
    HostSampler,
    busy_percent,
    parse_cpu_times,
    parse_meminfo,
    parse_uptime,
)

STAT = "cpu  100 5 50 800 40 3 2 0 0 0\ncpu0 50 2 25 400 20 1 1 0 0 0\nintr 1 2 3\n"
MEMINFO = "MemTotal:        4000000 kB\nMemFree:          100000 kB\nMemAvailable:    3000000 kB\n"


def test_cpu_times_count_idle_and_iowait_as_idle() -> None:
    assert parse_cpu_times(STAT) == CpuTimes(busy=160, total=1000)


def test_cpu_times_refuse_what_is_not_a_stat_file() -> None:
    assert parse_cpu_times("") is None
    assert parse_cpu_times("cpu0 1 2 3 4 5 6 7 8") is None
    assert parse_cpu_times("cpu  1 2 x 4 5 6 7 8") is None
    assert parse_cpu_times("cpu  1 2 3") is None


def test_busy_percent_between_two_readings_and_since_boot() -> None:
    assert busy_percent(None, CpuTimes(160, 1000)) == 16.0
    assert busy_percent(CpuTimes(160, 1000), CpuTimes(460, 1400)) == 75.0
    assert busy_percent(CpuTimes(160, 1000), CpuTimes(160, 1000)) is None  # no time passed
    assert busy_percent(CpuTimes(160, 1000), None) is None


def test_meminfo_in_bytes_and_absent_figures() -> None:
    assert parse_meminfo(MEMINFO) == (4_096_000_000, 3_072_000_000)
    assert parse_meminfo("MemTotal: 100 kB\n") is None  # a kernel before 3.14 has no MemAvailable


def test_uptime() -> None:
    assert parse_uptime("12345.67 2345.00\n") == 12345
    assert parse_uptime("") is None
    assert parse_uptime("soon") is None


def test_sampler_measures_cpu_between_samples_and_reads_the_rest(tmp_path: Path) -> None:
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text(STAT)
    (proc / "meminfo").write_text(MEMINFO)
    (proc / "uptime").write_text("864000.5 100.0\n")
    sampler = HostSampler(tmp_path, proc=proc, hostname=lambda: "mx-1\x1b[31m")
    first = sampler.sample()
    assert first.cpu_percent == 16.0  # since boot
    assert first.hostname == "mx-1[31m"  # no terminal escapes in a figure
    assert (first.uptime_s, first.memory_total, first.memory_available) == (
        864000, 4_096_000_000, 3_072_000_000,
    )  # fmt: skip
    assert first.disk_total is not None
    assert first.disk_free is not None
    assert 0 < first.disk_free <= first.disk_total
    (proc / "stat").write_text("cpu  400 5 50 900 40 3 2 0 0 0\n")
    assert sampler.sample().cpu_percent == 75.0  # (300 busy) / (400 ticks) since the first


def test_sampler_on_a_host_without_proc_says_none(tmp_path: Path) -> None:
    figures = HostSampler(tmp_path / "gone", proc=tmp_path / "none", hostname=lambda: "").sample()
    assert figures.hostname == "unknown"
    assert (figures.cpu_percent, figures.uptime_s, figures.memory_total, figures.disk_total) == (
        None, None, None, None,
    )  # fmt: skip


def test_sampler_on_this_host_gives_every_figure(tmp_path: Path) -> None:
    figures = HostSampler(tmp_path).sample()
    assert figures.uptime_s is not None
    assert figures.uptime_s > 0
    assert figures.cpu_percent is not None
    assert figures.load is not None
    assert len(figures.load) == 3
    assert figures.memory_total is not None
    assert figures.memory_total > 0
