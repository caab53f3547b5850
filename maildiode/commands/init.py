"""``maildiode init DIR``: a ready pair of configs, keys and folders for a trial on one machine.

Layout (the link folder names are part of the contract with the linkage product)::

    DIR/outer.toml  DIR/inner.toml
    DIR/keys/outer.key (0600)  outer.pub  inner.key (0600)  inner.pub
    DIR/link/in/send   outer publishes   -> linkage pickup, internet side
    DIR/link/in/recv   linkage delivery  -> inner reads
    DIR/link/out/send  inner publishes   -> linkage pickup, intranet side
    DIR/link/out/recv  linkage delivery  -> outer reads
    DIR/outer/ ...     outer agent state (spool, protocol state, audit log)
    DIR/inner/ ...     inner agent state (protocol state, queues, quarantine, audit log)
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from maildiode.commands.check import load_agent_config
from maildiode.settings import ConfigError, parse_host_port

LINK_FOLDERS = ("link/in/send", "link/in/recv", "link/out/send", "link/out/recv")
PRIVATE_FOLDERS = ("keys", "outer", "inner")
DEFAULT_DOMAIN = "corp.example"


def make_folders(root: Path) -> None:
    for name in LINK_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name in PRIVATE_FOLDERS:
        (root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root / name, 0o700)


def make_keys(keys: Path) -> None:
    from protocol import SigningKey

    for agent in ("outer", "inner"):
        key = SigningKey.generate()
        key.save(keys / f"{agent}.key")
        key.verify_key.save(keys / f"{agent}.pub")


def write_configs(root: Path, args: argparse.Namespace) -> None:
    from inner_agent.config import example_toml as inner_example
    from outer_agent.config import example_toml as outer_example

    domains = tuple(args.domains or [DEFAULT_DOMAIN])
    outer = outer_example(
        domains=domains, smtp_listen=f"127.0.0.1:{args.smtp_port}", relay=args.relay
    )
    inner = inner_example(
        domains=domains,
        internal_smtp=args.internal_smtp,
        outbound_listen=f"127.0.0.1:{args.outbound_port}",
        web_listen=f"127.0.0.1:{args.web_port}",
    )
    (root / "outer.toml").write_text(outer, encoding="utf-8")
    (root / "inner.toml").write_text(inner, encoding="utf-8")


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
    write_configs(root, args)
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
