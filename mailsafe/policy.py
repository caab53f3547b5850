"""Outbound rules: what happens to a mail given who sends it and what it carries.

Evaluation order (also in docs/policy.md):
1. Rules are evaluated in file order; a rule applies when the sender is in its scope and
   its conditions hold (all of them, or any with ``match = "any"``).
2. An applying ``monitor`` rule is noted and evaluation goes on.
3. The first applying ``block``, ``approve`` or ``allow`` rule decides; evaluation stops.
   (Put exceptions, e.g. "payroll may send resident numbers to the bank", above the rules
   they exempt from.)
4. If none decides: ``monitor`` when a monitor rule applied, else the file's
   ``default_action`` (``allow`` unless set).

The decision names the rule and says why, with counts and places, never the values found.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Protocol

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from mailsafe.errors import MailsafeError
from mailsafe.pii import PII_TYPES, PiiType

Action = Literal["block", "approve", "monitor", "allow"]
TextField = Literal[
    "sender", "recipient", "subject", "body", "attachment_name", "attachment_content", "any"
]
NumberField = Literal["attachment_count", "attachment_size"]
# Who is told by mail when a rule decides a mail (the console's policy editor; D62).
NotifyWhom = Literal["sender", "recipient", "admin", "security"]
# Whose mail a rule applies to: everyone, or senders in the named departments, among the
# named addresses, in the directory's named groups or of the named job ranks.
Scope = Literal["everyone", "departments", "users", "groups", "ranks"]
ReasonCode = Literal[
    "encrypted", "corrupt", "too-big", "too-deep", "too-many-files", "zip-bomb", "timeout",
    "unsupported-format", "reader-failed",
]  # fmt: skip

# A rules file larger than this is not a rules file.
MAX_RULES_FILE_BYTES: Final = 1 << 20
# Regular expressions longer than this are refused: rules are for administrators, not programs.
MAX_REGEX_CHARS: Final = 256
# A regex runs over at most this many characters of each place, so a pathological pattern on
# a huge attachment cannot stall the outbound queue (Python's re has no timeout).
MAX_REGEX_INPUT_CHARS: Final = 1 << 20
# Repetition of a group that itself repeats ("(a+)+", "(\w*)*") can take exponential time.
_NESTED_REPEAT_RE: Final = re.compile(r"\((?:[^()\\]|\\.)*[+*}](?:[^()\\]|\\.)*\)\s*[+*{]")
_DECIDING: Final = frozenset({"block", "approve", "allow"})
_FORWARDED_PREFIX_RE: Final = re.compile(r"^(?:forwarded\[\d+\]\.)+")
# A domain as an administrator writes it in a list: labels of letters, digits and hyphens.
_DOMAIN_RE: Final = re.compile(r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
                               r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?")  # fmt: skip


class RulesError(MailsafeError):
    """A rules file cannot be used; the message names the file, the rule and the key."""

    code = "rules-invalid"


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Condition(_Model):
    """One test on the mail. Exactly one matcher: ``contains``, ``regex``, ``pii``,
    ``domains`` (``sender``, ``recipient``), ``at_least``/``at_most`` (numbers) or ``reasons``
    (``field = "unreadable"``)."""

    field: TextField | NumberField | Literal["unreadable"]
    contains: Annotated[list[str], Field(min_length=1)] | None = None
    regex: Annotated[str, Field(min_length=1, max_length=MAX_REGEX_CHARS)] | None = None
    pii: Annotated[list[PiiType], Field(min_length=1)] | None = None
    domains: Annotated[list[str], Field(min_length=1)] | None = None
    min_count: Annotated[int, Field(ge=1)] = 1
    # Count different values, not occurrences: a signature quoted in every reply of a thread
    # is one phone number, a customer list is many.
    distinct: bool = False
    at_least: Annotated[int, Field(ge=0)] | None = None
    at_most: Annotated[int, Field(ge=0)] | None = None
    reasons: list[ReasonCode] | None = None

    @field_validator("contains", mode="before")
    @classmethod
    def _one_string_is_a_list(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("domains")
    @classmethod
    def _domain_names(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        for domain in value:
            if not _DOMAIN_RE.fullmatch(domain):
                raise ValueError(f"{domain!r} is not a domain name (e.g. partner.example)")
        return [domain.lower().rstrip(".") for domain in value]

    @model_validator(mode="after")
    def _one_matcher(self) -> Condition:
        text = [m for m in ("contains", "regex", "pii", "domains") if getattr(self, m) is not None]
        numbers = self.at_least is not None or self.at_most is not None
        if self.field == "unreadable":
            if text or numbers:
                raise ValueError('field "unreadable" takes only "reasons" (or nothing: any)')
        elif self.field in ("attachment_count", "attachment_size"):
            if text or not numbers:
                raise ValueError(f'field "{self.field}" needs "at_least" and/or "at_most"')
        elif len(text) != 1 or numbers:
            raise ValueError(f'field "{self.field}" needs exactly one of contains, regex, pii')
        if self.domains is not None and self.field not in ("sender", "recipient"):
            raise ValueError('"domains" is a matcher of the fields "sender" and "recipient"')
        if self.regex is not None:
            _check_regex(self.regex)
        return self


class Rule(_Model):
    id: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
    description: str = ""
    action: Action
    scope: Scope = "everyone"
    departments: list[str] = []
    # scope "departments": also the departments below those named (the directory's tree)
    sub_departments: bool = False
    users: list[str] = []
    groups: list[str] = []  # the directory's named groups ("고객정보 취급자")
    ranks: list[str] = []  # job ranks (직급) as the directory writes them
    match: Literal["all", "any"] = "all"
    condition: Annotated[list[Condition], Field(min_length=1)]
    enabled: bool = True  # a disabled rule is kept in the file and never applies
    notify: list[NotifyWhom] = []

    @model_validator(mode="after")
    def _scope_lists(self) -> Rule:
        if self.scope != "everyone" and not getattr(self, self.scope):
            raise ValueError(f'scope "{self.scope}" needs a "{self.scope}" list')
        if self.sub_departments and self.scope != "departments":
            raise ValueError('"sub_departments" is an option of scope "departments"')
        return self


class RuleSet(_Model):
    version: Literal[1] = 1
    default_action: Action = "allow"
    rule: list[Rule] = []

    @model_validator(mode="after")
    def _unique_ids(self) -> RuleSet:
        seen = Counter(rule.id for rule in self.rule)
        twice = sorted(rule_id for rule_id, count in seen.items() if count > 1)
        if twice:
            raise ValueError(f"rule ids must be unique; repeated: {', '.join(twice)}")
        return self


@dataclass(frozen=True)
class SenderInfo:
    """Who sends: the envelope sender and, from the directory, the department, the
    departments above it (nearest first), the person's groups and job rank."""

    address: str
    department: str | None = None
    departments_above: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    rank: str = ""


