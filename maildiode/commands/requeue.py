"""``maildiode requeue -c CONFIG FILE...``: release quarantined mail once its cause is fixed.

- inner agent (``-c inner.toml``): each FILE is a ``quarantine/bundle-<id>.bin`` (or its
  ``.reason.json``). The bundle is checked again with the configuration as it is now; if it
  passes, its notifications join the injection queue (the running agent delivers them).
- outer agent (``-c outer.toml``): each FILE is a mail id or file in the spool's
  ``quarantine/``. The mail goes back into the intake as a new segment, with its envelope and
  bundle id, and is rendered again with the configuration as it is now.

Either way the quarantined files move to ``quarantine/released/`` and the audit log gets a
``requeued`` event. Safe to run while the agent runs.

The inner agent's injection queue is state the active host's agent sends from: on a standby
host (another host's agent holds the state's lease) ``requeue -c inner.toml`` is refused with
exit 4 before anything, and each release is queued under the lease's lock with the row read
again, so a takeover while the command ran stops it there, exit 4 (D108,
maildiode.commands.standby_guard). Files released before it stay released.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog
from agentkit.upgrade import StateDatabase
from maildiode.commands.check import config_for_command
from maildiode.commands.standby_guard import (
    EXIT_STANDBY,
    StandbyRefused,
    fenced_write,
    standby_refusal,
)
from maildiode.commands.state_upgrade import upgrade_or_refusal


def run(args: argparse.Namespace) -> int:
    found = config_for_command(Path(args.config), args.agent)
    if isinstance(found, int):
        return found
    agent, config = found
    try:
        failed = _outer(config, args.files) if agent == "outer" else _inner(config, args.files)
    except StandbyRefused as exc:
        print(exc, file=sys.stderr)
        return EXIT_STANDBY
    return 1 if failed else 0


def _inner(config: Any, files: list[str]) -> int:
    # Only the agent this config is for is imported (here and in _outer).
    from agentkit.atrest import at_rest_of
    from inner_agent.bundle_check import ImagePolicy
    from inner_agent.bundle_handler import BundleHandler
    from inner_agent.inject import VERSIONS as QUEUE_VERSIONS
    from inner_agent.inject import InjectionQueue
    from inner_agent.main import notify_options
    from inner_agent.requeue import BundleRefused, RequeueError, release

    state_dir = config.state.dir
    if refusal := standby_refusal("requeue", state_dir, config.lease):
        raise StandbyRefused(refusal)  # before anything is opened or upgraded
    queue_db = StateDatabase.at(state_dir / "inject.db", QUEUE_VERSIONS)
    if refused := upgrade_or_refusal("requeue", [queue_db], config.audit.path, agent="inner"):
        return refused
    queue = InjectionQueue(state_dir / "inject.db", at_rest=at_rest_of(config.keys))
    audit = AuditLog(config.audit.path, agent="inner")
    handler = BundleHandler(
        queue, audit, notify_options(config),
        ImagePolicy(config.images.max_pixels, config.images.reencode == "always"),
        state_dir / "quarantine",
    )  # fmt: skip

    def fenced() -> AbstractContextManager[None]:
        return fenced_write("requeue", state_dir, config.lease)

    failed = 0
    try:
        for name in files:
            try:
                done = release(Path(name), handler, holding=fenced)
            except RequeueError as exc:
                print(f"requeue: {exc}", file=sys.stderr)
                failed += 1
            except BundleRefused as exc:
                print(f"requeue: {name}: still refused: {exc.code}: {exc.detail}", file=sys.stderr)
                failed += 1
            else:
                what = ("already queued before; files moved to released/" if done.already_queued
                        else f"{done.notifications} notification(s) queued")  # fmt: skip
                print(f"released mail {done.mail_id} (bundle {done.bundle_id}): {what}")
    finally:
        queue.close()
        audit.close()
    return failed


def _outer(config: Any, files: list[str]) -> int:
    from agentkit.atrest import at_rest_of
    from outer_agent.requeue import RequeueError, release
    from outer_agent.spool import Spool

    # the spool keeps files, not a database: the audit log is the one to upgrade
    if refused := upgrade_or_refusal("requeue", [], config.audit.path, agent="outer"):
        return refused
    spool = Spool(config.spool.dir / "inbound", at_rest=at_rest_of(config.keys))
    audit = AuditLog(config.audit.path, agent="outer")
    failed = 0
    try:
        for name in files:
            try:
                done = release(spool, name)
            except RequeueError as exc:
                print(f"requeue: {exc}", file=sys.stderr)
                failed += 1
                continue
            for mail_id in done.mail_ids:
                audit.record(mail_id, "requeued", released_from=str(Path(name).name))
            print(f"released {', '.join(done.mail_ids)}: back in the intake, to be rendered again")
    finally:
        audit.close()
    return failed
