"""The policy editor's pure parts: TOML written back, the form and back, every problem beside
its field (the rules' own validation, as `maildiode check`), edits, versions and their diff,
the dry run through the real reading and decision functions."""

from __future__ import annotations

import tomllib

import pytest

from inner_agent.policyedit import dryrun, edits
from inner_agent.policyedit.errors import RuleNotFound, RulesRefused
from inner_agent.policyedit.history import LoggedMail, try_on_history
from inner_agent.policyedit.ruleform import (
    ConditionRow,
    RuleForm,
    form_from_rule,
    problems_by_field,
    rule_from_form,
    with_scope_name,
)
from inner_agent.policyedit.tomltext import to_toml
from inner_agent.policyedit.versions import VersionStore, text_diff
from mailsafe.extract import extract_locations
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML
from mailsafe.policy import DEFAULT_RULES_TOML, parse_rules
from tests.support.documents import make_mail
from tests.support.outbound import RRN

INBOUND = """
version = 1
default_action = "allow"
default_mask = ["rrn"]

[groups]
"고객정보 취급자" = ["영업부", "kim@corp.example"]

[[rule]]
id = "hold-exe"
description = "실행 파일 \\"주의\\""
action = "hold"
scope = "groups"
groups = ["고객정보 취급자"]
approver = "security_officer"
[[rule.condition]]
field = "attachment_name"
regex = '\\.exe$'

[[rule]]
id = "quiet"
action = "block"
silent = true
enabled = false
notify = ["admin", "security"]
"""


def form(**values: str) -> RuleForm:
    rows = values.pop("rows", ())
    return RuleForm({"enabled": "on", **values}, (), tuple(rows))  # type: ignore[arg-type]


@pytest.mark.parametrize("text", [DEFAULT_RULES_TOML, DEFAULT_INBOUND_RULES_TOML, INBOUND])
def test_a_document_written_back_reads_the_same(text):
    document = tomllib.loads(text)
    assert tomllib.loads(to_toml(document)) == document


def test_a_rule_through_the_form_and_back_is_the_same_rule():
    for rule in edits.rules_of(tomllib.loads(INBOUND)):
        assert rule_from_form(form_from_rule(rule), "inbound") == rule
    for rule in edits.rules_of(tomllib.loads(DEFAULT_RULES_TOML)):
        assert rule_from_form(form_from_rule(rule), "outbound") == rule


def test_numbers_between_and_lists_by_commas():
    rule = rule_from_form(form(id="big", action="approve", rows=[
        ConditionRow("attachment_count", "between", "3-10"),
        ConditionRow("any", "pii", "rrn, passport", "2"),
        ConditionRow("unreadable", "reasons", ""),
    ]), "outbound")  # fmt: skip
    assert rule["condition"] == [
        {"field": "attachment_count", "at_least": 3, "at_most": 10},
        {"field": "any", "pii": ["rrn", "passport"], "min_count": 2},
        {"field": "unreadable"},
    ]
    assert parse_rules({"rule": [rule]}).rule[0].condition[0].at_most == 10


def test_every_problem_is_shown_beside_its_field():
    document = tomllib.loads(DEFAULT_RULES_TOML)
    draft = rule_from_form(form(id="bad id!", action="hold", rows=[
        ConditionRow("subject", "regex", "(a+)+"),
        ConditionRow("subjct", "contains", "x"),
        ConditionRow("any", "pii", "rrn", "0"),
    ]), "outbound")  # fmt: skip
    changed = edits.with_rule(document, draft, None)
    last = len(edits.rules_of(changed)) - 1  # the draft, after the default rules
    problems = problems_by_field(edits.validate("outbound", changed), last)
    assert "pattern" in problems["id"]
    assert "'block', 'approve', 'monitor' or 'allow'" in problems["action"]
    assert "exponential" in problems["c0_value"]
    assert "subjct" in problems["c1_field"]
    assert "greater than or equal to 1" in problems["c2_min_count"]
    assert not problems_by_field(edits.validate("outbound", document), 0)


def test_a_repeated_id_and_a_missing_scope_list():
    document = tomllib.loads(DEFAULT_RULES_TOML)
    twice = edits.with_rule(document, rule_from_form(form(
        id="personal-data", action="block", scope="departments",
        rows=[ConditionRow("subject", "contains", "x")]), "outbound"), None)  # fmt: skip
    last = len(edits.rules_of(twice)) - 1  # the draft, after the default rules
    problems = problems_by_field(edits.validate("outbound", twice), last)
    assert "departments" in problems["rule"]
    fixed = edits.with_rule(document, rule_from_form(form(
        id="personal-data", action="block", rows=[ConditionRow("subject", "contains", "x")]),
        "outbound"), None)  # fmt: skip
    assert (
        "repeated: personal-data"
        in problems_by_field(edits.validate("outbound", fixed), last)["id"]
    )


