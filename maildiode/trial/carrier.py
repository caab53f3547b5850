"""Playing the linkage product: ``maildiode carry`` and the trials' carrier thread.

Moves complete files from SRC (a pickup folder) to DST (a delivery folder) the way a
network-linkage product does: copy into a staging folder beside DST (same file system, outside
DST) under a temporary name, fsync, rename into DST, fsync DST, then delete the source.
Only regular files are carried; a file is carried once its size and times stayed the same over
one polling interval, so files still being written are left alone. Sub-folders, symlinks and
other special files are ignored.
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from pathlib import Path

from protocol.durable import write_durably

__all__ = ["Carrier", "Signature", "carry_pass", "snapshot", "staging_for"]

log = logging.getLogger("maildiode.carry")

Signature = tuple[int, int, int]
DELIVERED_FILE_MODE = 0o644  # as a linkage product delivers: the agent may be another user


def snapshot(src: Path) -> dict[str, Signature]:
    found: dict[str, Signature] = {}
    with os.scandir(src) as entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                found[entry.name] = (info.st_size, info.st_mtime_ns, info.st_ino)
    return found


def _carry_one(src: Path, dst: Path, staging: Path, name: str) -> bool:
    """Copy (write_durably: staging, fsync, rename in, fsync DST), then delete the source.
    False when it could not; a file of that name already in DST is never overwritten."""
    try:
        with open(src / name, "rb") as reader:
            write_durably(dst / name, reader, mode=DELIVERED_FILE_MODE, staging=staging,
                          overwrite=False)  # fmt: skip
        os.unlink(src / name)
    except FileExistsError:
        log.warning("carry: %s already exists in %s; leaving it for later", name, dst)
        return False
    except OSError as exc:
        log.warning("carry: %s: %s", name, exc)
        return False
    return True


def carry_pass(
    src: Path, dst: Path, staging: Path, previous: dict[str, Signature]
) -> tuple[int, dict[str, Signature]]:
    """Carry files unchanged since ``previous``; returns (carried, current snapshot)."""
    current = snapshot(src)
    carried = 0
    for name, signature in current.items():
        if previous.get(name) == signature and _carry_one(src, dst, staging, name):
            carried += 1
    remaining = {n: s for n, s in current.items() if (src / n).exists()}
    return carried, remaining


def staging_for(dst: Path) -> Path:
    staging = dst.parent / f".{dst.name}-carry"
    staging.mkdir(mode=0o700, exist_ok=True)
    return staging


class Carrier:
    """``maildiode carry`` in a thread: SRC to DST, like a linkage product."""

    def __init__(self, src: Path, dst: Path, interval_s: float = 0.05) -> None:
        self.src, self.dst, self.interval_s = src, dst, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"carry-{dst.name}", daemon=True)
        self.carried = 0

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        staging = staging_for(self.dst)
        previous: dict[str, tuple[int, int, int]] = {}
        while not self._stop.wait(self.interval_s):
            carried, previous = carry_pass(self.src, self.dst, staging, previous)
            self.carried += carried

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=10)
