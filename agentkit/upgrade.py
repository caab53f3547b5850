"""Upgrading an agent's state at start (issue 22.6; decision "Versioned state").

Before any store opens, the agent brings every state database it has to this release's
version (``protocol.sqlite.upgrade_database``: a copy beside the file first, then the missing
migrations in one transaction), and then records each upgrade in its audit log as
``state_migrated`` (store, from, to, file, backup). Every file's version is read first: a
database from a newer release stops the start with ``NewerStateError`` (one line, exit 2:
``maildiode.commands.agent_start``) before any file is upgraded (D109; before, the files
listed ahead of it — the audit log first — were already migrated).

A store opened on an older file by anything else (a test) migrates it too, with the same copy,
unaudited; the hand commands run this upgrade first and audit it as the start does (D98,
``maildiode.commands.state_upgrade``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from agentkit.audit import VERSIONS as AUDIT_VERSIONS
from agentkit.audit import AuditLog
from agentkit.leasekeeper import LEASE_DB
from agentkit.leasekeeper import VERSIONS as LEASE_VERSIONS
from protocol.receiver import VERSIONS as RECEIVER_VERSIONS
from protocol.sender import VERSIONS as SENDER_VERSIONS
from protocol.sqlite import Migrated, StoreVersions, found_version, upgrade_database

__all__ = [
    "Found",
    "StateDatabase",
    "audit_database",
    "check_state",
    "lease_database",
    "link_databases",
    "record_upgrades",
    "upgrade_state",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StateDatabase:
    """Where a store keeps its file(s): a path, or a folder and a name pattern (``sender-*.db``:
    one file per link stream)."""

    folder: Path
    pattern: str
    versions: StoreVersions

    @classmethod
    def at(cls, path: Path, versions: StoreVersions) -> StateDatabase:
        return cls(path.parent, path.name, versions)

    def files(self) -> list[Path]:
        return sorted(p for p in self.folder.glob(self.pattern) if p.is_file())


def audit_database(path: Path) -> StateDatabase:
    return StateDatabase.at(path, AUDIT_VERSIONS)


def lease_database(state_dir: Path) -> StateDatabase:
    """The inner agent's fencing lease (``lease.db``): upgraded before the lease is taken."""
    return StateDatabase(state_dir, LEASE_DB, LEASE_VERSIONS)


def link_databases(state_dir: Path) -> list[StateDatabase]:
    """The link ends' state in ``state_dir``: senders and receivers, one file per stream."""
    return [
        StateDatabase(state_dir, "sender-*.db", SENDER_VERSIONS),
        StateDatabase(state_dir, "receiver-*.db", RECEIVER_VERSIONS),
    ]


@dataclass(frozen=True)
class Found:
    """One existing file before an upgrade: its store, the version it is at and this
    release's (what ``maildiode upgrade`` shows for the files it leaves as they are)."""

    store: str
    path: Path
    version: int
    current: int


def check_state(databases: Iterable[StateDatabase]) -> list[Found]:
    """Every existing file of ``databases`` and its version, changing nothing. Raises
    ``NewerStateError`` naming the first file of a newer release."""
    found = []
    for database in databases:
        versions = database.versions
        for path in database.files():
            version = found_version(path, versions)
            if version is not None:
                found.append(Found(versions.store, path, version, versions.version))
    return found


def upgrade_state(databases: Iterable[StateDatabase]) -> list[Migrated]:
    """Every existing file of ``databases`` at this release's version; what was migrated.
    Raises ``NewerStateError`` for a file of a newer release before any file is changed
    (:func:`check_state` first)."""
    databases = list(databases)
    check_state(databases)
    done = []
    for database in databases:
        for path in database.files():
            migrated = upgrade_database(path, database.versions)
            if migrated is not None:
                log.warning(
                    "upgraded %s (%s) from schema version %d to %d; the copy from before is %s",
                    path, migrated.store, migrated.from_version, migrated.to_version,
                    migrated.backup,
                )  # fmt: skip
                done.append(migrated)
    return done


def record_upgrades(audit: AuditLog, migrated: Iterable[Migrated]) -> None:
    """One ``state_migrated`` event per upgraded file (mail id "-")."""
    events = [
        ("-", "state_migrated", {"store": m.store, "from": m.from_version, "to": m.to_version,
                                 "file": str(m.path), "backup": str(m.backup)})
        for m in migrated
    ]  # fmt: skip
    if events:
        audit.record_many(events)
