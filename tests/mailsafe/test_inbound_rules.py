"""The inbound rules (mailsafe.inbound_rules): loading, refusals by name, evaluation order,
scopes by recipient, masking, and the text published to the outer agent."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.inbound_rules import (
    UNIQUE_IDENTIFIERS,
    InboundRuleSet,
    Membership,
    decide,
    decide_recipients,
    default_inbound_rules,
    load_inbound_rules,
    needs_mail_text,
    parse_inbound_text,
    published_text,
    scope_names,
)
from mailsafe.policy import MailFacts, RulesError, SenderInfo


def rules(text: str, *, published: bool = False) -> InboundRuleSet:
    return parse_inbound_text(text, "inbound.toml", published=published)


def refusal(text: str) -> str:
    with pytest.raises(RulesError) as caught:
        rules(text)
    return str(caught.value)


def facts(sender: str = "kim@partner.example", **more: object) -> MailFacts:
    return MailFacts(sender=SenderInfo(sender), **more)  # type: ignore[arg-type]


RULE = "[[rule]]\nid = 'r'\naction = '{action}'\n"


# ---- refusals ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (RULE.format(action="approve"),
         "inbound.toml: rule 1 ('r'): action: Input should be 'block', 'hold', 'allow', 'monitor' "
         "or 'mask', not 'approve'"),
        (RULE.format(action="block") + "[[rule.condition]]\nfield = 'sendr'\ncontains = 'x'",
         "inbound.toml: rule 1 ('r'): condition 1: field: Input should be 'sender', 'recipient', "
         "'subject', 'body', 'attachment_name', 'attachment_content', 'any', 'attachment_count', "
         "'attachment_size' or 'unreadable', not 'sendr'"),
        (RULE.format(action="block") + "colour = 'red'",
         "inbound.toml: rule 1 ('r'): colour: Extra inputs are not permitted"),
        (RULE.format(action="allow") + "silent = true",
         "inbound.toml: rule 1 ('r'): \"silent\" belongs to a block rule"),
        (RULE.format(action="block") + "approver = 'security_officer'",
         "inbound.toml: rule 1 ('r'): \"approver\" belongs to a hold rule"),
        (RULE.format(action="hold") + "approver = 'ceo'",
         "inbound.toml: rule 1 ('r'): approver: Input should be 'department_head' or "
         "'security_officer', not 'ceo'"),
        (RULE.format(action="allow") + "mask = ['rrn']",
         "inbound.toml: rule 1 ('r'): \"mask\" belongs to a mask rule"),
        (RULE.format(action="mask") + "mask = ['ssn']",
         "inbound.toml: rule 1 ('r'): mask.0: Input should be 'rrn'"),
        (RULE.format(action="block") + "scope = 'groups'",
         "inbound.toml: rule 1 ('r'): scope \"groups\" needs a \"groups\" list"),
        (RULE.format(action="block") + "scope = 'groups'\ngroups = ['임원']",
         "inbound.toml: groups used by a rule but not defined in [groups]: ['임원']"),
        (RULE.format(action="block") + "[[rule.condition]]\nfield = 'subject'\ndomains = ['x.example']",
         "inbound.toml: rule 1 ('r'): condition 1: \"domains\" is a matcher of the fields"),
        (RULE.format(action="block") + "[[rule.condition]]\nfield = 'sender'\ndomains = ['bad domain']",
         "inbound.toml: rule 1 ('r'): condition 1: domains: 'bad domain' is not a domain name"),
        ("default_action = 'approve'", "inbound.toml: default_action: Input should be"),
        ("[resolved.departments]\n", "inbound.toml: resolved: is written by the inner agent"),
    ],
)  # fmt: skip
def test_refusals_name_the_unknown_field_action_or_key(text: str, expected: str) -> None:
    assert refusal(text).startswith(expected)


def test_a_published_text_must_resolve_every_department_and_group() -> None:
    text = RULE.format(action="block") + "scope = 'departments'\ndepartments = ['여신심사팀']"
    rules(text)  # an authored file names departments freely
    with pytest.raises(RulesError, match="resolved: does not resolve 여신심사팀"):
        rules(text + "\n[resolved.groups]\n", published=True)
    assert rules(published_text(text, {"여신심사팀": []}, {}), published=True).resolved


def test_the_file_is_read_and_named(tmp_path: Path) -> None:
    path = tmp_path / "inbound-rules.toml"
    path.write_text(RULE.format(action="block"), encoding="utf-8")
    assert load_inbound_rules(path).rule[0].id == "r"
    with pytest.raises(RulesError, match="nope.toml: cannot read"):
        load_inbound_rules(tmp_path / "nope.toml")


# ---- evaluation ---------------------------------------------------------------------------

ORDERED = """
[[rule]]
id = "watch-partner"
action = "monitor"
[[rule.condition]]
field = "sender"
domains = ["partner.example"]

