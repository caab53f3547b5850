"""Inbound rules: what happens to a mail from the internet, given whom it is for and what it
carries. The language of the outbound rules (``mailsafe.policy``: the same conditions, fields
and matchers), with the inbound actions and scopes by RECIPIENT (docs/policy.md, "Inbound
rules").

Two questions are answered for each recipient, each by the first applying rule in file order:

1. *What happens*: the first applying ``block``, ``hold`` or ``allow`` rule decides; an
   applying ``monitor`` rule is noted and evaluation goes on; with none deciding,
   ``monitor`` if one applied, else ``default_action``.
2. *What is masked* when the mail is carried: the types of the first applying ``mask`` rule
   anywhere in the file (its position among the deciding rules does not matter), else
   ``default_mask`` (the unique identifiers unless set).

Scopes by department and group are resolved inside: the inner agent appends a ``[resolved]``
table (each department's and group's addresses, read from its directory) to the text it
publishes to the outer agent (``published_text``), which has no directory. An authored file
may not hold that table; a published one must resolve every department and group it names.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Annotated, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mailsafe.pii import PII_TYPES, PiiType
from mailsafe.policy import (
    MAX_RULES_FILE_BYTES,
    Condition,
    MailFacts,
    NotifyWhom,
    RulesError,
    applies,
    describe_refusal,
)

__all__ = [
    "DEFAULT_INBOUND_RULES_TOML",
    "UNIQUE_IDENTIFIERS",
    "InboundAction",
    "InboundDecision",
    "InboundRule",
    "InboundRuleSet",
    "Membership",
    "RecipientGroup",
    "Resolved",
    "decide",
    "decide_recipients",
    "default_inbound_rules",
    "load_inbound_rules",
    "needs_mail_text",
    "parse_inbound_rules",
    "parse_inbound_text",
    "published_text",
    "scope_names",
]

InboundAction = Literal["block", "hold", "allow", "monitor", "mask"]
Outcome = Literal["block", "hold", "allow", "monitor"]
Approver = Literal["department_head", "security_officer"]

# Masked by default (issue 17.3): numbers that identify one person for life. Cards and
# accounts are shown: a reader needs them for their work and can have them changed.
UNIQUE_IDENTIFIERS: Final[tuple[PiiType, ...]] = (
    "rrn",
    "foreigner_id",
    "driver_license",
    "passport",
)
# The key the inner agent writes when publishing; an authored file may not hold it.
RESOLVED_KEY: Final = "resolved"
# Addresses resolved for one department or group: a department of 20 000 people is a
# company, and the published rules must stay under MAX_RULES_FILE_BYTES anyway.
MAX_MEMBERS: Final = 20_000
# Fields read without the mail's text: the envelope, the headers and the attachment list.
_CHEAP_FIELDS: Final = frozenset({"sender", "recipient", "attachment_count", "attachment_size"})
_NAME_RE: Final = re.compile(r"[^\x00-\x1f\x7f]{1,128}")


class RulesModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


ScopeName = Annotated[str, Field(pattern=_NAME_RE.pattern)]


class InboundRule(RulesModel):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    description: str = ""
    action: InboundAction
    scope: Literal["everyone", "users", "departments", "groups"] = "everyone"
    users: list[str] = []
    departments: list[ScopeName] = []
    groups: list[ScopeName] = []
    match: Literal["all", "any"] = "all"
    # No conditions: the rule applies to every mail of its scope (unlike an outbound rule).
    condition: list[Condition] = []
    silent: bool = False  # block: the recipient is not told either
    approver: Approver | None = None  # hold: who decides (default: the department head)
    mask: list[PiiType] | None = None  # mask: the types masked (default: UNIQUE_IDENTIFIERS)
    enabled: bool = True  # a disabled rule is kept in the file and never applies
    notify: list[NotifyWhom] = []

    @field_validator("users")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return [user.strip().lower() for user in value]

    @model_validator(mode="after")
    def _consistent(self) -> InboundRule:
        if self.scope != "everyone" and not getattr(self, self.scope):
            raise ValueError(f'scope "{self.scope}" needs a "{self.scope}" list')
        if self.silent and self.action != "block":
            raise ValueError('"silent" belongs to a block rule')
        if self.approver is not None and self.action != "hold":
            raise ValueError('"approver" belongs to a hold rule')
        if self.mask is not None and self.action != "mask":
            raise ValueError('"mask" belongs to a mask rule')
        return self

    @property
    def masked_types(self) -> tuple[PiiType, ...]:
        return tuple(self.mask) if self.mask is not None else UNIQUE_IDENTIFIERS


class Resolved(RulesModel):
    """Who is in each department and group named by a scope (written by the inner agent)."""

    departments: dict[str, Annotated[list[str], Field(max_length=MAX_MEMBERS)]] = {}
    groups: dict[str, Annotated[list[str], Field(max_length=MAX_MEMBERS)]] = {}


class InboundRuleSet(RulesModel):
    version: Literal[1] = 1
    default_action: Outcome = "allow"
    default_mask: list[PiiType] = list(UNIQUE_IDENTIFIERS)
    # Named sets of recipients for scope "groups": addresses, or department names (a name
    # without "@"), resolved inside like a department scope.
    groups: dict[ScopeName, list[str]] = {}
    resolved: Resolved | None = None
    rule: list[InboundRule] = []

    @model_validator(mode="after")
    def _names(self) -> InboundRuleSet:
        seen: dict[str, int] = {}
        for rule in self.rule:
            seen[rule.id] = seen.get(rule.id, 0) + 1
        twice = sorted(rule_id for rule_id, count in seen.items() if count > 1)
        if twice:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(twice)}")
        unknown = sorted({g for rule in self.rule for g in rule.groups} - set(self.groups))
        if unknown:
            raise ValueError(f"groups used by a rule but not defined in [groups]: {unknown}")
        return self


@dataclass(frozen=True)
class Membership:
    """Addresses (lower case) of the departments and groups scopes name."""

    departments: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)

    @classmethod
    def of(cls, resolved: Resolved | None) -> Membership:
        if resolved is None:
            return cls()
        return cls(
            {
                name: frozenset(a.lower() for a in found)
                for name, found in resolved.departments.items()
            },
            {name: frozenset(a.lower() for a in found) for name, found in resolved.groups.items()},
        )


@dataclass(frozen=True)
class InboundDecision:
    """What happens to a mail for one recipient, and what is masked when it is carried."""

    action: Outcome
    rule: str | None  # the deciding rule; None: the default action
    explanation: str
    mask: tuple[PiiType, ...] = ()  # in the order of PII_TYPES
    mask_rule: str | None = None  # None: default_mask
    monitored_by: tuple[str, ...] = ()
    silent: bool = False  # block: no notice to the recipient
    approver: Approver | None = None  # hold

    @property
    def carried(self) -> bool:
        return self.action in ("allow", "monitor")


@dataclass(frozen=True)
class RecipientGroup:
    """Recipients with the same decision (a mail is split into one part per group)."""

    rcpts: tuple[str, ...]
    decision: InboundDecision


# ---- loading ------------------------------------------------------------------------------


def load_inbound_rules(path: str | Path) -> InboundRuleSet:
    """An authored inbound rules file; ``RulesError`` names the file, the rule and the key."""
    return parse_inbound_text(_read(Path(path)), Path(path).name)


def parse_inbound_text(text: str, name: str, *, published: bool = False) -> InboundRuleSet:
    """Rules from TOML text: an authored file, or (``published``) the text the outer agent
    received, whose ``[resolved]`` table must name every department and group in a scope."""
    if len(text.encode("utf-8")) > MAX_RULES_FILE_BYTES:
        raise RulesError(f"{name}: larger than {MAX_RULES_FILE_BYTES} bytes")
    try:
        document = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RulesError(f"{name}: not valid TOML ({exc})") from None
    return parse_inbound_rules(document, name, published=published)


def parse_inbound_rules(
    document: dict[str, object], name: str = "inbound rules", *, published: bool = False
) -> InboundRuleSet:
    if not published and RESOLVED_KEY in document:
        raise RulesError(
            f"{name}: {RESOLVED_KEY}: is written by the inner agent when it "
            "publishes the rules; an authored file may not hold it"
        )
    try:
        rules = InboundRuleSet.model_validate(document)
    except ValidationError as exc:
        raise RulesError(describe_refusal(exc, document, name)) from None
    if published:
        _check_resolved(rules, name)
    return rules


def _read(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_RULES_FILE_BYTES:
            raise RulesError(f"{path.name}: larger than {MAX_RULES_FILE_BYTES} bytes")
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RulesError(f"{path.name}: cannot read ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path.name}: not UTF-8 ({exc})") from None


def _check_resolved(rules: InboundRuleSet, name: str) -> None:
    departments, groups = scope_names(rules)
    resolved = rules.resolved or Resolved()
    missing = sorted(departments - set(resolved.departments))
    missing += sorted(groups - set(resolved.groups))
    if missing:
        raise RulesError(f"{name}: {RESOLVED_KEY}: does not resolve {', '.join(missing)}")


def scope_names(rules: InboundRuleSet) -> tuple[set[str], set[str]]:
    """The departments and groups the rules' scopes name."""
    departments = {d for rule in rules.rule for d in rule.departments}
    groups = {g for rule in rules.rule for g in rule.groups}
    return departments, groups


