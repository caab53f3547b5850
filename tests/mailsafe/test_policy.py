"""Rules: loading (refusals name file, rule and key), evaluation order, scopes, every field."""

from __future__ import annotations

from pathlib import Path

import pytest

from mailsafe.policy import (
    MailFacts,
    RulesError,
    RuleSet,
    ScopeNames,
    SenderInfo,
    default_rules,
    evaluate,
    load_rules,
    parse_rules,
    unknown_scope_names,
)

KIM = SenderInfo("kim@corp.example", "영업팀")


def rules(text: str, tmp_path: Path) -> RuleSet:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return load_rules(path)


def refusal(text: str, tmp_path: Path) -> str:
    with pytest.raises(RulesError) as caught:
        rules(text, tmp_path)
    return str(caught.value)


RRN_IN_ATTACHMENT = MailFacts(
    sender=KIM,
    recipients=("partner@example.com",),
    texts=(("subject", "급여 명세"), ("body.text", "첨부 확인 바랍니다"), ("attachment-name:급여.xlsx", "급여.xlsx"),
           ("attachment:급여.xlsx", "이름\t주민번호")),
    findings=(("attachment:급여.xlsx", "rrn"), ("attachment:급여.xlsx", "rrn"), ("body.text", "credit_card")),
    attachment_count=1,
    largest_attachment=20_000,
)  # fmt: skip


# ---- loading ---------------------------------------------------------------------------------


def test_example_file_loads(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[2] / "docs" / "policy.md"
    outbound = example.read_text(encoding="utf-8").split("## Inbound rules")[0]
    blocks = outbound.split("```toml\n")[1:]  # the inbound ones: test_inbound_rules.py
    assert blocks, "docs/policy.md has TOML examples"
    for block in blocks:
        loaded = rules(block.split("```", 1)[0], tmp_path)
        assert loaded.rule


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[[rule]]\nid = 'a'\naction = 'blok'\n[[rule.condition]]\nfield='subject'\ncontains='x'",
         "rules.toml: rule 1 ('a'): action: Input should be"),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='subject'\ncontains='x'\n"
         "[[rule]]\nid = 'b'\naction = 'allow'\n[[rule.condition]]\nfield='subject'\nregex='(a+)+$'",
         "rules.toml: rule 2 ('b'): condition 1: regex repeats a repeating group"),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='subject'\nregex='('",
         "rules.toml: rule 1 ('a'): condition 1: regex does not compile"),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='subject'\nregex='" + "a" * 300 + "'",
         "rules.toml: rule 1 ('a'): condition 1: regex: String should have at most 256"),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='subject'\ncontains='x'\ncolour='red'",
         "rules.toml: rule 1 ('a'): condition 1: colour: Extra inputs are not permitted"),
        ("[[rule]]\nid = 'a'\naction = 'block'\nscope = 'departments'\n[[rule.condition]]\nfield='subject'\ncontains='x'",
         'rules.toml: rule 1 (\'a\'): scope "departments" needs a "departments" list'),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='attachment_count'\ncontains='x'",
         'rules.toml: rule 1 (\'a\'): condition 1: field "attachment_count" needs "at_least"'),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='body'\npii=['ssn']",
         "rules.toml: rule 1 ('a'): condition 1: pii.0: Input should be 'rrn'"),
        ("[[rule]]\nid = 'a'\naction = 'block'", "rules.toml: rule 1 ('a'): condition: Field required"),
        ("[[rule]]\nid = 'a'\naction = 'block'\n[[rule.condition]]\nfield='subject'\ncontains='x'\n"
         "[[rule]]\nid = 'a'\naction = 'allow'\n[[rule.condition]]\nfield='subject'\ncontains='y'",
         "rules.toml: rule ids must be unique; repeated: a"),
        ("rule = [", "rules.toml: not valid TOML"),
        ("version = 2", "rules.toml: version: Input should be 1"),
    ],
)  # fmt: skip
def test_refusals_name_file_rule_and_key(text: str, expected: str, tmp_path: Path) -> None:
    assert refusal(text, tmp_path).startswith(expected)


