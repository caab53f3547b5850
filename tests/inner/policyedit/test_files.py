"""Saving a rules file: the durable write, refused when stale or invalid, each save a version
and an audit event with the diff; a roll back writes the old text as it was. And the agent's
side: the outbound rules read again when the file changes, the last good rules kept when the
new file does not validate; a disabled rule never applies."""

from __future__ import annotations

import os
import tomllib

import pytest

from inner_agent.outbound.rulesource import RulesSource
from inner_agent.policyedit import edits
from inner_agent.policyedit.errors import RulesRefused, StaleEdit
from inner_agent.policyedit.files import RulesFile, digest
from inner_agent.policyedit.versions import VersionStore
from mailsafe.inbound_rules import Membership, decide, parse_inbound_text
from mailsafe.policy import MailFacts, SenderInfo, evaluate, parse_rules
from tests.support.outbound import MemoryAudit

ORIGINAL = """# written by hand
version = 1
default_action = "allow"

[[rule]]
id = "secret"
action = "approve"
[[rule.condition]]
field = "subject"
contains = "극비"
"""


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    os.chmod(path, 0o644)
    woken = []
    audit = MemoryAudit()
    file = RulesFile("outbound", path, VersionStore(tmp_path / "versions"), audit,
                     on_saved=lambda: woken.append(1), clock=lambda: 1_800_000_000.0)  # fmt: skip
    file.woken, file.recorded = woken, audit  # type: ignore[attr-defined]
    return file


def test_a_save_writes_the_file_keeps_versions_and_audits_the_diff(rules_file):
    document, based_on = rules_file.document()
    changed = edits.with_enabled(document, "secret", False)
    saved = rules_file.save(changed, "admin@ops.example", "규칙 끄기: secret", based_on)
    text = rules_file.path.read_text(encoding="utf-8")
    assert tomllib.loads(text) == changed
    assert parse_rules(tomllib.loads(text)).rule[0].enabled is False
    assert oct(rules_file.path.stat().st_mode & 0o777) == "0o644"  # the agents still read it
    versions = rules_file.versions.newest()
    assert [(v.number, v.who) for v in versions] == [(2, "admin@ops.example"), (1, "file")]
    assert versions[1].text == ORIGINAL  # the hand-written text, comments and all
    assert saved.version.number == 2
    assert "+enabled = false" in saved.diff
    ((mail_id, step, fields),) = list(rules_file.recorded.events)
    assert (mail_id, step) == ("-", "policy_changed")
    assert fields["account"] == "admin@ops.example"
    assert fields["what"] == "규칙 끄기: secret"
    assert "+enabled = false" in fields["diff"]
    assert fields["version"] == 2
    assert rules_file.woken == [1]


def test_a_change_made_meanwhile_is_refused_not_overwritten(rules_file):
    document, based_on = rules_file.document()
    rules_file.path.write_text(ORIGINAL + "\n# another editor\n", encoding="utf-8")
    with pytest.raises(StaleEdit, match="changed since"):
        rules_file.save(document, "admin@ops.example", "x", based_on)
    assert rules_file.path.read_text(encoding="utf-8").endswith("# another editor\n")


def test_a_file_the_agents_would_refuse_is_not_written(rules_file):
    document, based_on = rules_file.document()
    bad = edits.with_rule(document, {"id": "x", "action": "hold", "condition": []}, None)
    with pytest.raises(RulesRefused, match=r"rules.toml: rule 2 \('x'\)"):
        rules_file.save(bad, "admin@ops.example", "x", based_on)
    assert rules_file.path.read_text(encoding="utf-8") == ORIGINAL
    assert rules_file.versions.numbers() == []


