"""``maildiode init DIR``: a ready pair of configs, keys and folders for a trial on one machine.

The layout is :mod:`maildiode.trial.layout`'s; this command checks its arguments, writes the
pair, and loads both configs back (our own output must load).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from agentkit.settings import ConfigError, parse_host_port
from maildiode.commands.check import load_agent_config
from maildiode.trial.layout import TrialPorts, make_folders, make_keys, write_configs


def check_arguments(root: Path, args: argparse.Namespace) -> str | None:
    """A sentence saying what is wrong with the arguments, or None."""
    if root.exists() and any(root.iterdir()) and not args.force:
        return f"{root} is not empty; choose another folder or add --force"
    for name in ("smtp_port", "outbound_port", "web_port"):
        port = getattr(args, name)
        if not 1 <= port <= 65535:
            return f"--{name.replace('_', '-')}: port {port} is out of range (1-65535)"
    for name in ("internal_smtp", "relay"):
        value = getattr(args, name)
        try:
            if value is not None:
                parse_host_port(value)
        except ValueError as exc:
            return f"--{name.replace('_', '-')}: {exc}"
    return None


def run(args: argparse.Namespace) -> int:
    root = Path(args.dir)
    problem = check_arguments(root, args)
    if problem:
        print(f"maildiode init: {problem}", file=sys.stderr)
        return 2
    make_folders(root)
    make_keys(root / "keys")
    ports = TrialPorts(
        smtp_port=args.smtp_port, outbound_port=args.outbound_port, web_port=args.web_port,
        internal_smtp=args.internal_smtp, relay=args.relay,
    )  # fmt: skip
    write_configs(root, args.domains or (), ports)
    try:
        for agent in ("outer", "inner"):
            load_agent_config(root / f"{agent}.toml", agent)
    except ConfigError as exc:  # our own output must load; if not, say so loudly
        print(f"maildiode init: wrote a config that does not load: {exc}", file=sys.stderr)
        return 1
    print(
        f"wrote {root}/outer.toml and {root}/inner.toml, keys in {root}/keys, links in {root}/link"
    )
    print(
        f"next: maildiode outer -c {root}/outer.toml   and   maildiode inner -c {root}/inner.toml"
    )
    return 0