def published_text(
    authored: str, departments: Mapping[str, Iterable[str]], groups: Mapping[str, Iterable[str]]
) -> str:
    """``authored`` with the ``[resolved]`` table appended: what the outer agent receives."""
    lines = [
        authored.rstrip("\n"),
        "",
        "# ---- written by the inner agent when publishing: who is in each department and",
        "# ---- group the scopes above name (from its directory)",
        f"[{RESOLVED_KEY}.departments]",
    ]
    lines += [f"{_toml_string(n)} = {_toml_list(a)}" for n, a in sorted(departments.items())]
    lines.append(f"[{RESOLVED_KEY}.groups]")
    lines += [f"{_toml_string(n)} = {_toml_list(a)}" for n, a in sorted(groups.items())]
    return "\n".join(lines) + "\n"


def _toml_string(value: str) -> str:
    # A JSON string is a TOML basic string, once DEL (which TOML also wants escaped) is.
    return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")


def _toml_list(values: Iterable[str]) -> str:
    return "[" + ", ".join(_toml_string(v) for v in sorted(set(values))) + "]"


DEFAULT_INBOUND_RULES_TOML: Final = """
version = 1
default_action = "allow"
# Carried mail shows no unique identifier (resident, foreigner, licence, passport numbers).
default_mask = ["rrn", "foreigner_id", "driver_license", "passport"]
"""