def test_missing_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(RulesError, match="nope.toml: cannot read"):
        load_rules(tmp_path / "nope.toml")


# ---- evaluation order --------------------------------------------------------------------------

ORDERED = """
default_action = "allow"

[[rule]]
id = "watch-partner"
action = "monitor"
[[rule.condition]]
field = "recipient"
contains = "@example.com"

[[rule]]
id = "payroll-exception"
action = "allow"
scope = "users"
users = ["PAY@corp.example"]
[[rule.condition]]
field = "attachment_content"
pii = ["rrn"]

[[rule]]
id = "hold-rrn"
action = "approve"
[[rule.condition]]
field = "attachment_content"
pii = ["rrn", "foreigner_id"]
min_count = 2

[[rule]]
id = "block-rrn"
action = "block"
[[rule.condition]]
field = "any"
pii = ["rrn"]
"""


def test_first_deciding_rule_in_file_order_wins(tmp_path: Path) -> None:
    decision = evaluate(rules(ORDERED, tmp_path), RRN_IN_ATTACHMENT)
    assert (decision.action, decision.rule) == ("approve", "hold-rrn")
    assert decision.monitored_by == ("watch-partner",)
    assert (
        "2 personal-data finding(s) >= 2 (rrn x2) in attachment:급여.xlsx" in decision.explanation
    )


def test_user_scope_exception_comes_first(tmp_path: Path) -> None:
    facts = MailFacts(**{**RRN_IN_ATTACHMENT.__dict__, "sender": SenderInfo("pay@corp.example")})
    decision = evaluate(rules(ORDERED, tmp_path), facts)
    assert (decision.action, decision.rule) == ("allow", "payroll-exception")


def test_min_count_not_reached_falls_through(tmp_path: Path) -> None:
    facts = MailFacts(**{**RRN_IN_ATTACHMENT.__dict__, "findings": (("subject", "rrn"),)})
    assert evaluate(rules(ORDERED, tmp_path), facts).rule == "block-rrn"


def test_only_monitor_applies(tmp_path: Path) -> None:
    facts = MailFacts(sender=KIM, recipients=("x@example.com",))
    decision = evaluate(rules(ORDERED, tmp_path), facts)
    assert (decision.action, decision.rule) == ("monitor", "watch-partner")


def test_nothing_applies_gives_default(tmp_path: Path) -> None:
    ruleset = rules(
        ORDERED.replace('default_action = "allow"', 'default_action = "approve"'), tmp_path
    )
    decision = evaluate(ruleset, MailFacts(sender=KIM, recipients=("a@corp.example",)))
    assert (decision.action, decision.rule) == ("approve", None)


# ---- scopes and fields -------------------------------------------------------------------------


def one_rule(condition: str, *, scope: str = "", match: str = "", rule_id: str = "r") -> str:
    return (
        f"[[rule]]\nid = '{rule_id}'\naction = 'block'\n{scope}\n{match}\n[[rule.condition]]\n"
        f"{condition}\n"
    )


@pytest.mark.parametrize(
    ("condition", "applies"),
    [
        ("field='sender'\ncontains='@corp.example'", True),
        ("field='recipient'\nregex='@example\\.com$'", True),
        ("field='recipient'\ncontains=['@gmail.com', '@naver.com']", False),
        ("field='subject'\ncontains='급여'", True),
        ("field='subject'\ncontains='첨부'", False),
        ("field='body'\ncontains='첨부'", True),
        ("field='attachment_name'\nregex='\\.xlsx$'", True),
        ("field='attachment_content'\ncontains='주민번호'", True),
        ("field='body'\npii=['credit_card']", True),
        ("field='subject'\npii=['credit_card']", False),
        ("field='attachment_count'\nat_least=1", True),
        ("field='attachment_count'\nat_least=2", False),
        ("field='attachment_size'\nat_most=10000", False),
        ("field='attachment_size'\nat_least=10000\nat_most=30000", True),
        ("field='unreadable'", False),
    ],
)
def test_each_field(condition: str, applies: bool, tmp_path: Path) -> None:
    decision = evaluate(rules(one_rule(condition), tmp_path), RRN_IN_ATTACHMENT)
    assert (decision.rule == "r") is applies