def test_the_text_to_save_must_pass_the_agents_parser():
    document = tomllib.loads(INBOUND)
    with pytest.raises(RulesRefused, match="resolved"):
        edits.checked_text("inbound", {**document, "resolved": {}}, "inbound.toml")
    with pytest.raises(RulesRefused, match="rule 1 .'x'.: action"):
        edits.checked_text("outbound", {"rule": [{"id": "x", "action": "hold",
                                                  "condition": [{"field": "any", "pii": ["rrn"]}]}]},
                           "rules.toml")  # fmt: skip
    assert tomllib.loads(edits.checked_text("inbound", document, "inbound.toml")) == document


def test_enable_disable_and_move():
    document = tomllib.loads(DEFAULT_RULES_TOML)
    off = edits.with_enabled(document, "personal-data", False)
    assert edits.rules_of(off)[1]["enabled"] is False
    assert "enabled" not in edits.rules_of(edits.with_enabled(off, "personal-data", True))[1]
    assert "enabled" not in edits.rules_of(document)[1]  # the edits do not change their input
    up = edits.moved(document, "personal-data", -1)
    before = [r["id"] for r in edits.rules_of(document)]
    assert before[:2] == ["unreadable-attachment", "personal-data"]
    assert [r["id"] for r in edits.rules_of(up)] == ["personal-data", "unreadable-attachment",
                                                     *before[2:]]  # fmt: skip
    assert edits.moved(up, "personal-data", -1) == up  # already first
    with pytest.raises(RuleNotFound):
        edits.moved(document, "nope", 1)


def test_versions_are_numbered_kept_and_diffed(tmp_path):
    store = VersionStore(tmp_path / "v")
    assert store.latest() is None
    first = store.add("a = 1\n", "file", "파일에 있던 내용", 1000)
    second = store.add("a = 2\n", "admin@ops.example", "규칙 수정: x", 2000)
    assert [v.number for v in store.newest()] == [2, 1]
    assert store.get(1) == first
    assert store.latest() == second
    diff = text_diff(first.text, second.text, "v1", "v2")
    assert "-a = 1\n+a = 2\n" in diff
    assert text_diff("x\n", "x\n", "a", "b") == ""


def subject_rule(action: str = "approve", enabled: bool = False) -> dict:
    return {"id": "secret-subject", "action": action, "enabled": enabled,
            "condition": [{"field": "subject", "contains": ["극비"]}]}  # fmt: skip


def test_a_dry_run_decides_with_the_real_rules():
    document = tomllib.loads(DEFAULT_RULES_TOML)
    mail = make_mail(subject="[극비] 계획", text="회의", sender="kim@corp.example",
                     to="partner@example.com")  # fmt: skip
    trial = dryrun.try_rule("outbound", document, subject_rule(), replacing=None, raw=mail,
                            envelope=("kim@corp.example", [], None), read=extract_locations)  # fmt: skip
    assert trial.applies
    assert trial.action == "approve"
    assert "subject contains '극비'" in trial.explanation
    assert trial.sentence == "이 규칙이었다면 이 메일을 승인 대기(보류) 했습니다."
    assert trial.overall_action == "approve"
    assert trial.overall_rule == "secret-subject"
    other = dryrun.try_rule("outbound", document, subject_rule(), replacing=None,
                            raw=make_mail(subject="일정", text=f"주민번호 {RRN}",
                                          sender="kim@corp.example", to="p@example.com"),
                            envelope=("kim@corp.example", [], None), read=extract_locations)  # fmt: skip
    assert not other.applies
    assert other.overall_rule == "personal-data"  # the file's own rule still decides


def test_a_pasted_text_is_tried_as_a_mail_body():
    raw = dryrun.pasted_mail(f"고객 주민번호 {RRN}", "kim@corp.example", "p@example.com")
    rule = {"id": "rrn-block", "action": "block",
            "condition": [{"field": "body", "pii": ["rrn"]}]}  # fmt: skip
    trial = dryrun.try_rule("outbound", {}, rule, replacing=None, raw=raw,
                            envelope=("kim@corp.example", ["p@example.com"], None),
                            read=extract_locations)  # fmt: skip
    assert trial.applies
    assert trial.action == "block"
    assert RRN not in trial.explanation