@dataclass(frozen=True)
class MailFacts:
    """What policy looks at, gathered by ``mailsafe.scan`` from one mail."""

    sender: SenderInfo
    recipients: tuple[str, ...] = ()
    # The From: addresses, which the field "sender" also tests (inbound mail: the envelope
    # sender and the author differ for every mailing service; outbound scans leave it empty).
    authors: tuple[str, ...] = ()
    texts: tuple[tuple[str, str], ...] = ()  # (where, text), where as in mailsafe.extract
    findings: tuple[tuple[str, PiiType], ...] = ()  # (where, type) of each finding
    # Per finding (same order), what tells two values apart for ``distinct`` counting: kept in
    # memory only, never shown; empty when the caller has no values (each finding differs).
    finding_keys: tuple[str, ...] = ()
    unreadable: tuple[tuple[str, str], ...] = ()  # (where, reason code)
    attachment_count: int = 0
    largest_attachment: int = 0


@dataclass(frozen=True)
class Decision:
    action: Action
    rule: str | None
    explanation: str
    monitored_by: tuple[str, ...] = field(default=())


# ---- loading ------------------------------------------------------------------------------


def load_rules(path: str | Path) -> RuleSet:
    """Read and validate a rules file; ``RulesError`` names file, rule and key on refusal."""
    path = Path(path)
    name = path.name
    try:
        if path.stat().st_size > MAX_RULES_FILE_BYTES:
            raise RulesError(f"{name}: larger than {MAX_RULES_FILE_BYTES} bytes")
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{name}: cannot read ({exc.strerror or exc})") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise RulesError(f"{name}: not valid TOML ({exc})") from None
    return parse_rules(document, name)


