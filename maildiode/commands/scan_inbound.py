"""``maildiode scan --direction in``: the inbound rules' decision for mail files (see scan)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from agentkit.settings import ConfigError, load_config
from mailsafe.extract import ExtractLimits
from mailsafe.extract.ocr import OcrUnavailable, resolve_ocr
from mailsafe.inbound_filter import FilterJob, decide_message
from mailsafe.inbound_rules import (
    InboundRuleSet,
    Membership,
    RecipientGroup,
    default_inbound_rules,
    load_inbound_rules,
    scope_names,
)
from mailsafe.policy import RulesError
from mailsafe.scan import ReadMail
from protocol.errors import NewerStateError

__all__ = ["run_inbound"]

# As the outbound scan: mail files larger than this are not read.
MAX_MAIL_FILE_BYTES = 100 << 20


def run_inbound(args: argparse.Namespace) -> int:
    try:
        rules, membership = _rules(args)
        settings: dict[str, bool | str] = {"auto": "auto", "on": True, "off": False}
        limits = ExtractLimits(ocr_languages=resolve_ocr(settings[args.ocr]))
    except (RulesError, OcrUnavailable, ConfigError) as exc:
        print(exc, file=sys.stderr)
        return 2
    except NewerStateError as exc:  # the directory or audit log of a newer release (D98)
        print(f"scan: {exc}", file=sys.stderr)
        return 1
    departments, groups = scope_names(rules)
    unresolved = sorted((departments - set(membership.departments))
                        | (groups - set(membership.groups)))  # fmt: skip
    if unresolved:
        print(f"note: without -c inner.toml nobody is in {', '.join(unresolved)} (scopes by "
              "department and group are resolved from the directory)", file=sys.stderr)  # fmt: skip
    job = FilterJob(0, None, args.sender or "", tuple(args.rcpt or ()))
    status = 0
    for name in args.files:
        path = Path(name)
        try:
            if path.stat().st_size > MAX_MAIL_FILE_BYTES:
                print(f"{path}: larger than {MAX_MAIL_FILE_BYTES >> 20} MiB, not scanned",
                      file=sys.stderr)  # fmt: skip
                status = 1
                continue
            raw = path.read_bytes()
        except OSError as exc:
            print(f"{path}: cannot read ({exc.strerror or exc})", file=sys.stderr)
            status = 1
            continue
        groups_found, read = decide_message(raw, rules, job, membership, limits)
        _show(str(path), groups_found, read, as_json=bool(args.json))
    return status


def _rules(args: argparse.Namespace) -> tuple[InboundRuleSet, Membership]:
    if args.rules:
        return load_inbound_rules(args.rules), Membership()
    if not args.config:
        return default_inbound_rules(), Membership()
    from inner_agent.config import InnerConfig
    from inner_agent.inbound.policy import resolve_scopes
    from inner_agent.outbound.directory import Directory

    config = load_config(Path(args.config), InnerConfig)
    section = config.inbound
    if section is None or config.outbound is None:
        raise RulesError(f"{args.config}: no [inbound] section: the receive filters are off")
    rules = (
        load_inbound_rules(section.rules_file) if section.rules_file else default_inbound_rules()
    )
    from agentkit.upgrade import StateDatabase
    from inner_agent.outbound.directory_schema import VERSIONS as DIRECTORY_VERSIONS
    from maildiode.commands.state_upgrade import upgrade_recorded

    directory_db = StateDatabase.at(config.outbound.directory_db, DIRECTORY_VERSIONS)
    upgrade_recorded([directory_db], config.audit.path)  # as the agent's start would (D98)
    directory = Directory(config.outbound.directory_db)
    try:
        departments, groups = resolve_scopes(rules, directory)
    finally:
        directory.close()
    return rules, Membership(
        {d: frozenset(a) for d, a in departments.items()},
        {g: frozenset(a) for g, a in groups.items()},
    )


def _show(name: str, groups: tuple[RecipientGroup, ...], read: ReadMail, *, as_json: bool) -> None:
    actions = {g.decision.action for g in groups}
    decision = next(iter(actions)) if len(actions) == 1 else ("split" if actions else "none")
    if as_json:
        print(json.dumps(_as_json(name, decision, groups, read), ensure_ascii=False))
        return
    print(f"{name}: {decision}")
    for group in groups:
        d = group.decision
        masked = ", ".join(d.mask) or "nothing"
        print(f"  {', '.join(group.rcpts)}: {d.action}; {d.explanation}; masked when carried: "
              f"{masked}")  # fmt: skip


def _as_json(
    name: str, decision: str, groups: tuple[RecipientGroup, ...], read: ReadMail
) -> dict[str, Any]:
    return {
        "file": name,
        "direction": "in",
        "decision": decision,
        "parts": [
            {"rcpts": list(g.rcpts), "action": g.decision.action, "rule": g.decision.rule,
             "explanation": g.decision.explanation, "mask": list(g.decision.mask),
             "mask_rule": g.decision.mask_rule, "monitored_by": list(g.decision.monitored_by),
             "silent": g.decision.silent, "approver": g.decision.approver}
            for g in groups
        ],
        "findings": [
            {"type": lf.finding.type, "text": lf.finding.text, "masked": lf.finding.masked,
             "where": lf.where}
            for lf in read.findings
        ],
    }  # fmt: skip
