"""A consistent copy of one agent's state while it runs, and putting it back (``maildiode
backup`` / ``maildiode restore``).

What is copied is given as a :class:`BackupPlan` (the command line builds it from the agent's
configuration): state locations (folders or files) and, separately and only on request, the
keys. The copy is made in an order that loses nothing acknowledged before it began:

1. every SQLite database through SQLite's online backup (a transactionally consistent
   snapshot, whatever the agent writes meanwhile; the ``-wal``/``-shm`` companions are not
   copied, the snapshot has everything committed);
2. then every other file, walking the folders again until a walk finds no name it has not
   copied (at most :data:`MAX_PASSES`): a spool file that moved on (received → rendered)
   while the first walk ran is found under its new name by the next. A file copied twice under
   two names means a mail handled twice after a restore — better than once too few (D3).

A database snapshot is taken before the files because the agents write a file before the row
that names it: every file a snapshot names either exists during the walk or was deleted after
the snapshot because its work was done.

The copy ends with ``MANIFEST.json`` (written last, durably): what was copied from where, with
sizes and SHA-256. A folder without it is an unfinished backup, and ``restore`` refuses it.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from protocol.durable import PRIVATE_DIR_MODE, fsync_dir, is_temp_name, write_durably
from protocol.sqlite import copy_database

__all__ = [
    "MANIFEST",
    "BackupError",
    "BackupPlan",
    "BackupReport",
    "StateItem",
    "move_aside",
    "read_manifest",
    "restore_backup",
    "take_backup",
]

MANIFEST = "MANIFEST.json"
FORMAT = 1
MAX_PASSES = 5
SQLITE_MAGIC = b"SQLite format 3\x00"
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")
READ_BLOCK = 1 << 20


class BackupError(Exception):
    """A backup or restore that cannot go on; the message says what and where."""


@dataclass(frozen=True)
class StateItem:
    """One place the agent keeps state: a folder (everything under it) or one file."""

    name: str  # stable label in the manifest, e.g. "spool", "audit"
    path: Path


@dataclass(frozen=True)
class BackupPlan:
    agent: str  # "outer" or "inner"
    config: Path
    state: tuple[StateItem, ...]
    keys: tuple[StateItem, ...] = ()


@dataclass
class BackupReport:
    files: int = 0
    databases: int = 0
    bytes: int = 0
    passes: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)


def take_backup(plan: BackupPlan, dest: Path, *, with_keys: bool = False) -> BackupReport:
    """Copy ``plan``'s state into ``dest`` (absent or empty) and finish with the manifest."""
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty; give a new folder for the backup")
    dest.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    items = list(_distinct(plan.state)) + (list(_distinct(plan.keys)) if with_keys else [])
    report = BackupReport()
    copied: set[tuple[str, str]] = set()
    for item in items:  # step 1: the databases, each a consistent snapshot
        for rel in _files(item):
            if _is_database(item, rel):
                _copy_database(item, rel, dest, report)
                copied.add((item.name, rel))
    while report.passes < MAX_PASSES:  # step 2: the files, until a walk finds nothing new
        report.passes += 1
        new = 0
        for item in items:
            for rel in _files(item):
                if (item.name, rel) not in copied and _copy_file(item, rel, dest, report):
                    copied.add((item.name, rel))
                    new += 1
        if not new:
            break
    _write_manifest(plan, dest, items, report, with_keys)
    return report


def restore_backup(plan: BackupPlan, src: Path, *, with_keys: bool = False) -> BackupReport:
    """Put the backup in ``src`` back where ``plan`` says, after checking every file's hash.

    The agent must be stopped. Each state location must be absent or empty (the caller moves
    an old one aside first); nothing is overwritten."""
    manifest = read_manifest(src)
    if manifest["agent"] != plan.agent:
        raise BackupError(f"{src} is a backup of the {manifest['agent']} agent, not {plan.agent}")
    places = {item.name: item for item in (*plan.state, *(plan.keys if with_keys else ()))}
    entries: list[dict[str, Any]] = [e for e in manifest["entries"] if e["item"] in places]
    _check_hashes(src, entries)
    folders: dict[str, list[str]] = manifest.get("folders", {})
    for name in {str(e["item"]) for e in entries} | (folders.keys() & places.keys()):
        _refuse_occupied(places[name])
    for name, rels in folders.items():
        for rel in rels if name in places else ():
            _inside(places[name].path, rel).mkdir(
                mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True
            )
    report = BackupReport()
    for entry in entries:
        item = places[str(entry["item"])]
        target = item.path if entry["rel"] == "" else item.path / str(entry["rel"])
        target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
        with open(_stored(src, entry), "rb") as stored:
            write_durably(target, stored, overwrite=False)
        report.files += 1
        report.bytes += int(str(entry["size"]))
    return report


def read_manifest(src: Path) -> dict[str, Any]:
    path = src / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupError(
            f"{src} has no {MANIFEST}: not a backup, or one that did not finish"
        ) from None
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path} cannot be read: {exc}") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: format {manifest.get('format')!r}, this version reads {FORMAT}")
    return manifest  # type: ignore[no-any-return]


# -- walking and copying ---------------------------------------------------------------------