def parse_rules(document: dict[str, object], name: str = "rules") -> RuleSet:
    try:
        return RuleSet.model_validate(document)
    except ValidationError as exc:
        raise RulesError(describe_refusal(exc, document, name)) from None


def describe_refusal(exc: ValidationError, document: dict[str, object], name: str) -> str:
    """The first validation error as "FILE: rule N (ID): condition M: KEY: problem"; an
    unknown value is named ("field: Input should be 'sender', ... or 'unreadable', not
    'sendr'"), an unknown key by its name ("colour: Extra inputs are not permitted")."""
    errors = exc.errors()
    error = errors[0]
    location = _plain_location(error["loc"])
    words: list[str] = []
    if len(location) >= 2 and location[0] == "rule" and isinstance(location[1], int):
        rules = document.get("rule")
        rule_id = None
        if (
            isinstance(rules, list)
            and location[1] < len(rules)
            and isinstance(rules[location[1]], dict)
        ):
            rule_id = rules[location[1]].get("id")
        words.append(f"rule {location[1] + 1}" + (f" ({rule_id!r})" if rule_id else ""))
        location = location[2:]
        if len(location) >= 2 and location[0] == "condition" and isinstance(location[1], int):
            words.append(f"condition {location[1] + 1}")
            location = location[2:]
    key = ".".join(str(part) for part in location)
    if key:
        words.append(key)
    return ": ".join([name, *words, _message(error, errors)])


def refusals(exc: ValidationError) -> list[tuple[tuple[int | str, ...], str]]:
    """Every validation error as (location, problem), one per location, in the words
    ``describe_refusal`` uses: what the console's policy editor shows beside each field."""
    errors = exc.errors()
    found: dict[tuple[int | str, ...], str] = {}
    for error in errors:
        location = tuple(_plain_location(error["loc"]))
        found.setdefault(location, _message(error, errors))
    return list(found.items())


def _message(error: Mapping[str, Any], errors: Sequence[Mapping[str, Any]]) -> str:
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "literal_error":
        # a union of literals (a condition's field) fails once per member: all choices named
        same = [e for e in errors if e["type"] == "literal_error"
                and _plain_location(e["loc"]) == _plain_location(error["loc"])]  # fmt: skip
        choices = [str(e.get("ctx", {}).get("expected", "")).replace(" or ", ", ") for e in same]
        joined = ", ".join(choices)
        last = joined.rfind(", ")
        joined = joined if last < 0 else joined[:last] + " or " + joined[last + 2 :]
        message = f"Input should be {joined}, not {repr(error['input'])[:80]}"
    return message


def _plain_location(location: tuple[int | str, ...]) -> list[int | str]:
    """The path of a value without pydantic's names for union members (``literal[...]``)."""
    return [
        p for p in location if not (isinstance(p, str) and p.startswith(("literal[", "function-")))
    ]


def _check_regex(pattern: str) -> None:
    try:
        re.compile(pattern)
    except re.error as exc:
        raise ValueError(f"regex does not compile ({exc})") from None
    if _NESTED_REPEAT_RE.search(pattern):
        raise ValueError("regex repeats a repeating group, which can take exponential time")


# ---- evaluation ---------------------------------------------------------------------------


