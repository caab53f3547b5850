"""One rule as the edit form shows it, and back (pure).

The form has a field per key of a rule (docs/policy.md) and a row per condition: the field,
one matcher, its value and, for personal data, the least count. Lists are written one per
line (the scope's names) or separated by commas (a condition's words, types, domains,
reasons); ``between`` is the two bounds of a number as ``N-M``. Rows left empty are dropped.

The rule made from a form is validated by the rules' own models, as ``maildiode check``
does (``edits.validate``); ``problems_by_field`` puts each problem beside its field.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

__all__ = [
    "MATCHERS",
    "MAX_CONDITIONS",
    "NOTIFY",
    "ConditionRow",
    "Direction",
    "RuleForm",
    "form_from_rule",
    "parse_form",
    "problems_by_field",
    "rule_from_form",
    "with_scope_name",
]

Direction = Literal["outbound", "inbound"]
# A rule with more conditions than this is a program, not a rule (the form shows this many rows).
MAX_CONDITIONS: Final = 20
# The form's fields are cut to this many characters (a regex is at most 256).
MAX_VALUE_CHARS: Final = 4000
MATCHERS: Final = ("contains", "regex", "pii", "domains", "reasons", "at_least", "at_most",
                   "between")  # fmt: skip
NOTIFY: Final = ("sender", "recipient", "admin", "security")
_LISTS: Final = ("contains", "pii", "domains", "reasons")
_NUMBERS: Final = ("at_least", "at_most")
_RULE_KEYS: Final = ("id", "description", "action", "scope", "match", "enabled", "silent",
                     "approver", "mask", "sub_departments")  # fmt: skip


@dataclass(frozen=True)
class ConditionRow:
    field: str = ""
    matcher: str = "contains"
    value: str = ""
    min_count: str = ""
    distinct: str = ""  # "on": min_count counts different values (a contact list), not findings

    @property
    def empty(self) -> bool:
        return not self.field and not self.value.strip()


@dataclass(frozen=True)
class RuleForm:
    """What the form holds, as text: ``values`` by field name, the notify choices, the rows."""

    values: Mapping[str, str] = field(default_factory=dict)
    notify: tuple[str, ...] = ()
    rows: tuple[ConditionRow, ...] = ()

    def get(self, name: str) -> str:
        return self.values.get(name, "")


def parse_form(get: Callable[[str], str], get_list: Callable[[str], Sequence[str]]) -> RuleForm:
    """The form as posted (``get`` one field, ``get_list`` a multiple choice); empty rows
    dropped, values cut to ``MAX_VALUE_CHARS``."""
    values = {name: get(name)[:MAX_VALUE_CHARS] for name in (*_RULE_KEYS, "scope_list")}
    rows = []
    for index in range(MAX_CONDITIONS):
        row = ConditionRow(*(get(f"c{index}_{part}")[:MAX_VALUE_CHARS].strip()
                             for part in ("field", "matcher", "value", "min_count",
                                          "distinct")))  # fmt: skip
        if not row.empty:
            rows.append(row)
    notify = tuple(n for n in NOTIFY if n in get_list("notify"))
    return RuleForm(values, notify, tuple(rows))


def rule_from_form(form: RuleForm, direction: Direction) -> dict[str, Any]:
    """The rule as the rules file holds it (validated later, by the rules' models)."""
    rule: dict[str, Any] = {"id": form.get("id").strip(), "action": form.get("action")}
    if description := form.get("description").strip():
        rule["description"] = description
    scope = form.get("scope") or "everyone"
    if scope != "everyone":
        rule["scope"] = scope
        rule[scope] = _lines(form.get("scope_list"))
    if direction == "outbound" and form.get("sub_departments") == "on":
        rule["sub_departments"] = True  # the models refuse it beside any scope but departments
    if form.get("match") == "any":
        rule["match"] = "any"
    if direction == "inbound":
        rule.update(_inbound_keys(form))
    if form.get("enabled") != "on":
        rule["enabled"] = False
    if form.notify:
        rule["notify"] = list(form.notify)
    conditions = [_condition(row) for row in form.rows]
    if conditions or direction == "outbound":
        rule["condition"] = conditions
    return rule


def _inbound_keys(form: RuleForm) -> dict[str, Any]:
    keys: dict[str, Any] = {}
    if form.get("silent") == "on":
        keys["silent"] = True
    if approver := form.get("approver"):
        keys["approver"] = approver
    if mask := _commas(form.get("mask")):
        keys["mask"] = mask
    return keys


def _condition(row: ConditionRow) -> dict[str, Any]:
    condition: dict[str, Any] = {"field": row.field}
    if row.matcher == "between":
        low, _, high = row.value.partition("-")
        condition["at_least"], condition["at_most"] = _number(low), _number(high)
    elif row.matcher in _NUMBERS:
        condition[row.matcher] = _number(row.value)
    elif row.matcher == "reasons":
        if reasons := _commas(row.value):
            condition["reasons"] = reasons
    elif row.matcher in _LISTS:
        condition[row.matcher] = _commas(row.value)
    else:  # regex, or a matcher the form does not know: the models name it
        condition[row.matcher or "contains"] = row.value
    if row.min_count:
        condition["min_count"] = _number(row.min_count)
    if row.distinct:
        condition["distinct"] = True
    return condition


def form_from_rule(rule: Mapping[str, Any]) -> RuleForm:
    """The form showing ``rule`` (a table of the rules file)."""
    scope = str(rule.get("scope", "everyone"))
    values = {
        "id": str(rule.get("id", "")),
        "description": str(rule.get("description", "")),
        "action": str(rule.get("action", "")),
        "scope": scope,
        "scope_list": "\n".join(map(str, rule.get(scope, []))) if scope != "everyone" else "",
        "match": str(rule.get("match", "all")),
        "enabled": "on" if rule.get("enabled", True) else "",
        "silent": "on" if rule.get("silent") else "",
        "approver": str(rule.get("approver") or ""),
        "mask": ", ".join(map(str, rule.get("mask") or [])),
        "sub_departments": "on" if rule.get("sub_departments") else "",
    }
    notify = tuple(str(n) for n in rule.get("notify", []))
    rows = tuple(_row(c) for c in rule.get("condition", []) if isinstance(c, Mapping))
    return RuleForm(values, notify, rows)


def _row(condition: Mapping[str, Any]) -> ConditionRow:
    field_name = str(condition.get("field", ""))
    count = str(condition["min_count"]) if "min_count" in condition else ""
    distinct = "on" if condition.get("distinct") else ""
    if "at_least" in condition and "at_most" in condition:
        value = f"{condition['at_least']}-{condition['at_most']}"
        return ConditionRow(field_name, "between", value, count, distinct)
    for matcher in MATCHERS:
        if matcher in condition:
            found = condition[matcher]
            text = ", ".join(map(str, found)) if isinstance(found, list) else str(found)
            return ConditionRow(field_name, matcher, text, count, distinct)
    return ConditionRow(field_name, "reasons", "", count, distinct)  # unreadable, any reason


def with_scope_name(form: RuleForm, kind: str, name: str) -> RuleForm:
    """``form`` with ``name`` (found in the directory as a ``kind``) in its scope's list: added
    to the list when the scope is that kind already, else the scope becomes ``kind`` and lists
    only ``name`` (a list of departments read as ranks would name nobody)."""
    name = name.strip()[:MAX_VALUE_CHARS]
    if not name:
        return form
    names = _lines(form.get("scope_list")) if form.get("scope") == kind else []
    if name not in names:
        names.append(name)
    values = {**form.values, "scope": kind, "scope_list": "\n".join(names)}
    return RuleForm(values, form.notify, form.rows)


def problems_by_field(
    refusals: Sequence[tuple[tuple[int | str, ...], str]], index: int
) -> dict[str, str]:
    """The problems of rule ``index`` (0-based) by the form field they belong beside;
    ``"rule"`` for the rule as a whole (and problems of the whole file, such as a repeated id,
    under ``"id"`` when they name ids)."""
    found: dict[str, str] = {}
    for location, problem in refusals:
        name = _field_of(location, index, problem)
        if name is not None:
            found.setdefault(name, problem)
    return found


def _field_of(location: tuple[int | str, ...], index: int, problem: str) -> str | None:
    if not location:
        return "id" if "rule ids" in problem else "rule"
    if location[:2] != ("rule", index):
        return None if location[0] == "rule" else "rule"
    rest = location[2:]
    if not rest:
        return "rule"
    if rest[0] == "condition" and len(rest) >= 2 and isinstance(rest[1], int):
        # the matcher's own problems and the condition's (a regex, "needs exactly one of")
        # go beside the value
        key = str(rest[2]) if len(rest) >= 3 else ""
        return f"c{rest[1]}_{key if key in ('field', 'min_count') else 'value'}"
    key = str(rest[0])
    if key in ("users", "departments", "groups", "ranks"):
        return "scope_list"
    return key if key in (*_RULE_KEYS, "notify", "condition") else "rule"


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _commas(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _number(text: str) -> int | str:
    text = text.strip()
    return int(text) if text.isdigit() else text  # not a number: the models say so
