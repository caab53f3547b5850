"""Receiving side of a folder link. Every file is hostile until verified.

* Only regular files are considered (``lstat``; symlinks, folders, fifos are ignored).
* A file is claimed only after it stopped changing for ``settle_s`` (size, mtime, ctime, inode).
* Claiming is an atomic rename into our private work folder under a name WE generate. All
  operations on the delivery folder use the directory's file descriptor and the entry name the
  kernel listed (which cannot contain ``/``); no path is ever built from a file name or wire data.
* A periodic full rescan is the source of truth; watchdog events only wake the loop early
  (events are lost on network shares and on queue overflow).
* Refused files move to the quarantine folder under a generated name, with a ``.reason.json``
  beside them, within a budget of files and bytes; a flood is summed up in one log line per
  reason and interval (``protocol.quarantine``).
"""

from __future__ import annotations

import errno
import logging
import os
import stat
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from protocol.armor import dearmor, is_armored
from protocol.durable import ensure_private_dir, fsync_dir, remove_temps, write_durably
from protocol.errors import LocalError, Reason, RemoteError
from protocol.limits import DEFAULT_MAX_FILE_BYTES, DEFAULT_SETTLE_S, MAX_CHUNK_FILE_BYTES
from protocol.names import is_our_name, new_name
from protocol.quarantine import Quarantine
from protocol.refusals import QuarantineLimits, RefusalSummary

__all__ = ["ClaimedFile", "FolderIntake"]

log = logging.getLogger("protocol.intake")

ARMOR_EXPANSION = 4 / 3 * 78 / 76  # base64 plus line ends
MAX_TRACKED_FILES = 100_000  # settle bookkeeping: beyond this, older entries are forgotten
MAX_CLAIM_BATCH = 1000  # files claimed per call, so one poll stays short under a flood
READ_BLOCK = 1 << 20


@dataclass(frozen=True, slots=True)
class ClaimedFile:
    """A file we took from the delivery folder. ``original_name`` is untrusted data only."""

    path: Path
    original_name: str
    size: int


@dataclass(slots=True)
class _Seen:
    signature: tuple[int, int, int, int]
    since: float