[[rule]]
id = "allow-bank"
action = "allow"
[[rule.condition]]
field = "sender"
contains = "@bank.example"

[[rule]]
id = "block-evil"
action = "block"
silent = true
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "hold-archives"
action = "hold"
approver = "security_officer"
[[rule.condition]]
field = "unreadable"
reasons = ["encrypted"]

[[rule]]
id = "loan-desk-unmasked"
action = "mask"
mask = []
scope = "users"
users = ["Loan@corp.example"]
"""


def test_first_deciding_rule_decides_and_monitor_rules_are_noted() -> None:
    ruleset = rules(ORDERED)
    none = Membership()
    carried = decide(ruleset, facts(), "u@corp.example", none)
    assert (carried.action, carried.rule, carried.monitored_by) == (
        "monitor", "watch-partner", ("watch-partner",))  # fmt: skip
    blocked = decide(ruleset, facts("spam@mx.evil.example"), "u@corp.example", none)
    assert (blocked.action, blocked.rule, blocked.silent) == ("block", "block-evil", True)
    assert blocked.mask == ()  # nothing of a blocked mail is shown
    held = decide(ruleset, facts(unreadable=(("attachment:a.zip", "encrypted"),)),
                  "u@corp.example", none)  # fmt: skip
    assert (held.action, held.approver) == ("hold", "security_officer")
    assert "attachment:a.zip (encrypted)" in held.explanation
    allowed = decide(ruleset, facts("x@bank.example"), "u@corp.example", none)
    assert (allowed.action, allowed.rule) == ("allow", "allow-bank")


def test_the_from_address_counts_as_the_sender_too() -> None:
    mailing = facts("bounce@mailer.example", authors=("ceo@evil.example",))
    assert decide(rules(ORDERED), mailing, "u@corp.example", Membership()).action == "block"


def test_masking_is_decided_by_the_first_mask_rule_anywhere_else_the_default() -> None:
    ruleset = rules(ORDERED)
    # the loan desk's mask rule stands after the deciding rules and still counts
    loan = decide(ruleset, facts("x@bank.example"), "loan@corp.example", Membership())
    assert (loan.mask, loan.mask_rule) == ((), "loan-desk-unmasked")
    other = decide(ruleset, facts("x@bank.example"), "u@corp.example", Membership())
    assert (other.mask, other.mask_rule) == (UNIQUE_IDENTIFIERS, None)
    custom = rules("default_mask = ['credit_card', 'rrn']")
    assert decide(custom, facts(), "u@corp.example", Membership()).mask == ("rrn", "credit_card")


def test_scopes_are_by_recipient_department_and_group() -> None:
    text = """
[groups]
"임원" = ["ceo@corp.example", "여신심사팀"]

[[rule]]
id = "hold-for-executives"
action = "hold"
scope = "groups"
groups = ["임원"]

