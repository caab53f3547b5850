"""A hand command's state brought to this release as the agent's start does it, and audited
(D71, D98).

The agent's start upgrades every database it has before any store opens and records each
upgrade in its audit log as ``state_migrated`` (agentkit.upgrade). A command run on the old
state before the agent's first start after an upgrade (``maildiode inbound``, ``maildiode
directory``) opened its stores on the old files, which migrated them with the same copy but
no record: the audit log then had no trace of why the schema changed under it. Such a command
now runs the same upgrade on the databases it opens, the audit log's first, and records what
it migrated under the agent's name, as the start would have. Every command that opens an
agent's stores does (D98 amended: account, token, requeue, resend, audit, stats too).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.upgrade import StateDatabase, audit_database, record_upgrades, upgrade_state
from protocol.errors import NewerStateError
from protocol.sqlite import Migrated

__all__ = ["upgrade_or_refusal", "upgrade_recorded"]


def upgrade_recorded(
    databases: Sequence[StateDatabase], audit_path: Path, *, agent: str = "inner"
) -> list[Migrated]:
    """Upgrade the audit log and ``databases`` (those that exist) and record each upgrade as
    ``state_migrated``. Raises ``NewerStateError`` for a newer release's file (nothing after
    it is touched)."""
    migrated = upgrade_state([audit_database(audit_path), *databases])
    if migrated:
        audit = AuditLog(audit_path, agent=agent)
        try:
            record_upgrades(audit, migrated)
        finally:
            audit.close()
    return migrated


def upgrade_or_refusal(
    command: str, databases: Sequence[StateDatabase], audit_path: Path, *, agent: str = "inner"
) -> int | None:
    """:func:`upgrade_recorded`, or exit status 1 after saying in one line on stderr that a
    file is a newer release's (``command`` names who refused: ``requeue``, ``stats``...)."""
    try:
        upgrade_recorded(databases, audit_path, agent=agent)
    except NewerStateError as exc:
        print(f"{command}: {exc}", file=sys.stderr)
        return 1
    return None