def _distinct(items: tuple[StateItem, ...]) -> Iterator[StateItem]:
    """Items not inside another item's folder (the audit log inside the state folder is copied
    once, as part of the folder)."""
    folders = [i.path.resolve() for i in items if i.path.is_dir()]
    seen: set[Path] = set()
    for item in items:
        resolved = item.path.resolve()
        inside = any(f != resolved and resolved.is_relative_to(f) for f in folders)
        if not inside and resolved not in seen:
            seen.add(resolved)
            yield item


def _files(item: StateItem) -> Iterator[str]:
    """Relative names of the regular files of ``item`` ("" for a file item), sorted; temp files
    and SQLite companions left out; symlinks never followed."""
    if item.path.is_file():
        yield ""
        return
    for folder, dirs, names in os.walk(item.path):
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if is_temp_name(name) or name.endswith(SQLITE_COMPANIONS) or path.is_symlink():
                continue
            yield str(path.relative_to(item.path))


def _source(item: StateItem, rel: str) -> Path:
    return item.path if rel == "" else item.path / rel


def _is_database(item: StateItem, rel: str) -> bool:
    try:
        with open(_source(item, rel), "rb") as file:
            return file.read(len(SQLITE_MAGIC)) == SQLITE_MAGIC
    except OSError:
        return False


def _stored_name(item: StateItem, rel: str) -> Path:
    return Path(item.name) / (rel or item.path.name)


def _copy_database(item: StateItem, rel: str, dest: Path, report: BackupReport) -> None:
    target = dest / _stored_name(item, rel)
    target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    copy_database(_source(item, rel), target)
    _record(item, rel, target, dest, report, kind="sqlite")
    report.databases += 1


def _copy_file(item: StateItem, rel: str, dest: Path, report: BackupReport) -> bool:
    """Copy one file; False when it is gone (it moved on; the next walk finds its new name)."""
    target = dest / _stored_name(item, rel)
    target.parent.mkdir(mode=PRIVATE_DIR_MODE, parents=True, exist_ok=True)
    try:
        with open(_source(item, rel), "rb") as source:
            write_durably(target, source, sync_folder=False)
    except FileNotFoundError:
        return False
    _record(item, rel, target, dest, report, kind="file")
    report.files += 1
    return True


def _record(item: StateItem, rel: str, target: Path, dest: Path, report: BackupReport,
            *, kind: str) -> None:  # fmt: skip
    size = target.stat().st_size
    report.bytes += size
    report.entries.append({
        "item": item.name, "rel": rel, "kind": kind, "size": size,
        "sha256": _sha256(target), "stored": str(target.relative_to(dest)),
    })  # fmt: skip


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while block := file.read(READ_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _write_manifest(plan: BackupPlan, dest: Path, items: list[StateItem],
                    report: BackupReport, with_keys: bool) -> None:  # fmt: skip
    for folder in {dest / Path(str(e["stored"])).parent for e in report.entries}:
        fsync_dir(folder)
    manifest = {
        "format": FORMAT,
        "agent": plan.agent,
        "config": str(plan.config),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "with_keys": with_keys,
        "items": {item.name: str(item.path) for item in items},
        "folders": _folders(items),
        "entries": report.entries,
    }
    data = json.dumps(manifest, ensure_ascii=False, indent=1).encode()
    write_durably(dest / MANIFEST, data)


def _folders(items: list[StateItem]) -> dict[str, list[str]]:
    """Per folder item, its folders ("" the item itself), so a restore makes the empty ones
    too: an agent refuses to start when a configured folder is missing."""
    found: dict[str, list[str]] = {}
    for item in items:
        if item.path.is_dir():
            inner = (
                Path(folder, name) for folder, names, _ in os.walk(item.path) for name in names
            )
            found[item.name] = ["", *sorted(str(path.relative_to(item.path)) for path in inner)]
    return found


# -- restoring -------------------------------------------------------------------------------


def _stored(src: Path, entry: dict[str, Any]) -> Path:
    stored = (src / str(entry["stored"])).resolve()
    if not stored.is_relative_to(src.resolve()):  # a manifest edited to reach outside
        raise BackupError(f"{MANIFEST} names {entry['stored']}, outside the backup folder")
    return stored


def _inside(root: Path, rel: str) -> Path:
    path = (root / rel).resolve()
    if not path.is_relative_to(root.resolve()):
        raise BackupError(f"{MANIFEST} names folder {rel!r}, outside {root}")
    return path


def _check_hashes(src: Path, entries: list[dict[str, Any]]) -> None:
    for entry in entries:
        stored = _stored(src, entry)
        if not stored.is_file() or _sha256(stored) != entry["sha256"]:
            raise BackupError(
                f"{stored}: missing or changed since the backup was made (SHA-256 differs);"
                " nothing was restored"
            )


def _refuse_occupied(item: StateItem) -> None:
    path = item.path
    if path.is_file() or (path.is_dir() and any(path.iterdir())):
        raise BackupError(
            f"{path} ({item.name}) is not empty; stop the agent and move it aside"
            " (or give --replace) before restoring"
        )


def move_aside(item: StateItem, stamp: str) -> Path | None:
    """Rename an occupied state location to ``NAME.before-restore-STAMP``; its path, or None."""
    path = item.path
    if not (path.is_file() or (path.is_dir() and any(path.iterdir()))):
        return None
    was_folder = path.is_dir()
    aside = path.with_name(f"{path.name}.before-restore-{stamp}")
    os.rename(path, aside)
    if was_folder:  # the agent expects its configured folders to exist
        path.mkdir(mode=PRIVATE_DIR_MODE)
    return aside
