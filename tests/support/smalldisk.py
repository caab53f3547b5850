"""A small file system to fill up: a tmpfs mounted for one test (needs root, as CI has)."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

FILLERS = ("filler", "filler-small")


@contextmanager
def small_disk(mount_point: Path, size_bytes: int) -> Iterator[Path]:
    mount_point.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(mount_point)],
        capture_output=True, text=True,
    )  # fmt: skip
    if mounted.returncode != 0:
        pytest.fail(f"cannot mount a tmpfs (run as root, as CI does): {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def _write_until_full(path: Path, block: bytes) -> int:
    """Append ``block`` to ``path`` until the file system refuses; the errno it refused with."""
    with open(path, "ab", buffering=0) as handle:
        while True:
            try:
                handle.write(block)
            except OSError as exc:
                return exc.errno or 0


def fill(folder: Path, *, leave: int = 0) -> None:
    """Take every free byte of ``folder``'s file system but about ``leave``."""
    filler, small = (folder / name for name in FILLERS)
    assert _write_until_full(filler, b"\0" * (256 << 10)) == errno.ENOSPC
    assert _write_until_full(small, b"\0" * 512) == errno.ENOSPC  # the rest
    if leave:
        os.truncate(filler, max(0, filler.stat().st_size - leave))


def free(folder: Path) -> None:
    for name in FILLERS:
        (folder / name).unlink(missing_ok=True)