def evaluate(rules: RuleSet, facts: MailFacts) -> Decision:
    """The decision for ``facts`` under ``rules`` (see the module text for the order)."""
    monitored: list[tuple[str, str]] = []
    for rule in rules.rule:
        if not rule.enabled or not _in_scope(rule, facts.sender):
            continue
        reasons = applies(rule, facts)
        if reasons is None:
            continue
        why = f"rule {rule.id!r} ({rule.action}): {'; '.join(reasons)}"
        if rule.action in _DECIDING:
            notes = tuple(rule_id for rule_id, _ in monitored)
            return Decision(rule.action, rule.id, why, notes)
        monitored.append((rule.id, why))
    if monitored:
        return Decision(
            "monitor", monitored[0][0], "; ".join(w for _, w in monitored),
            tuple(rule_id for rule_id, _ in monitored),
        )  # fmt: skip
    return Decision(rules.default_action, None, f"no rule applied; default {rules.default_action}")


def _in_scope(rule: Rule, sender: SenderInfo) -> bool:
    if rule.scope == "departments":
        if sender.department is None:
            return False
        mine = (sender.department, *(sender.departments_above if rule.sub_departments else ()))
        return any(department in rule.departments for department in mine)
    if rule.scope == "users":
        return sender.address.lower() in {user.lower() for user in rule.users}
    if rule.scope == "groups":
        return any(group in rule.groups for group in sender.groups)
    if rule.scope == "ranks":
        return bool(sender.rank) and sender.rank in rule.ranks
    return True


@dataclass(frozen=True)
class ScopeNames:
    """The names a directory knows, which a rule's scope may use."""

    departments: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    ranks: frozenset[str] = frozenset()


def unknown_scope_names(rules: RuleSet, known: ScopeNames) -> list[str]:
    """One line per name a rule's scope uses that the directory does not know ("rule 'x':
    groups: '고객정보취급자' is not a group of the directory"), in file order."""
    found: list[str] = []
    for rule in rules.rule:
        for key, kind in (("departments", "department"), ("groups", "group"), ("ranks", "rank")):
            if rule.scope != key:
                continue
            for name in getattr(rule, key):
                if name not in getattr(known, key):
                    found.append(f"rule {rule.id!r}: {key}: {name!r} is not a {kind} "
                                 "of the directory")  # fmt: skip
    return found


class _Conditional(Protocol):
    @property
    def match(self) -> Literal["all", "any"]: ...

    @property
    def condition(self) -> list[Condition]: ...


def applies(rule: _Conditional, facts: MailFacts) -> list[str] | None:
    """Reasons the rule applies (one per holding condition), or None when it does not. A rule
    without conditions (only inbound rules may have none) applies to every mail."""
    if not rule.condition:
        return ["every mail"]
    results = [_condition(condition, facts) for condition in rule.condition]
    held = [reason for reason in results if reason is not None]
    if rule.match == "all" and len(held) != len(results):
        return None
    return held or None


def _condition(condition: Condition, facts: MailFacts) -> str | None:
    if condition.field == "unreadable":
        return _unreadable(condition, facts)
    if condition.field in ("attachment_count", "attachment_size"):
        return _number(condition, facts)
    if condition.pii is not None:
        return _pii(condition, facts)
    return _text(condition, facts)


def _unreadable(condition: Condition, facts: MailFacts) -> str | None:
    wanted = set(condition.reasons or ())
    hits = [(w, r) for w, r in facts.unreadable if not wanted or r in wanted]
    if not hits:
        return None
    return "unreadable: " + ", ".join(f"{where} ({reason})" for where, reason in hits[:5])


def _number(condition: Condition, facts: MailFacts) -> str | None:
    value = (
        facts.attachment_count
        if condition.field == "attachment_count"
        else facts.largest_attachment
    )
    if condition.at_least is not None and value < condition.at_least:
        return None
    if condition.at_most is not None and value > condition.at_most:
        return None
    bounds = [f">= {condition.at_least}"] if condition.at_least is not None else []
    bounds += [f"<= {condition.at_most}"] if condition.at_most is not None else []
    return f"{condition.field} {value} ({' and '.join(bounds)})"


