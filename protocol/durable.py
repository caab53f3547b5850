"""Durable files: the one place where a file is written temp → fsync → rename → fsync folder.

Every file either agent must not lose or show half-written (spool records, chunk files, key
files, quarantined evidence, the carrier's copies) is written by :func:`write_durably`, and
every move that must survive a power cut by :func:`move_durably` (decision D3). The discipline:

1. create a temp file under a name no other writer uses (``O_EXCL | O_NOFOLLOW``: never an
   existing file, never through a symlink), beside the target or in a staging folder on the
   same file system, with exactly the requested mode;
2. write all of the source into it and fsync it;
3. give it the target's name in one step: ``rename`` (replaces an older file, or a symlink,
   never following it) or, where a caller must never overwrite, ``link`` then ``unlink``
   (fails with FileExistsError when the name is taken);
4. fsync the target's folder, so the new name survives a power cut — or leave that to the
   caller, who writes many files and then syncs their folder once (:func:`fsync_dir`).

On any failure the temp file is removed and the error propagates unchanged as OSError, so
each caller keeps its own reaction (451 at SMTP, LocalError at the link, KeyFileError ...).
Nothing partial is ever visible under the target's name.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

__all__ = [
    "PRIVATE_DIR_MODE",
    "PRIVATE_FILE_MODE",
    "FileFiller",
    "Source",
    "ensure_private_dir",
    "fsync_dir",
    "fsync_file",
    "is_temp_name",
    "move_durably",
    "pwrite_all",
    "remove_temps",
    "write_durably",
]

PRIVATE_DIR_MODE = 0o700  # work, staging and quarantine folders are ours alone
PRIVATE_FILE_MODE = 0o600  # spool records, state, evidence: read by the agent's own user only
COPY_BLOCK = 1 << 20  # a stream source is copied in pieces of this size, never read whole
TEMP_SUFFIX = ".tmp"
MAX_TEMP_STEM = 200  # the target's name in a temp name is cut, so the temp fits NAME_MAX (255)

FileFiller = Callable[[int], None]  # writes one whole file through the given descriptor
Source = bytes | bytearray | memoryview | BinaryIO | FileFiller

_process_token = secrets.token_hex(6)  # temp names of two processes never meet
_temp_counter = itertools.count()  # nor those of two threads (next() is atomic in CPython)


def _new_process_token() -> None:
    global _process_token  # noqa: PLW0603 - a forked child must not reuse its parent's names
    _process_token = secrets.token_hex(6)


os.register_at_fork(after_in_child=_new_process_token)


def write_durably(
    target: Path,
    source: Source,
    *,
    mode: int = PRIVATE_FILE_MODE,
    staging: Path | None = None,
    overwrite: bool = True,
    sync_file: bool = True,
    sync_folder: bool = True,
    on_staged: Callable[[Path], None] | None = None,
) -> None:
    """Make ``target`` hold exactly ``source``, all or nothing, durable when this returns.

    ``source``: bytes, a binary stream to copy from, or a filler writing through a descriptor.
    ``staging``: a folder on the target's file system for the temp file (default: beside the
    target, under a dot-name :func:`is_temp_name` recognises). ``overwrite=False`` refuses an
    existing target with FileExistsError. ``sync_folder=False`` leaves the folder fsync to a
    caller batching many files; ``sync_file=False`` (with it) writes a copy nobody relies on
    after a power cut. ``on_staged(temp)`` runs on the complete, synced temp file before it
    gets its name (the Sender hard-links its kept copy there). Raises what the disk raised
    (OSError), or the source or hook; either way no temp remains.
    """
    temp = temp_path(target, staging)
    _write_temp(temp, source, mode, sync_file=sync_file)
    try:
        if on_staged is not None:
            on_staged(temp)
        _give_name(temp, target, overwrite=overwrite)
    except BaseException:
        _remove_quietly(temp)
        raise
    if sync_folder:
        fsync_dir(target.parent)


def move_durably(moves: Iterable[tuple[Path, Path]], *, sync_sources: bool = True) -> None:
    """Rename each (source, target), then fsync every folder involved once: the targets'
    folders first, so a name is durable where it arrived before it is gone where it was.
    ``sync_sources=False`` leaves the source folders to a caller that moves out of them in a
    batch and syncs them once. A failed rename raises at once, nothing synced."""
    arrived: dict[Path, None] = {}
    left: dict[Path, None] = {}
    for source, target in moves:
        os.rename(source, target)
        arrived[target.parent] = None
        left[source.parent] = None
    for folder in arrived:
        fsync_dir(folder)
    for folder in left if sync_sources else ():
        if folder not in arrived:
            fsync_dir(folder)


def temp_path(target: Path, staging: Path | None = None) -> Path:
    """A name no other writer of this or another process uses, in ``staging`` or beside."""
    folder = target.parent if staging is None else staging
    unique = f"{_process_token}{next(_temp_counter):x}"
    return folder / f".{target.name[:MAX_TEMP_STEM]}.{unique}{TEMP_SUFFIX}"


def is_temp_name(name: str) -> bool:
    """True for the names :func:`temp_path` makes (a reader of a folder skips them)."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def remove_temps(folder: Path) -> int:
    """Delete temp files a crash left in ``folder``; call only where no write is in flight
    (at start, on a folder this process alone writes). Returns how many went."""
    removed = 0
    with os.scandir(folder) as entries:
        for entry in entries:
            if is_temp_name(entry.name) and entry.is_file(follow_symlinks=False):
                _remove_quietly(Path(entry.path))
                removed += 1
    return removed


def _write_temp(temp: Path, source: Source, mode: int, *, sync_file: bool) -> None:
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # exactly ``mode``: the umask may not narrow a pickup file
            _fill(fd, source)
            if sync_file:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        _remove_quietly(temp)
        raise


def _fill(fd: int, source: Source) -> None:
    if isinstance(source, bytes | bytearray | memoryview):
        _write_all(fd, source)
    elif callable(source):
        source(fd)
    else:
        while block := source.read(COPY_BLOCK):
            _write_all(fd, block)


def _give_name(temp: Path, target: Path, *, overwrite: bool) -> None:
    if overwrite:
        os.rename(temp, target)
        return
    os.link(temp, target, follow_symlinks=False)  # FileExistsError when the name is taken
    os.unlink(temp)


def _remove_quietly(temp: Path) -> None:
    """Remove a temp file after a failure; an error here must not hide the failure's own."""
    with contextlib.suppress(OSError):
        os.unlink(temp)


def _write_all(fd: int, data: bytes | bytearray | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def fsync_file(path: Path) -> None:
    """Make a file's metadata durable where its data already is (a new hard link's count)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


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


def pwrite_all(fd: int, data: bytes | memoryview, offset: int) -> None:
    """Write all of ``data`` at ``offset`` (a regular file may take it in parts)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view = view[written:]
        offset += written