def test_an_inbound_dry_run_resolves_groups():
    from mailsafe.inbound_rules import Membership

    document = tomllib.loads(INBOUND)
    rule = edits.rules_of(document)[0]
    mail = make_mail(subject="s", text="t", sender="x@evil.example", to="kim@corp.example",
                     attachments=[("run.exe", b"MZ")])  # fmt: skip
    members = Membership({}, {"고객정보 취급자": frozenset({"kim@corp.example"})})
    trial = dryrun.try_rule("inbound", document, rule, replacing="hold-exe", raw=mail,
                            envelope=("x@evil.example", ["kim@corp.example"], None),
                            read=extract_locations, membership=members)  # fmt: skip
    assert trial.applies
    assert trial.action == "hold"
    outside = dryrun.try_rule("inbound", document, rule, replacing="hold-exe", raw=mail,
                              envelope=("x@evil.example", ["lee@corp.example"], None),
                              read=extract_locations, membership=members)  # fmt: skip
    assert not outside.applies


def logged(subject: str, counts: dict | None = None, **kwargs) -> LoggedMail:
    values = {"sender": "kim@corp.example", "recipients": ("p@example.com",),
              "department": "영업부", "subject": subject, "attachments": (),
              "attachment_count": 0, "counts": counts or {}, "unreadable": ()}  # fmt: skip
    return LoggedMail(**{**values, **kwargs})


def test_a_draft_tried_on_the_mail_the_log_kept():
    mails = [logged("[극비] 1"), logged("일정"), logged("극비 2"), logged("x", {"rrn": 3})]
    trial = try_on_history(subject_rule(), mails, 7)
    assert (trial.mails, trial.applied) == (4, 2)
    assert trial.sentence == "이 규칙이었다면 지난 7일 동안 2통을 보류했습니다 (모두 4통 중)."
    pii = {"id": "rrn", "action": "block", "condition": [{"field": "any", "pii": ["rrn"],
                                                          "min_count": 2}]}  # fmt: skip
    assert try_on_history(pii, mails, 7).applied == 1
    scoped = {**subject_rule(), "scope": "departments", "departments": ["인사부"]}
    assert try_on_history(scoped, mails, 7).applied == 0


def test_a_group_scoped_draft_is_tried_on_the_logged_senders_as_the_directory_has_them():
    from mailsafe.policy import SenderInfo

    def sender(address: str, department: str | None) -> SenderInfo:  # the directory's view
        groups = ("고객정보 취급자",) if address == "kim@corp.example" else ()
        return SenderInfo(address, department, ("경영본부",), groups, "대리")

    mails = [logged("극비 1"), logged("극비 2", sender="park@corp.example")]
    grouped = {**subject_rule(), "scope": "groups", "groups": ["고객정보 취급자"]}
    assert try_on_history(grouped, mails, 7, sender=sender).applied == 1
    assert try_on_history(grouped, mails, 7).applied == 0  # the log alone knows no groups
    tree = {**subject_rule(), "scope": "departments", "departments": ["경영본부"],
            "sub_departments": True}  # fmt: skip
    assert try_on_history(tree, mails, 7, sender=sender).applied == 2


def test_a_draft_reading_text_the_log_does_not_keep_is_refused_by_name():
    body = {"id": "b", "action": "block", "condition": [{"field": "body", "contains": "x"},
                                                        {"field": "any", "regex": "y"}]}  # fmt: skip
    trial = try_on_history(body, [logged("x")], 7)
    assert trial.refused
    assert "any, body" in trial.sentence


@pytest.mark.parametrize(("scope", "listed", "kind", "name", "expected_scope", "expected"), [
    ("everyone", "", "departments", "지점250", "departments", "지점250"),
    ("departments", "지점001", "departments", "지점250", "departments", "지점001\n지점250"),
    ("departments", "지점250", "departments", " 지점250 ", "departments", "지점250"),  # once
    ("departments", "지점001", "ranks", "대리", "ranks", "대리"),  # another kind: a new list
    ("groups", "g", "groups", "  ", "groups", "g"),  # nothing chosen: unchanged
])  # fmt: skip
def test_a_found_name_goes_into_the_scopes_list(scope, listed, kind, name, expected_scope,
                                                expected):  # fmt: skip
    form = RuleForm({"id": "r", "scope": scope, "scope_list": listed}, ("admin",))
    chosen = with_scope_name(form, kind, name)
    assert chosen.get("scope") == expected_scope
    assert chosen.get("scope_list") == expected
    assert chosen.get("id") == "r"
    assert chosen.notify == ("admin",)