def _pii(condition: Condition, facts: MailFacts) -> str | None:
    wanted = set(condition.pii or ())
    # Findings share few places (a table's thousand rows are one attachment): each place is
    # matched against the field once.
    places_in_field = {
        where: _where_matches(condition.field, where) for where in {w for w, _ in facts.findings}
    }
    chosen = [
        index
        for index, (where, kind) in enumerate(facts.findings)
        if kind in wanted and places_in_field[where]
    ]
    if condition.distinct and len(facts.finding_keys) == len(facts.findings):
        first_of_value = {facts.finding_keys[index]: index for index in reversed(chosen)}
        chosen = sorted(first_of_value.values())
    hits = [facts.findings[index] for index in chosen]
    if len(hits) < condition.min_count:
        return None
    per_type = Counter(kind for _, kind in hits)
    places = sorted({where for where, _ in hits})
    counts = ", ".join(f"{kind} x{per_type[kind]}" for kind in PII_TYPES if kind in per_type)
    shown = ", ".join(places[:5]) + (f" and {len(places) - 5} more" if len(places) > 5 else "")
    different = " different" if condition.distinct else ""
    return (
        f"{len(hits)}{different} personal-data finding(s) >= {condition.min_count} ({counts})"
        f" in {shown}"
    )


def _text(condition: Condition, facts: MailFacts) -> str | None:
    for where, text in _texts_for(condition.field, facts):
        if condition.domains is not None:
            domain = text.rpartition("@")[2].strip().lower().rstrip(".")
            if "@" in text and any(domain == d or domain.endswith("." + d)
                                   for d in condition.domains):  # fmt: skip
                return f"{_field_words(condition.field, where)} {text!r} is in {domain!r}"
        elif condition.contains is not None:
            folded = text.casefold()
            for needle in condition.contains:
                if needle.casefold() in folded:
                    return f"{_field_words(condition.field, where)} contains {needle!r}"
        elif condition.regex is not None and re.search(
            condition.regex, text[:MAX_REGEX_INPUT_CHARS]
        ):
            return f"{_field_words(condition.field, where)} matches /{condition.regex}/"
    return None


def _texts_for(name: str, facts: MailFacts) -> Sequence[tuple[str, str]]:
    if name == "sender":
        authors = [a for a in facts.authors if a and a != facts.sender.address]
        return [("sender", facts.sender.address)] + [("sender", a) for a in authors]
    if name == "recipient":
        return [("recipient", r) for r in facts.recipients]
    return [(w, t) for w, t in facts.texts if _where_matches(name, w)]


def _where_matches(name: str, where: str) -> bool:
    if name == "any":
        return True
    place = _FORWARDED_PREFIX_RE.sub("", where)
    if name == "subject":
        return place == "subject"
    if name == "body":
        return place.startswith("body.")
    if name == "attachment_name":
        return place.startswith("attachment-name:")
    if name == "attachment_content":
        return place.startswith("attachment:")
    return False


def _field_words(name: str, where: str) -> str:
    return name if name in ("sender", "recipient") else where


DEFAULT_RULES_TOML: Final = """
version = 1
default_action = "allow"

[[rule]]
id = "unreadable-attachment"
description = "An attachment that cannot be read may hide anything: a person decides."
action = "approve"
[[rule.condition]]
field = "unreadable"

[[rule]]
id = "personal-data"
description = "Any personal data goes to the department head for approval."
action = "approve"
[[rule.condition]]
field = "any"
pii = ["rrn", "foreigner_id", "driver_license", "passport", "credit_card", "bank_account",
       "health_insurance", "passport_mrz", "secret"]
min_count = 1

[[rule]]
id = "contact-list"
description = "A few phones or addresses are business mail; a list of them is a customer list."
action = "approve"
[[rule.condition]]
field = "any"
pii = ["phone", "email"]
min_count = 20
distinct = true
"""


def default_rules() -> RuleSet:
    """The built-in rules used when no rules file is configured."""
    return parse_rules(tomllib.loads(DEFAULT_RULES_TOML), "built-in rules")