def default_inbound_rules() -> InboundRuleSet:
    """The built-in inbound rules: carry everything, the unique identifiers masked."""
    return parse_inbound_text(DEFAULT_INBOUND_RULES_TOML, "built-in inbound rules")


# ---- evaluation ---------------------------------------------------------------------------


def needs_mail_text(rules: InboundRuleSet) -> bool:
    """Whether a condition reads the mail's text (subject, bodies, attachments): without
    one, the envelope, the headers and the attachment list are all the rules need."""
    return any(c.field not in _CHEAP_FIELDS for rule in rules.rule for c in rule.condition)


def decide_recipients(
    rules: InboundRuleSet, facts: MailFacts, recipients: Sequence[str], membership: Membership
) -> tuple[RecipientGroup, ...]:
    """The recipients grouped by their decision, in the order they first appear."""
    groups: dict[InboundDecision, list[str]] = {}
    for recipient in dict.fromkeys(recipients):
        groups.setdefault(decide(rules, facts, recipient, membership), []).append(recipient)
    return tuple(RecipientGroup(tuple(rcpts), decision) for decision, rcpts in groups.items())


def decide(
    rules: InboundRuleSet, facts: MailFacts, recipient: str, membership: Membership
) -> InboundDecision:
    """The decision for ``recipient`` (see the module text for the order)."""
    monitored: list[tuple[str, str]] = []
    deciding: tuple[InboundRule, str] | None = None
    masking: InboundRule | None = None
    for rule in rules.rule:
        if deciding is not None and masking is not None:
            break
        wanted = masking is None if rule.action == "mask" else deciding is None
        if not wanted or not rule.enabled or not _in_scope(rule, recipient, membership):
            continue
        reasons = applies(rule, facts)
        if reasons is None:
            continue
        why = f"rule {rule.id!r} ({rule.action}): {'; '.join(reasons)}"
        if rule.action == "mask":
            masking = rule
        elif rule.action == "monitor":
            monitored.append((rule.id, why))
        else:
            deciding = (rule, why)
    return _decision(rules, deciding, monitored, masking)


def _decision(
    rules: InboundRuleSet,
    deciding: tuple[InboundRule, str] | None,
    monitored: list[tuple[str, str]],
    masking: InboundRule | None,
) -> InboundDecision:
    chosen = masking.masked_types if masking is not None else tuple(rules.default_mask)
    base = InboundDecision(
        action=rules.default_action,
        rule=None,
        explanation=f"no rule applied; default {rules.default_action}",
        mask=tuple(kind for kind in PII_TYPES if kind in chosen),
        mask_rule=masking.id if masking is not None else None,
        monitored_by=tuple(rule_id for rule_id, _ in monitored),
        approver="department_head" if rules.default_action == "hold" else None,
    )
    if deciding is not None:
        rule, why = deciding
        action: Outcome = (
            "block" if rule.action == "block" else ("hold" if rule.action == "hold" else "allow")
        )
        approver = (rule.approver or "department_head") if action == "hold" else None
        decided = replace(
            base,
            action=action,
            rule=rule.id,
            explanation=why,
            silent=rule.silent,
            approver=approver,
        )
        # nothing of a blocked mail is shown, so what it would mask does not tell it apart
        return replace(decided, mask=(), mask_rule=None) if action == "block" else decided
    if monitored:
        why = "; ".join(w for _, w in monitored)
        return replace(base, action="monitor", rule=monitored[0][0], explanation=why, approver=None)
    return base


def _in_scope(rule: InboundRule, recipient: str, membership: Membership) -> bool:
    address = recipient.strip().lower()
    if rule.scope == "users":
        return address in rule.users
    if rule.scope == "departments":
        return any(address in membership.departments.get(d, ()) for d in rule.departments)
    if rule.scope == "groups":
        return any(address in membership.groups.get(g, ()) for g in rule.groups)
    return True
