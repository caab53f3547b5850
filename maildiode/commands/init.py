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
from maildiode.trial.further import FurtherOuter, add_outer, further_outer_problem
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
    if getattr(args, "add_outer", None) is not None:
        return run_add_outer(root, args)
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


# What ``--add-outer`` takes besides --smtp-port: none of the pair's settings (defaults).
_PAIR_ONLY = {
    "domains": None, "force": False, "web_tls": False, "relay": None,
    "internal_smtp": "127.0.0.1:2526", "outbound_port": 2527, "web_port": 8025,
}  # fmt: skip


def run_add_outer(root: Path, args: argparse.Namespace) -> int:
    """``init DIR --add-outer ID``: one more outer agent beside the pair in DIR (issue 23). The
    pair's files stay as they are but inner.toml, which gets the new agent's stream."""
    given = [
        name for name, default in _PAIR_ONLY.items() if getattr(args, name, default) != default
    ]
    further = FurtherOuter(root, args.add_outer, args.smtp_port)
    problem = (
        f"--add-outer takes only --smtp-port; --{given[0].replace('_', '-')} is for a new pair"
        if given else further_outer_problem(further)
    )  # fmt: skip
    if problem:
        print(f"maildiode init: {problem}", file=sys.stderr)
        return 2
    add_outer(further)
    try:
        load_agent_config(further.config, "outer")
        load_agent_config(root / "inner.toml", "inner")
    except ConfigError as exc:  # our own output must load; if not, say so loudly
        print(f"maildiode init: wrote a config that does not load: {exc}", file=sys.stderr)
        return 1
    print(further_next_steps(further))
    return 0


def further_next_steps(further: FurtherOuter) -> str:
    """What the administrator does after ``--add-outer``: the linkage product carries one more
    folder pair, the inner agent reads the new stream after a restart."""
    root, stream = further.root, further.stream
    link = root / "link" / stream
    return "\n".join([
        f"wrote {further.config}, keys {root}/keys/{stream}.*, links in {link}, and the outer "
        f"agent {stream!r} in [[streams.outer]] of {root}/inner.toml",
        "next steps:",
        f"  1. check both:  maildiode check -c {further.config};"
        f"  maildiode check -c {root}/inner.toml",
        f"  2. restart the inner agent (it reads the new stream at start), then start this one:"
        f"  maildiode outer -c {further.config}",
        "  3. the linkage product carries one more folder pair (for a trial on one machine:",
        f"       maildiode carry {link}/in/send {link}/in/recv      (internet -> intranet)",
        f"       maildiode carry {link}/out/send {link}/out/recv    (intranet -> internet)",
        f"  4. give it an MX record of the same priority as the first (docs/operations.md §3a);"
        f" it takes mail on port {further.smtp_port}",
    ])  # fmt: skip


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
