"""A ready pair of configs, keys and folders for a trial on one machine (``maildiode init``).

Layout (the link folder names are part of the contract with the linkage product)::

    DIR/outer.toml  DIR/inner.toml
    DIR/keys/outer.key (0600)  outer.pub  inner.key (0600)  inner.pub
    DIR/link/in/send   outer publishes   -> linkage pickup, internet side
    DIR/link/in/recv   linkage delivery  -> inner reads
    DIR/link/out/send  inner publishes   -> linkage pickup, intranet side
    DIR/link/out/recv  linkage delivery  -> outer reads
    DIR/outer/ ...     outer agent state (spool/, audit log)
    DIR/inner/ ...     inner agent state (protocol state, queues, quarantine, outbound/, audit log)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from inner_agent.config import example_toml as inner_example
from outer_agent.config import example_toml as outer_example
from protocol import SigningKey

__all__ = [
    "DEFAULT_DOMAIN",
    "LINK_FOLDERS",
    "PRIVATE_FOLDERS",
    "TrialPorts",
    "make_folders",
    "make_keys",
    "write_configs",
]

LINK_FOLDERS = ("link/in/send", "link/in/recv", "link/out/send", "link/out/recv")
# The agents refuse a configured folder that does not exist (a misspelt one would otherwise be
# made silently): every folder the configs name is made here, with the state folders private.
PRIVATE_FOLDERS = ("keys", "outer", "outer/spool", "inner", "inner/outbound")
DEFAULT_DOMAIN = "corp.example"


def make_folders(root: Path) -> None:
    for name in LINK_FOLDERS:
        (root / name).mkdir(parents=True, exist_ok=True)
    for name in PRIVATE_FOLDERS:
        (root / name).mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(root / name, 0o700)


def make_keys(keys: Path) -> None:
    for agent in ("outer", "inner"):
        key = SigningKey.generate()
        key.save(keys / f"{agent}.key")
        key.verify_key.save(keys / f"{agent}.pub")


@dataclass(frozen=True)
class TrialPorts:
    """Where a trial pair listens and sends, all on loopback unless given otherwise."""

    smtp_port: int  # outer agent's SMTP intake
    outbound_port: int  # inner agent's outbound intake
    web_port: int  # inner agent's web pages
    internal_smtp: str = "127.0.0.1:2526"  # the internal mail server, HOST:PORT
    relay: str | None = None  # the outer agent's smarthost for approved mail, HOST:PORT


def write_configs(root: Path, domains: Sequence[str], ports: TrialPorts) -> None:
    """``outer.toml`` and ``inner.toml`` in ``root``: the agents' example files, filled in."""
    domains = tuple(domains or [DEFAULT_DOMAIN])
    outer = outer_example(
        domains=domains, smtp_listen=f"127.0.0.1:{ports.smtp_port}", relay=ports.relay
    )
    inner = inner_example(
        domains=domains,
        internal_smtp=ports.internal_smtp,
        outbound_listen=f"127.0.0.1:{ports.outbound_port}",
        web_listen=f"127.0.0.1:{ports.web_port}",
    )
    (root / "outer.toml").write_text(outer, encoding="utf-8")
    (root / "inner.toml").write_text(inner, encoding="utf-8")
