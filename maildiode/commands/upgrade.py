"""``maildiode upgrade -c CONFIG [--json]``: bring an agent's state to this release, and say
what each store was and became (D109).

The agent's start does the same (``agentkit.upgrade``); this is the step an operator runs (the
agent stopped) after installing a release, before starting it, to see the upgrade and its
copies before any mail moves. Every database of the agent's state is listed: its store, its
file, the version it was at and the one it is at now, with the copy an upgrade left beside it.
Each upgrade is recorded in the agent's audit log as ``state_migrated``, as at start.

Refused, nothing changed: a newer release's file anywhere (exit 1, one line naming its store and
file: every file's version is read before any is upgraded); on the inner agent's standby host
(exit 4: another host's agent holds the state, maildiode.commands.standby_guard). Exit 0
otherwise, also when nothing was to do.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog
from agentkit.upgrade import Found, StateDatabase, check_state, record_upgrades, upgrade_state
from maildiode.commands.check import config_for_command
from maildiode.commands.standby_guard import EXIT_STANDBY, standby_refusal
from protocol.errors import NewerStateError
from protocol.sqlite import Migrated

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    if agent == "inner" and (refusal := standby_refusal("upgrade", config.state.dir,
                                                        config.lease)):  # fmt: skip
        print(refusal, file=sys.stderr)
        return EXIT_STANDBY
    databases = _databases(agent, config)
    try:
        before = check_state(databases)
        migrated = upgrade_state(databases)
    except NewerStateError as exc:
        print(f"upgrade: {exc}", file=sys.stderr)
        return 1
    if migrated:
        audit = AuditLog(config.audit.path, agent=agent)
        try:
            record_upgrades(audit, migrated)
        finally:
            audit.close()
    for line in _lines(before, migrated, as_json=args.json):
        print(line)
    return 0


def _databases(agent: str, config: Any) -> list[StateDatabase]:
    """Every database of the agent's state, as its start lists them (the inner agent's lease
    file first: its start brings it forward before it takes the lease)."""
    if agent == "outer":
        from outer_agent.main import state_databases as outer_databases

        return outer_databases(config)
    from agentkit.upgrade import lease_database
    from inner_agent.main import state_databases as inner_databases

    return [lease_database(config.state.dir), *inner_databases(config)]


def _lines(before: list[Found], migrated: list[Migrated], *, as_json: bool) -> list[str]:
    """One line per file: what it was, what it is now, and the copy an upgrade left."""
    done = {m.path: m for m in migrated}
    lines = []
    for file in before:
        upgrade = done.get(file.path)
        now = file.version if upgrade is None else upgrade.to_version
        backup = None if upgrade is None else str(upgrade.backup)
        if as_json:
            lines.append(json.dumps({"store": file.store, "file": str(file.path),
                                     "from": file.version, "to": now, "backup": backup},
                                    ensure_ascii=False))  # fmt: skip
        elif upgrade is None:
            lines.append(f"{file.store}: {file.path}: version {now}, this release's: unchanged")
        else:
            lines.append(f"{file.store}: {file.path}: version {file.version} -> {now} "
                         f"(the copy from before: {backup})")  # fmt: skip
    return lines
