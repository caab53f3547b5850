"""Edits of a rules document (what ``tomllib`` read from the file), each returning a new one,
and their validation by the rules' own models (pure).

``validate`` answers every problem with its place (``mailsafe.policy.refusals``), for the
form; ``checked_text`` is the text to be saved, accepted only when the parser the agents and
``maildiode check`` use accepts it (``mailsafe.policy.parse_rules``,
``mailsafe.inbound_rules.parse_inbound_text``).
"""

from __future__ import annotations

import copy
import tomllib
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from inner_agent.policyedit.errors import RuleNotFound, RulesRefused
from inner_agent.policyedit.ruleform import Direction
from inner_agent.policyedit.tomltext import to_toml
from mailsafe.inbound_rules import InboundRuleSet, parse_inbound_text
from mailsafe.policy import MAX_RULES_FILE_BYTES, RulesError, RuleSet, parse_rules, refusals

__all__ = [
    "Document",
    "check_text",
    "checked_text",
    "index_of",
    "moved",
    "parse_document",
    "rules_of",
    "validate",
    "with_enabled",
    "with_rule",
    "without_rule",
]

Document = dict[str, Any]
Refusals = list[tuple[tuple[int | str, ...], str]]


def parse_document(text: str, name: str) -> Document:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesRefused(f"{name}: not valid TOML ({exc})") from None


def rules_of(document: Mapping[str, Any]) -> list[dict[str, Any]]:
    found = document.get("rule", [])
    return [r for r in found if isinstance(r, dict)] if isinstance(found, list) else []


def index_of(document: Mapping[str, Any], rule_id: str) -> int:
    for index, rule in enumerate(rules_of(document)):
        if rule.get("id") == rule_id:
            return index
    raise RuleNotFound(f"no rule {rule_id!r} in the file")


def with_rule(document: Mapping[str, Any], rule: dict[str, Any], replacing: str | None) -> Document:
    """``rule`` in place of rule ``replacing``, or added after the last rule."""
    changed = copy.deepcopy(dict(document))
    rules = rules_of(changed)
    if replacing is None:
        rules.append(rule)
    else:
        rules[index_of(changed, replacing)] = rule
    changed["rule"] = rules
    return changed


def without_rule(document: Mapping[str, Any], rule_id: str) -> Document:
    changed = copy.deepcopy(dict(document))
    rules = rules_of(changed)
    del rules[index_of(changed, rule_id)]
    changed["rule"] = rules
    return changed


def with_enabled(document: Mapping[str, Any], rule_id: str, enabled: bool) -> Document:
    changed = copy.deepcopy(dict(document))
    rule = rules_of(changed)[index_of(changed, rule_id)]
    if enabled:
        rule.pop("enabled", None)  # the default: the file stays as it was written
    else:
        rule["enabled"] = False
    return changed


def moved(document: Mapping[str, Any], rule_id: str, step: int) -> Document:
    """Rule ``rule_id`` moved ``step`` places (negative: up, towards evaluation first)."""
    changed = copy.deepcopy(dict(document))
    rules = rules_of(changed)
    index = index_of(changed, rule_id)
    target = max(0, min(len(rules) - 1, index + step))
    rules.insert(target, rules.pop(index))
    changed["rule"] = rules
    return changed


def validate(direction: Direction, document: Mapping[str, Any]) -> Refusals:
    """Every problem of ``document`` with its place; [] when it is a valid rules file."""
    model = RuleSet if direction == "outbound" else InboundRuleSet
    found: Refusals = []
    try:
        model.model_validate(document)
    except ValidationError as exc:
        found = refusals(exc)
    if direction == "inbound" and "resolved" in document:
        found.append((("resolved",), "is written by the inner agent; an authored file may not "
                      "hold it"))  # fmt: skip
    return found + _repeated_ids(document)


def _repeated_ids(document: Mapping[str, Any]) -> Refusals:
    """A repeated id at each later rule holding it (the models say it only when every rule
    is valid by itself)."""
    seen: set[object] = set()
    found: Refusals = []
    for index, rule in enumerate(rules_of(document)):
        if rule.get("id") in seen:
            found.append(
                (("rule", index, "id"), f"rule ids must be unique; repeated: {rule['id']}")
            )
        seen.add(rule.get("id"))
    return found


def checked_text(direction: Direction, document: Mapping[str, Any], name: str) -> str:
    """``document`` as the text to save, parsed back by the agents' own parser;
    ``RulesRefused`` with ``maildiode check``'s words when it does not pass."""
    text = to_toml(document)
    check_text(direction, text, name)
    return text


def check_text(direction: Direction, text: str, name: str) -> None:
    """RulesRefused with ``maildiode check``'s words when the agents would refuse ``text``."""
    if len(text.encode()) > MAX_RULES_FILE_BYTES:
        raise RulesRefused(f"{name}: larger than {MAX_RULES_FILE_BYTES} bytes")
    try:
        if direction == "outbound":
            parse_rules(parse_document(text, name), name)
        else:
            parse_inbound_text(text, name)
    except RulesError as exc:
        raise RulesRefused(str(exc)) from None
