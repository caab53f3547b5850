"""``maildiode backup -c FILE DEST`` and ``maildiode restore -c FILE SRC``: an agent's state,
copied while it runs and put back after a loss (``agentkit.backup`` does the copying).

What an agent's state is, per agent, is :func:`plan_for`: every store its configuration names.
The keys are copied only with ``--with-keys``, into the same backup; docs/operations.md says
why they belong on another medium (a backup that carries its own decryption and signing keys
protects nothing once stolen).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from agentkit.backup import (
    BackupError,
    BackupPlan,
    StateItem,
    move_aside,
    restore_backup,
    take_backup,
)
from agentkit.settings import ConfigError
from maildiode.commands.check import config_for_command

__all__ = ["plan_for", "run", "run_restore"]


def plan_for(
    agent: str, config_path: Path, config: Any, *, present_only: bool = True
) -> BackupPlan:
    """Every place ``config`` keeps state, and its keys (``present_only``: those that exist;
    a restore needs them all, also those a new host does not have yet)."""
    state: list[StateItem] = []
    if agent == "outer":
        state.append(StateItem("spool", config.spool.dir))
    else:
        state.append(StateItem("state", config.state.dir))
        outbound = config.outbound
        if outbound is not None:
            state += [
                StateItem("outbound", outbound.spool_dir),
                StateItem("directory", outbound.directory_db),
                StateItem("signin", outbound.web.signin.db),
            ]
    audit = config.audit.path
    state += [StateItem("audit", audit), StateItem("audit-index", _index_of(audit))]
    keys = [StateItem("keys", config.keys.signing_key.parent)]
    if agent == "inner" and config.outbound is not None:
        keys.append(StateItem("web-secret", config.outbound.web.secret_key_file))
    if present_only:
        state = [item for item in state if item.path.exists()]
        keys = [item for item in keys if item.path.exists()]
    return BackupPlan(agent, config_path, tuple(state), tuple(keys))


def _index_of(audit: Path) -> Path:
    return audit.with_name(f"{audit.stem}-index.db")  # agentkit.mailindex.store's name


def _load(args: argparse.Namespace) -> tuple[str, Any] | int:
    try:
        return config_for_command(Path(args.config), getattr(args, "agent", None))
    except ConfigError as exc:
        print(f"maildiode {args.command}: {exc}", file=sys.stderr)
        return 2


def run(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    agent, config = loaded
    plan = plan_for(agent, Path(args.config), config)
    try:
        report = take_backup(plan, Path(args.dest), with_keys=args.with_keys)
    except (BackupError, OSError) as exc:
        print(f"maildiode backup: {exc}", file=sys.stderr)
        return 2
    keys = "keys included" if args.with_keys else "keys NOT included (--with-keys)"
    print(
        f"{args.dest}: {report.databases} database(s) and {report.files} file(s),"
        f" {report.bytes} bytes, in {report.passes} pass(es); {keys}"
    )
    return 0


def run_restore(args: argparse.Namespace) -> int:
    loaded = _load(args)
    if isinstance(loaded, int):
        return loaded
    agent, config = loaded
    plan = plan_for(agent, Path(args.config), config, present_only=False)
    try:
        if args.replace:
            stamp = time.strftime("%Y%m%dT%H%M%S")
            for item in (*plan.state, *(plan.keys if args.with_keys else ())):
                aside = move_aside(item, stamp)
                if aside is not None:
                    print(f"moved {item.path} aside to {aside}")
        report = restore_backup(plan, Path(args.src), with_keys=args.with_keys)
    except (BackupError, OSError) as exc:
        print(f"maildiode restore: {exc}", file=sys.stderr)
        return 2
    print(f"restored {report.files} file(s), {report.bytes} bytes from {args.src}")
    return 0