def test_a_roll_back_writes_the_old_text_as_it_was(rules_file):
    document, based_on = rules_file.document()
    saved = rules_file.save(edits.moved(document, "secret", 1), "a@ops.example", "x", based_on)
    rules_file.save(edits.with_enabled(document, "secret", False), "a@ops.example", "off",
                    digest(saved.version.text))  # fmt: skip
    restored = rules_file.restore(rules_file.versions.get(1).text, "sec@ops.example",
                                  "버전 1(으)로 되돌림", digest(rules_file.text()))  # fmt: skip
    assert rules_file.path.read_text(encoding="utf-8") == ORIGINAL
    assert restored.version.number == 4
    assert restored.version.who == "sec@ops.example"


def facts(subject: str) -> MailFacts:
    return MailFacts(SenderInfo("kim@corp.example"), ("p@example.com",),
                     texts=(("subject", subject),))  # fmt: skip


def test_the_agent_reads_a_changed_file_before_the_next_scan(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    audit = MemoryAudit()
    source = RulesSource(path, audit)
    assert evaluate(source.current(), facts("극비")).action == "approve"
    path.write_text(ORIGINAL.replace('"approve"', '"block"'), encoding="utf-8")
    os.utime(path, ns=(1, 1))  # a different modification time, whatever the clock's grain
    assert evaluate(source.current(), facts("극비")).action == "block"
    assert audit.steps() == ["policy_reloaded"]


def test_a_file_that_no_longer_validates_leaves_the_last_good_rules(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(ORIGINAL, encoding="utf-8")
    audit = MemoryAudit()
    source = RulesSource(path, audit)
    path.write_text(ORIGINAL.replace('"approve"', '"hold"'), encoding="utf-8")
    os.utime(path, ns=(2, 2))
    assert evaluate(source.current(), facts("극비")).action == "approve"
    assert source.current() is source.rules  # refused once, not read again and again
    assert not source.reload()
    assert audit.steps() == ["policy_refused"]


def test_a_disabled_rule_never_applies_in_either_direction():
    outbound = parse_rules(tomllib.loads(ORIGINAL.replace('action = "approve"',
                                                          'action = "approve"\nenabled = false')))  # fmt: skip
    assert evaluate(outbound, facts("극비")).action == "allow"
    inbound = parse_inbound_text('[[rule]]\nid = "b"\naction = "block"\nenabled = false\n', "in")
    assert decide(inbound, facts("x"), "kim@corp.example", Membership()).action == "allow"
    on = parse_inbound_text('[[rule]]\nid = "b"\naction = "block"\n', "in")
    assert decide(on, facts("x"), "kim@corp.example", Membership()).action == "block"


class Recheck:
    def __init__(self) -> None:
        self.asked = 0

    def recheck(self) -> None:
        self.asked += 1


def test_a_changed_inbound_file_is_published_at_the_next_pass_and_sighup_reads_both(tmp_path):
    from types import SimpleNamespace

    from inner_agent.outbound.service import OutboundService
    from tests.support.outbound import make_section

    inbound_file = tmp_path / "inbound.toml"
    inbound_file.write_text('version = 1\ndefault_action = "allow"\n', encoding="utf-8")
    (tmp_path / "rules.toml").write_text(ORIGINAL, encoding="utf-8")
    section = make_section(tmp_path, rules_file="rules.toml")
    config = SimpleNamespace(outbound=section, inbound=SimpleNamespace(rules_file=inbound_file))
    service = OutboundService(config, MemoryAudit())
    service.inbound = publisher = Recheck()  # type: ignore[assignment]
    service._notice_changed_rules()
    assert publisher.asked == 0  # unchanged: the timer publishes as before
    inbound_file.write_text('version = 1\ndefault_action = "hold"\n', encoding="utf-8")
    os.utime(inbound_file, ns=(3, 3))
    service._notice_changed_rules()
    assert publisher.asked == 1
    service.rules = RulesSource(section.rules_file, service.audit)
    (tmp_path / "rules.toml").write_text(ORIGINAL.replace('"approve"', '"block"'), "utf-8")
    assert service.reload_policy()  # SIGHUP: both files now
    assert evaluate(service.rules.rules, facts("극비")).action == "block"
    assert publisher.asked == 2
