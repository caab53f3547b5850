"""Small durable-file helpers shared by the transports and the intake."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["ensure_private_dir", "fsync_dir", "pwrite_all", "write_durably"]

PRIVATE_DIR_MODE = 0o700  # work, staging and quarantine folders are ours alone


def fsync_dir(path: Path | int) -> None:
    """Make renames and unlinks in a folder durable."""
    if isinstance(path, int):
        os.fsync(path)
        return
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_private_dir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True, mode=PRIVATE_DIR_MODE)
    return path


def write_durably(path: Path, data: bytes, *, mode: int = 0o644, sync: bool = True) -> None:
    """Create ``path`` exclusively, write all of ``data``, and fsync it (unless ``sync`` is off).

    If anything fails (a full disk, say) the half-written file is removed: we created it, and a
    truncated file left behind would later look like a damaged one."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if sync:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (a regular file may take it in parts)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