def test_unreadable_reasons() -> None:
    facts = MailFacts(sender=KIM, unreadable=(("attachment:a.zip", "encrypted"),))
    any_reason = parse_rules(
        {"rule": [{"id": "u", "action": "approve", "condition": [{"field": "unreadable"}]}]}
    )
    only_bombs = parse_rules(
        {
            "rule": [
                {
                    "id": "u",
                    "action": "block",
                    "condition": [{"field": "unreadable", "reasons": ["zip-bomb"]}],
                }
            ]
        }
    )
    decision = evaluate(any_reason, facts)
    assert decision.rule == "u"
    assert "attachment:a.zip (encrypted)" in decision.explanation
    assert evaluate(only_bombs, facts).rule is None


@pytest.mark.parametrize(
    ("scope", "applies"),
    [
        ("scope='everyone'", True),
        ("scope='departments'\ndepartments=['영업팀', '재무팀']", True),
        ("scope='departments'\ndepartments=['인사팀']", False),
        ("scope='users'\nusers=['KIM@corp.example']", True),
        ("scope='users'\nusers=['lee@corp.example']", False),
    ],
)
def test_scopes(scope: str, applies: bool, tmp_path: Path) -> None:
    ruleset = rules(one_rule("field='subject'\ncontains='급여'", scope=scope), tmp_path)
    assert (evaluate(ruleset, RRN_IN_ATTACHMENT).rule == "r") is applies


# 김 of 영업1팀 (below 영업부, below 경영본부), in the group 고객정보 취급자, rank 대리
KIM_IN_THE_TREE = SenderInfo("kim@corp.example", "영업1팀", ("영업부", "경영본부"),
                             ("CS", "고객정보 취급자"), "대리")  # fmt: skip


@pytest.mark.parametrize(
    ("scope", "applies"),
    [
        ("scope='groups'\ngroups=['고객정보 취급자']", True),
        ("scope='groups'\ngroups=['인사 담당자', 'CS']", True),
        ("scope='groups'\ngroups=['인사 담당자']", False),
        ("scope='ranks'\nranks=['과장', '대리']", True),
        ("scope='ranks'\nranks=['과장']", False),
        ("scope='departments'\ndepartments=['영업1팀']", True),
        ("scope='departments'\ndepartments=['경영본부']", False),
        ("scope='departments'\ndepartments=['경영본부']\nsub_departments=true", True),
        ("scope='departments'\ndepartments=['영업부']\nsub_departments=true", True),
        ("scope='departments'\ndepartments=['인사부']\nsub_departments=true", False),
    ],
)  # fmt: skip
def test_group_rank_and_department_tree_scopes(scope: str, applies: bool, tmp_path: Path) -> None:
    ruleset = rules(one_rule("field='subject'\ncontains='급여'", scope=scope), tmp_path)
    facts = MailFacts(**{**RRN_IN_ATTACHMENT.__dict__, "sender": KIM_IN_THE_TREE})
    assert (evaluate(ruleset, facts).rule == "r") is applies


