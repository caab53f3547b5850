"""``maildiode init DIR``: a ready pair of configs, keys and folders for a trial on one machine.

The layout is :mod:`maildiode.trial.layout`'s; this command checks its arguments, writes the
pair, and loads both configs back (our own output must load).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from agentkit.settings import ConfigError, parse_host_port
from maildiode.commands.check import load_agent_config
from maildiode.trial.layout import (
    DEFAULT_DOMAIN,
    TrialPorts,
    make_folders,
    make_keys,
    make_web_certificate,
    write_configs,
)
from maildiode.trial.stack import set_key


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
    if getattr(args, "web_tls", False):
        use_web_tls(root, ports.web_port)
    try:
        for agent in ("outer", "inner"):
            load_agent_config(root / f"{agent}.toml", agent)
    except ConfigError as exc:  # our own output must load; if not, say so loudly
        print(f"maildiode init: wrote a config that does not load: {exc}", file=sys.stderr)
        return 1
    print(next_steps(root, ports, args.domains or ()))
    return 0


def use_web_tls(root: Path, web_port: int) -> None:
    """A self-signed pair for the trial's web listener, and inner.toml pointing at it."""
    cert, key = make_web_certificate(root / "keys", ["127.0.0.1", "localhost"])
    path = root / "inner.toml"
    text = path.read_text(encoding="utf-8")
    text = set_key(text, "outbound.web", "public_url", f'"https://127.0.0.1:{web_port}"')
    text = set_key(text, "outbound.web", "tls_cert", f'"{cert.relative_to(root)}"')
    text = set_key(text, "outbound.web", "tls_key", f'"{key.relative_to(root)}"')
    path.write_text(text, encoding="utf-8")


def next_steps(root: Path, ports: TrialPorts, domains: Sequence[str]) -> str:
    """What a newcomer does after ``init``, in order. The link folders are named: nothing moves
    a file between them but the linkage product (or ``maildiode carry`` standing in for it), and
    a trial that skips this step delivers nothing."""
    domain = (list(domains) or [DEFAULT_DOMAIN])[0]
    link = root / "link"
    return "\n".join([
        f"wrote {root}/outer.toml and {root}/inner.toml, keys in {root}/keys, links in {link}",
        "next steps:",
        f"  1. check both:  maildiode check -c {root}/outer.toml;"
        f"  maildiode check -c {root}/inner.toml",
        f"  2. start the agents:  maildiode outer -c {root}/outer.toml"
        f"   and   maildiode inner -c {root}/inner.toml",
        "  3. carry the link folders. In production the linkage product (망연계) moves each file;",
        "     for a trial on one machine, run both:",
        f"       maildiode carry {link}/in/send {link}/in/recv      (internet -> intranet)",
        f"       maildiode carry {link}/out/send {link}/out/recv    (intranet -> internet)",
        f"  4. send a mail:  swaks --server 127.0.0.1:{ports.smtp_port} --to someone@{domain}",
        f"     its notification, the mail as pictures, reaches {ports.internal_smtp}"
        " (your internal mail server)",
    ])  # fmt: skip
