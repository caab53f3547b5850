"""``maildiode check -c FILE``: validate a config file without starting anything."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agentkit.settings import ConfigError, load_config
from mailsafe.inbound_rules import load_inbound_rules
from mailsafe.policy import load_rules


def guess_agent(path: Path, explicit: str | None) -> str | None:
    if explicit:
        return explicit
    stem = path.name.lower()
    for agent in ("outer", "inner"):
        if agent in stem:
            return agent
    return None


def config_for_command(path: Path, explicit: str | None) -> tuple[str, Any] | int:
    """(agent, validated config) for a command run against one agent's config file, or the
    exit status after saying on stderr why not (2: which agent is unclear; 1: bad config)."""
    agent = guess_agent(path, explicit)
    if agent is None:
        print(f"{path}: cannot tell which agent this file is for; name it outer*/inner* or add "
              "--agent outer|inner", file=sys.stderr)  # fmt: skip
        return 2
    try:
        return agent, load_agent_config(path, agent)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1


def load_agent_config(path: Path, agent: str) -> Any:
    """Load and validate ``path`` as the named agent's config (raises ConfigError)."""
    # Only the agent this file is for is imported (its config module loads that agent's package).
    if agent == "outer":
        from outer_agent.config import OuterConfig

        return load_config(path, OuterConfig)
    from inner_agent.config import InnerConfig

    config = load_config(path, InnerConfig)
    _check_rules(path, config)
    check_ocr(path, config)
    return config


def check_ocr(path: Path, config: Any) -> None:
    """OCR that is asked for must be installed on this machine (checked by ``check`` and
    before the inner agent starts)."""
    outbound = getattr(config, "outbound", None)
    if outbound is None:
        return
    # Lazy: the attachment readers (PyMuPDF) load only for an inner config with [outbound].
    from mailsafe.extract.ocr import OcrUnavailable, resolve_ocr

    try:
        resolve_ocr(outbound.ocr)
    except OcrUnavailable as exc:
        raise ConfigError(path.name, "outbound.ocr", str(exc)) from None


def _check_rules(path: Path, config: Any) -> None:
    """The outbound and inbound rules live in their own files; check them too, naming them
    (an unknown field, action or key is named: docs/policy.md)."""
    for section, load in (("outbound", load_rules), ("inbound", load_inbound_rules)):
        rules_file = getattr(getattr(config, section, None), "rules_file", None)
        if rules_file is None:
            continue
        try:
            load(rules_file)
        except Exception as exc:  # noqa: BLE001 - every rules problem is reported, not raised
            raise ConfigError(path.name, f"{section}.rules_file", str(exc)) from None


def run(args: argparse.Namespace) -> int:
    path = Path(args.config)
    found = config_for_command(path, args.agent)
    if isinstance(found, int):
        return found
    print(f"{path}: ok ({found[0]} agent)")
    return 0