def test_a_stranger_is_in_no_group_rank_or_department(tmp_path: Path) -> None:
    stranger = MailFacts(**{**RRN_IN_ATTACHMENT.__dict__, "sender": SenderInfo("x@corp.example")})
    for scope in ("scope='groups'\ngroups=['CS']", "scope='ranks'\nranks=['']",
                  "scope='departments'\ndepartments=['경영본부']\nsub_departments=true"):  # fmt: skip
        ruleset = rules(one_rule("field='subject'\ncontains='급여'", scope=scope), tmp_path)
        assert evaluate(ruleset, stranger).rule is None, scope


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("scope = 'groups'", "scope \"groups\" needs a \"groups\" list"),
        ("scope = 'ranks'\nranks = []", "scope \"ranks\" needs a \"ranks\" list"),
        ("scope = 'groups'\ngroups = ['CS']\nsub_departments = true",
         '"sub_departments" is an option of scope "departments"'),
        ("scope = 'teams'", "scope: Input should be 'everyone', 'departments', 'users', 'groups' or"),
    ],
)  # fmt: skip
def test_scope_refusals_name_the_rule(scope: str, expected: str, tmp_path: Path) -> None:
    text = one_rule("field='subject'\ncontains='x'", scope=scope)
    assert refusal(text, tmp_path).startswith(f"rules.toml: rule 1 ('r'): {expected}")


def test_unknown_scope_names_name_the_rule_and_key(tmp_path: Path) -> None:
    text = (one_rule("field='subject'\ncontains='x'", scope="scope='groups'\ngroups=['CS', '고객정보취급자']")
            + one_rule("field='subject'\ncontains='y'", scope="scope='ranks'\nranks=['과장']", rule_id="s")
            + one_rule("field='subject'\ncontains='z'", scope="scope='departments'\ndepartments=['인사부']",
                       rule_id="t"))  # fmt: skip
    known = ScopeNames(
        frozenset({"영업부"}), frozenset({"CS", "고객정보 취급자"}), frozenset({"대리"})
    )
    assert unknown_scope_names(rules(text, tmp_path), known) == [
        "rule 'r': groups: '고객정보취급자' is not a group of the directory",
        "rule 's': ranks: '과장' is not a rank of the directory",
        "rule 't': departments: '인사부' is not a department of the directory",
    ]


def test_match_any_and_all(tmp_path: Path) -> None:
    two = "field='subject'\ncontains='없는 말'\n[[rule.condition]]\nfield='body'\ncontains='첨부'"
    assert evaluate(rules(one_rule(two), tmp_path), RRN_IN_ATTACHMENT).rule is None
    assert (
        evaluate(rules(one_rule(two, match="match='any'"), tmp_path), RRN_IN_ATTACHMENT).rule == "r"
    )


def test_regex_runs_on_a_capped_input(tmp_path: Path) -> None:
    huge = "a" * (3 << 20) + "SECRET"
    facts = MailFacts(sender=KIM, texts=(("attachment:big.txt", huge),))
    ruleset = rules(one_rule("field='attachment_content'\nregex='SECRET'"), tmp_path)
    assert evaluate(ruleset, facts).rule is None  # past MAX_REGEX_INPUT_CHARS


def test_forwarded_places_count_as_their_kind(tmp_path: Path) -> None:
    facts = MailFacts(sender=KIM, texts=(("forwarded[1].subject", "급여"),))
    assert (
        evaluate(rules(one_rule("field='subject'\ncontains='급여'"), tmp_path), facts).rule == "r"
    )


def test_explanations_show_no_values() -> None:
    facts = MailFacts(
        sender=KIM, findings=(("body.text", "rrn"),), texts=(("body.text", "800101-1234560"),)
    )
    decision = evaluate(default_rules(), facts)
    assert decision.action == "approve"
    assert "800101" not in decision.explanation


def test_default_rules_hold_personal_data_and_unreadable() -> None:
    assert evaluate(default_rules(), MailFacts(sender=KIM)).action == "allow"
    held = evaluate(
        default_rules(), MailFacts(sender=KIM, unreadable=(("attachment:x.pdf", "encrypted"),))
    )
    assert (held.action, held.rule) == ("approve", "unreadable-attachment")