[[rule]]
id = "block-sales-zip"
action = "block"
scope = "departments"
departments = ["영업팀"]
[[rule.condition]]
field = "attachment_name"
regex = '\\.zip$'
"""
    published = rules(published_text(text, {"영업팀": ["sales@corp.example"]},
                                     {"임원": ["ceo@corp.example", "loan@corp.example"]}),
                      published=True)  # fmt: skip
    members = Membership.of(published.resolved)
    mail = facts(texts=(("attachment-name:a.zip", "a.zip"),))
    groups = decide_recipients(published, mail, ["ceo@corp.example", "sales@corp.example",
                                                  "x@corp.example", "LOAN@corp.example"], members)  # fmt: skip
    by_action = {g.decision.action: g.rcpts for g in groups}
    assert by_action == {"hold": ("ceo@corp.example", "LOAN@corp.example"),
                         "block": ("sales@corp.example",), "allow": ("x@corp.example",)}  # fmt: skip


def test_recipients_with_the_same_decision_share_one_group() -> None:
    groups = decide_recipients(default_inbound_rules(), facts(), ["a@c.example", "b@c.example",
                                                                  "a@c.example"], Membership())  # fmt: skip
    assert [g.rcpts for g in groups] == [("a@c.example", "b@c.example")]


def test_the_default_rules_carry_everything_with_the_unique_identifiers_masked() -> None:
    decision = decide(default_inbound_rules(), facts(), "u@corp.example", Membership())
    assert (decision.action, decision.rule, decision.mask) == ("allow", None, UNIQUE_IDENTIFIERS)
    assert not needs_mail_text(default_inbound_rules())
    assert needs_mail_text(rules(ORDERED))  # "unreadable" reads the attachments


def test_default_hold_names_the_department_head() -> None:
    decision = decide(rules("default_action = 'hold'"), facts(), "u@c.example", Membership())
    assert (decision.action, decision.approver) == ("hold", "department_head")


# ---- the published text -------------------------------------------------------------------


@settings(max_examples=200, deadline=None)
@given(
    st.dictionaries(
        st.text(st.characters(blacklist_categories=["Cs"]), min_size=1, max_size=20),
        st.lists(st.emails(), max_size=3),
        max_size=4,
    )
)
def test_published_text_round_trips_any_department_name(departments: dict[str, list[str]]) -> None:
    """Names with quotes, backslashes, controls, DEL or any other character are written as TOML
    strings the parser reads back exactly: a department name cannot inject a rule."""
    names = [n for n in departments if "\x00" not in n]
    authored = "version = 1\n"
    text = published_text(authored, {n: departments[n] for n in names}, {})
    document = tomllib.loads(text)
    assert document["resolved"]["departments"] == {n: sorted(set(departments[n])) for n in names}
    assert set(document) == {"version", "resolved"}


def test_scope_names_lists_what_must_be_resolved() -> None:
    text = ("[groups]\ng = ['x@corp.example']\n" + RULE.format(action="block")
            + "scope = 'departments'\ndepartments = ['A', 'B']\n" + "[[rule]]\nid = 's'\n"
            "action = 'hold'\nscope = 'groups'\ngroups = ['g']\n")  # fmt: skip
    assert scope_names(rules(text)) == ({"A", "B"}, {"g"})


def test_the_examples_in_the_policy_page_are_valid_rules() -> None:
    """docs/policy.md's inbound examples (in Korean) load as they are, and decide as they say."""
    doc = (Path(__file__).resolve().parents[2] / "docs" / "policy.md").read_text(encoding="utf-8")
    examples = doc[doc.index("### Examples (예시)") :]
    blocks = examples.split("```toml\n")[1:]
    assert len(blocks) == 2
    whole = rules(blocks[0].split("```")[0])
    extra = rules(blocks[1].split("```")[0])
    assert len(whole.rule) == 8
    assert len(extra.rule) == 2
    members = Membership(groups={"대출창구": frozenset({"loan-desk@corp.example"}),
                                 "임원": frozenset({"ceo@corp.example"})})  # fmt: skip
    bank = facts("x@mail.bank.example", authors=("x@evil.example",))
    assert decide(whole, bank, "u@corp.example", members).rule == "allow-partner-bank"
    evil = decide(whole, facts("x@evil.example"), "u@corp.example", members)
    assert (evil.action, evil.silent) == ("block", False)
    loan = decide(whole, facts(), "loan-desk@corp.example", members)
    assert (loan.mask, loan.mask_rule) == ((), "loan-desk-sees-numbers")
    exe = facts(texts=(("attachment-name:setup.exe", "setup.exe"),))
    assert decide(whole, exe, "ceo@corp.example", members).action == "hold"
    assert decide(whole, exe, "u@corp.example", members).action == "allow"
