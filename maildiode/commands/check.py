"""``maildiode check -c FILE``: every mistake in a config file and on the host it names,
found without starting anything, one line each (``FILE: KEY: problem — fix``).

Exit status: 0 nothing found, 1 warnings only (a relay that does not answer, an empty
directory...), 2 errors (the agent would refuse to start). docs/operations.md lists them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from agentkit.preflight import Finding, Severity, exit_status
from agentkit.settings import ConfigError, config_problems, load_config
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


def agent_findings(
    path: Path, agent: str, *, probes: bool, standby: bool = False
) -> tuple[Any, list[Finding]]:
    """(the config, or None if it does not load; every problem found). ``probes``: also the
    warnings that ask servers and read the directory (``check``; the agents skip them).
    ``standby``: an inner agent started with --standby (its listening addresses may be the
    active agent's on this host until it takes over)."""
    model = _model(agent)
    config, problems = config_problems(path, model)
    findings = [_finding(problem) for problem in problems]
    if config is None:
        return None, findings
    try:
        if agent == "inner":
            _check_rules(path, config)
            check_ocr(path, config)
    except ConfigError as exc:
        findings.append(_finding(exc))
    options = {"standby": True} if standby else {}  # only the inner agent has a standby
    return config, findings + _preflight(agent)(config, path.name, probes=probes, **options)


def _model(agent: str) -> Any:
    # Only the agent this file is for is imported (its config module loads that agent's package).
    if agent == "outer":
        from outer_agent.config import OuterConfig

        return OuterConfig
    from inner_agent.config import InnerConfig

    return InnerConfig


def _preflight(agent: str) -> Any:
    if agent == "outer":
        from outer_agent.preflight import preflight

        return preflight
    from inner_agent.preflight import preflight as inner_preflight

    return inner_preflight


def _finding(error: ConfigError) -> Finding:
    return Finding(Severity.ERROR, error.file, error.key, error.problem)


def run(args: argparse.Namespace) -> int:
    path = Path(args.config)
    agent = guess_agent(path, args.agent)
    if agent is None:
        print(f"{path}: cannot tell which agent this file is for; name it outer*/inner* or add "
              "--agent outer|inner", file=sys.stderr)  # fmt: skip
        return 2
    _, findings = agent_findings(path, agent, probes=True)
    for finding in findings:
        print(finding.line(), file=sys.stderr)
    status = exit_status(findings)
    if status == 0:
        print(f"{path}: ok ({agent} agent)")
    else:
        errors = sum(f.severity is Severity.ERROR for f in findings)
        print(f"{path}: {errors} error(s), {len(findings) - errors} warning(s) ({agent} agent)")
    return status