class FolderIntake:
    """Scan, settle, claim, read and quarantine files of one delivery folder."""

    def __init__(
        self,
        recv_dir: str | Path,
        work_dir: str | Path,
        quarantine_dir: str | Path,
        *,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        settle_s: float = DEFAULT_SETTLE_S,
        watch: bool = True,
        quarantine_limits: QuarantineLimits = QuarantineLimits(),  # noqa: B008 - frozen value
        clock: Callable[[], float] = time.time,
        random_bytes: Callable[[int], bytes] = os.urandom,
    ) -> None:
        self.recv_dir = Path(recv_dir)
        self.recv_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir = ensure_private_dir(Path(work_dir))
        self.max_file_bytes = max_file_bytes
        self.settle_s = settle_s
        self.counters: Counter[str] = Counter()
        for own in (self.work_dir, ensure_private_dir(Path(quarantine_dir))):
            remove_temps(own)  # a write cut short by a crash; only this intake writes here
        self._quarantine = Quarantine(Path(quarantine_dir), quarantine_limits, self.counters,
                                      clock=clock, random_bytes=random_bytes)  # fmt: skip
        self.quarantine_dir = self._quarantine.folder
        self._clock = clock
        self._random_bytes = random_bytes
        self._seen: dict[str, _Seen] = {}
        self._ignored: set[str] = set()
        self._wake = threading.Event()
        self._observer: Any = None
        if watch:
            self._start_watch()

    # -- watching -------------------------------------------------------------------------

    def _start_watch(self) -> None:
        """Watchdog only wakes the loop early; a failure to watch is logged, not fatal."""
        try:
            # Inside the try: without watchdog (or inotify) the periodic rescan alone still works.
            from watchdog.events import (
                FileClosedEvent,
                FileCreatedEvent,
                FileMovedEvent,
                FileSystemEvent,
                FileSystemEventHandler,
            )
            from watchdog.observers import Observer

            wake = self._wake

            class _Wake(FileSystemEventHandler):
                def on_any_event(self, event: FileSystemEvent) -> None:
                    wake.set()

            observer = Observer()
            # Only a file appearing or finished can make work: not every write, attribute
            # change, open or delete (our own claims move files out of this folder).
            arrivals = [FileCreatedEvent, FileMovedEvent, FileClosedEvent]
            observer.schedule(_Wake(), str(self.recv_dir), recursive=False, event_filter=arrivals)
            observer.daemon = True
            observer.start()
            self._observer = observer
        except Exception as exc:  # noqa: BLE001 - watching is optional; the rescan still runs
            log.warning("cannot watch %s (%s); relying on the periodic rescan", self.recv_dir, exc)

    def wait(self, timeout_s: float) -> bool:
        """Sleep until a file event or ``timeout_s``; True when woken by an event."""
        woken = self._wake.wait(timeout_s)
        self._wake.clear()
        return woken

    def close(self) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)
            self._observer = None

    # -- claiming -------------------------------------------------------------------------

    def claim_ready(self, limit: int = MAX_CLAIM_BATCH) -> list[ClaimedFile]:
        """Full scan of the delivery folder; claim every settled regular file (up to ``limit``)."""
        claimed: list[ClaimedFile] = []
        now = self._clock()
        dir_fd = os.open(self.recv_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            present: set[str] = set()
            with os.scandir(dir_fd) as entries:
                for entry in entries:
                    present.add(entry.name)
                    if len(claimed) >= limit:
                        continue
                    item = self._consider(dir_fd, entry, now)
                    if item is not None:
                        claimed.append(item)
            self._forget_absent(present)
        finally:
            os.close(dir_fd)
        if claimed:
            fsync_dir(self.work_dir)
        return claimed

    def _consider(self, dir_fd: int, entry: os.DirEntry[str], now: float) -> ClaimedFile | None:
        name = entry.name
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            return None  # vanished between listing and stat
        if not stat.S_ISREG(info.st_mode):
            self._ignore(name, "not a regular file")
            return None
        if not self._settled(name, info, now):
            return None
        self._seen.pop(name, None)
        return self._claim(dir_fd, name, info.st_size)

    def _settled(self, name: str, info: os.stat_result, now: float) -> bool:
        signature = (info.st_size, info.st_mtime_ns, info.st_ctime_ns, info.st_ino)
        seen = self._seen.get(name)
        if seen is None:
            changed_ago = now - info.st_ctime_ns / 1e9
            if self.settle_s <= 0 or changed_ago >= self.settle_s:
                return True
            if len(self._seen) >= MAX_TRACKED_FILES:
                self._seen.pop(next(iter(self._seen)))
            self._seen[name] = _Seen(signature, now)
            return False
        if seen.signature != signature:
            seen.signature, seen.since = signature, now
            return False
        return now - seen.since >= self.settle_s

    def _forget_absent(self, present: set[str]) -> None:
        for name in [n for n in self._seen if n not in present]:
            del self._seen[name]
        self._ignored &= present

    def _ignore(self, name: str, why: str) -> None:
        if name not in self._ignored:
            self._ignored.add(name)
            self._quarantine.ignored(name, f"{why} (in {self.recv_dir})")

    def _claim(self, dir_fd: int, name: str, size: int) -> ClaimedFile | None:
        work_name = new_name(self._random_bytes, ".chunk")
        work_fd = os.open(self.work_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.rename(name, work_name, src_dir_fd=dir_fd, dst_dir_fd=work_fd)
        except FileNotFoundError:
            return None  # someone else took it
        except OSError as exc:
            if exc.errno != errno.EXDEV:  # the delivery folder is on another file system
                log.warning("cannot claim %r from %s: %s", name, self.recv_dir, exc)
                return None
            if not self._copy_claim(dir_fd, name, work_fd, work_name):
                return None
        finally:
            os.close(work_fd)
        self.counters["claimed"] += 1
        return ClaimedFile(self.work_dir / work_name, _as_data(name), size)

    def _copy_claim(self, dir_fd: int, name: str, work_fd: int, work_name: str) -> bool:
        """Claim across file systems: bounded copy, fsync, then delete the source."""
        try:
            src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError:
            return False
        try:
            if not stat.S_ISREG(os.fstat(src).st_mode):
                return False
            data = _read_bounded(src, self._read_cap() + 1)
        finally:
            os.close(src)
        # The work folder is fsynced once for all claims (claim_ready).
        write_durably(self.work_dir / work_name, data, overwrite=False, sync_folder=False)
        os.unlink(name, dir_fd=dir_fd)
        return True

    def leftovers(self) -> list[ClaimedFile]:
        """Files in the work folder (claimed before a restart); the caller decides what they are."""
        found = []
        with os.scandir(self.work_dir) as entries:
            for entry in entries:
                if entry.is_file(follow_symlinks=False) and is_our_name(entry.name.split(".")[0]):
                    found.append(ClaimedFile(Path(entry.path), "(claimed before restart)", 0))
        return found

    # -- reading --------------------------------------------------------------------------

    def _read_cap(self) -> int:
        return min(self.max_file_bytes, int(MAX_CHUNK_FILE_BYTES * ARMOR_EXPANSION) + 256)

    def read(self, claimed: ClaimedFile) -> bytes:
        """The claimed file's bytes (de-armoured). Raises RemoteError(TOO_LARGE / BAD_ARMOR)."""
        try:
            fd = os.open(claimed.path, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError as exc:
            raise LocalError(f"claimed file {claimed.path} cannot be opened: {exc}") from exc
        try:
            size = os.fstat(fd).st_size
            if size > self._read_cap():
                raise RemoteError(
                    Reason.TOO_LARGE, f"file is {size} bytes, limit {self._read_cap()}"
                )
            untrusted = _read_bounded(fd, self._read_cap() + 1)
        finally:
            os.close(fd)
        if len(untrusted) > self._read_cap():
            raise RemoteError(Reason.TOO_LARGE, "file grew past the size limit while read")
        if is_armored(untrusted):
            raw = dearmor(untrusted)
            self._replace(claimed.path, raw)
            return raw
        return untrusted

    def _replace(self, path: Path, raw: bytes) -> None:
        """Hold the de-armoured chunk, so reassembly reads payloads at their offsets. Not
        synced, a working copy: a power cut can at worst leave it torn, and a torn chunk
        fails verification like any other."""
        write_durably(path, raw, sync_file=False, sync_folder=False)

    def discard(self, path: Path) -> None:
        """Delete a work file we are finished with (delivered or duplicate)."""
        path.unlink(missing_ok=True)

    # -- quarantine -----------------------------------------------------------------------

    def quarantine(
        self, path: Path, reason: Reason, detail: str, original_name: str = ""
    ) -> Path | None:
        """Move a work file to quarantine with a reason file; returns where it went, or None
        when it was deleted instead (over the budget, or past its reason's sample)."""
        return self._quarantine.add(path, reason.value, detail, original_name)

    def refusal_summaries(self) -> list[RefusalSummary]:
        """Refusals summed up per reason since the last call (each already logged once)."""
        return self._quarantine.take_summaries()


def _as_data(name: str) -> str:
    """A listed name as printable data (undecodable bytes shown as escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("ascii", "backslashreplace")


def _read_bounded(fd: int, cap: int) -> bytes:
    parts: list[bytes] = []
    total = 0
    while total < cap:
        block = os.read(fd, min(READ_BLOCK, cap - total))
        if not block:
            break
        parts.append(block)
        total += len(block)
    return b"".join(parts)
