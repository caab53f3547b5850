"""``maildiode requeue -c inner.toml FILE...``: release quarantined bundles once fixed.

Each FILE is a ``quarantine/bundle-<id>.bin`` (or its ``.reason.json``) of the inner agent. The
bundle is checked again with the configuration as it is now; if it passes, its notifications
join the injection queue (the running agent delivers them) and the files move to
``quarantine/released/``. Safe to run while the agent runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from maildiode.commands.check import load_agent_config
from maildiode.settings import ConfigError


def run(args: argparse.Namespace) -> int:
    from inner_agent.inject import InjectionQueue
    from inner_agent.link import BundleHandler, ImagePolicy
    from inner_agent.main import notify_options
    from inner_agent.requeue import BundleRefused, RequeueError, release
    from maildiode.audit import AuditLog

    try:
        config = load_agent_config(Path(args.config), "inner")
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    state_dir = config.state.dir
    queue = InjectionQueue(state_dir / "inject.db")
    audit = AuditLog(config.audit.path, agent="inner")
    handler = BundleHandler(
        queue, audit, notify_options(config),
        ImagePolicy(config.images.max_pixels, config.images.reencode == "always"),
        state_dir / "quarantine",
    )  # fmt: skip
    failed = 0
    try:
        for name in args.files:
            try:
                done = release(Path(name), handler)
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
    return 1 if failed else 0
