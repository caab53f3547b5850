"""The receive filters in the outer agent, in one process: the pipeline with a real render
worker, the policy store, held mail and decisions from inside (the link's verification is
tested in the end-to-end tests; here the records arrive as verified bundles)."""

from __future__ import annotations

import itertools
import os
import stat
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from agentkit.control import Decision, Policy, encode_control
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML, published_text
from mailsafe.payload import decode_package
from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import RenderPool
from outer_agent.control import ControlDesk
from outer_agent.filtering import Filtering
from outer_agent.holds import HoldStore
from outer_agent.inbound_policy import PolicyStore
from outer_agent.packaging import MailsafePackager
from outer_agent.pipeline import Pipeline
from outer_agent.spool import Envelope, Spool, new_bundle_id
from outer_agent.verdicts import VerdictStore, derived_bundle_id
from protocol import Kind, ReceivedBundle
from tests.outer.test_pipeline import FakeAudit, FakeSender, wait_for

RULES = (
    DEFAULT_INBOUND_RULES_TOML
    + """
[[rule]]
id = "block-evil"
action = "block"
[[rule.condition]]
field = "sender"
domains = ["evil.example"]

[[rule]]
id = "block-spam-quietly"
action = "block"
silent = true
[[rule.condition]]
field = "sender"
domains = ["spam.example"]

[[rule]]
id = "hold-for-ceo"
action = "hold"
scope = "users"
users = ["ceo@corp.example"]
"""
)


class LinkSender(FakeSender):
    def knows(self, bundle_id: bytes) -> bool:
        return bundle_id in self.seq_of


class Agent:
    """The outer agent's mail path and control desk, in this process."""

    def __init__(self, root: Path, pool: RenderPool, clock: list[float]) -> None:
        self.root, self.clock = root, clock
        self.spool = Spool(root / "inbound")
        self.sender, self.audit = LinkSender(), FakeAudit()
        self.policies = PolicyStore(root / "policy.json")
        self.holds = HoldStore(root / "held", self.spool.folder("received"),
                               clock=lambda: clock[0])  # fmt: skip
        self.filtering = Filtering(
            self.policies, self.holds, VerdictStore(root / "inbound" / "verdicts"),
            MailsafePackager(pool), knows=self.sender.knows, hold_expiry_s=3600,
            clock=lambda: clock[0],
        )  # fmt: skip
        self.pipeline = Pipeline(self.spool, MailsafePackager(pool), self.sender, self.audit,
                                 workers=1, filtering=self.filtering)  # fmt: skip
        self.quarantined: list[str] = []
        self.desk = ControlDesk(
            self.policies, self.holds, self.audit,
            quarantine=lambda name, data, reason: self.quarantined.append(reason),
            released=self.pipeline.notify_received,
        )  # fmt: skip
        self._seq = itertools.count(1)
        self.pipeline.start()

    def control(self, record: Policy | Decision, bundle_id: bytes | None = None) -> bytes:
        bundle_id = bundle_id or os.urandom(16)
        bundle = ReceivedBundle("outbound", next(self._seq), bundle_id, Kind.CONTROL,
                                encode_control(record), 0, 1)  # fmt: skip
        self.desk.accept(bundle)
        return bundle_id

    def send(self, sender: str, rcpts: tuple[str, ...], body: str = "안녕하세요") -> Envelope:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = sender, ", ".join(rcpts), "견적"
        message.set_content(body)
        bundle_id = new_bundle_id()
        envelope = Envelope(bundle_id.hex(), bundle_id, sender, rcpts, self.clock[0],
                            "203.0.113.5", "mx.example", False)  # fmt: skip
        self.spool.write_received(envelope, message.as_bytes())
        self.pipeline.notify_received(envelope)
        return envelope

    def published(self, bundle_id: bytes) -> list[bytes]:
        return [bundle for _, b, bundle in self.sender.published if b == bundle_id]

    def steps(self, mail_id: str) -> list[str]:
        return [step for m, step, _ in self.audit.events if m == mail_id]

    def idle(self) -> bool:
        return not (self.spool.pending() or self.spool.claimed())


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    with RenderPool(RenderOptions(), processes=1) as pool:
        yield pool


@pytest.fixture
def agent(tmp_path: Path, pool: RenderPool) -> Iterator[Agent]:
    clock = [time.time()]
    agent = Agent(tmp_path, pool, clock)
    try:
        yield agent
    finally:
        agent.pipeline.stop()


def policy(version: int, rules: str = RULES) -> Policy:
    return Policy(version=version, made_ms=1, rules=published_text(rules, {}, {}))


def mark_of(package: bytes) -> object:
    return decode_package(package).manifest.inbound


def test_without_a_policy_mail_is_carried_as_before(agent: Agent) -> None:
    envelope = agent.send("spam@evil.example", ("u@corp.example",))
    wait_for(lambda: agent.published(envelope.bundle_id))
    assert mark_of(agent.published(envelope.bundle_id)[0]) is None
    assert agent.policies.version == 0


def test_without_a_policy_the_unique_identifiers_are_masked_all_the_same(agent: Agent) -> None:
    envelope = agent.send("a@partner.example", ("u@corp.example",),
                          body="주민등록번호 800101-1234567 입니다, 카드 4111-1111-1111-1111")  # fmt: skip
    wait_for(lambda: agent.published(envelope.bundle_id))
    package = decode_package(agent.published(envelope.bundle_id)[0])
    text = package.text or ""
    assert "800101-1******" in text
    assert "1234567" not in text
    assert "4111-1111-1111-1111" in text  # cards are shown, as the default rules show them
    assert package.manifest.masked


def test_a_blocked_mail_is_not_carried_and_its_recipient_gets_a_notice(agent: Agent) -> None:
    agent.control(policy(1))
    blocked = agent.send("spam@evil.example", ("u@corp.example",), body="비밀 본문")
    silent = agent.send("x@spam.example", ("u@corp.example",))
    carried = agent.send("kim@partner.example", ("u@corp.example",))
    wait_for(lambda: agent.published(carried.bundle_id) and agent.idle())
    notice = decode_package(agent.published(blocked.bundle_id)[0])
    assert notice.manifest.inbound is not None
    assert (notice.manifest.inbound.action, notice.manifest.inbound.rule) == ("block", "block-evil")
    assert notice.images == ()
    assert notice.text is None
    assert agent.published(silent.bundle_id) == []  # a silent rule: no notice either
    assert "inbound_blocked" in agent.steps(silent.mail_id)
    mark = decode_package(agent.published(carried.bundle_id)[0]).manifest.inbound
    assert mark is not None
    assert (mark.action, mark.policy_version) == ("allow", 1)
    assert mark.masked == ("rrn", "foreigner_id", "driver_license", "passport")
    assert agent.idle()


def test_recipients_with_different_decisions_get_parts_of_their_own(agent: Agent) -> None:
    agent.control(policy(1))
    envelope = agent.send("kim@partner.example", ("u@corp.example", "ceo@corp.example"))
    part = derived_bundle_id(envelope.bundle_id, "part-1")
    wait_for(lambda: agent.published(envelope.bundle_id) and agent.idle())
    carried = decode_package(agent.published(envelope.bundle_id)[0]).manifest
    assert carried.envelope.rcpt_to == ("u@corp.example",)
    preview = decode_package(agent.published(derived_bundle_id(part, "hold"))[0]).manifest
    assert preview.mail_id == f"{envelope.mail_id}-1"
    assert preview.envelope.rcpt_to == ("ceo@corp.example",)
    assert preview.inbound is not None
    assert preview.inbound.action == "hold"


def held_mail(agent: Agent) -> Envelope:
    agent.control(policy(1))
    envelope = agent.send("kim@partner.example", ("ceo@corp.example",))
    wait_for(lambda: agent.published(derived_bundle_id(envelope.bundle_id, "hold")))
    wait_for(agent.idle)
    return envelope


def test_a_held_mail_is_kept_privately_and_released_exactly_once(agent: Agent) -> None:
    envelope = held_mail(agent)
    held = agent.root / "held" / "mail" / envelope.mail_id
    assert stat.S_IMODE(held.stat().st_mode) == 0o600
    assert stat.S_IMODE(held.parent.stat().st_mode) == 0o700
    assert agent.published(envelope.bundle_id) == []  # nothing carried before the decision
    decision = Decision(envelope.mail_id, "release", "head@corp.example",
                        int(agent.clock[0] * 1000) + 5000, 1)  # fmt: skip
    first = agent.control(decision)
    wait_for(lambda: agent.published(envelope.bundle_id) and agent.idle())
    released = decode_package(agent.published(envelope.bundle_id)[0]).manifest.inbound
    assert released is not None
    assert released.action == "released"
    assert released.decided_by == "head@corp.example"
    assert not held.exists()
    agent.control(decision, bundle_id=first)  # the same bundle again (a crash before "done")
    agent.control(decision)  # another decision for the same mail
    time.sleep(0.5)
    assert len(agent.published(envelope.bundle_id)) == 1
    refused = [f for m, s, f in agent.audit.events if s == "inbound_decision_refused"]
    assert [f["code"] for f in refused] == ["unknown_mail"]  # the repeat was not a refusal


def test_a_dropped_mail_is_never_carried(agent: Agent) -> None:
    envelope = held_mail(agent)
    agent.control(Decision(envelope.mail_id, "drop", "head@corp.example",
                           int(agent.clock[0] * 1000), 1))  # fmt: skip
    agent.control(Decision(envelope.mail_id, "release", "other@corp.example",
                           int(agent.clock[0] * 1000), 1))  # fmt: skip
    time.sleep(1)
    assert agent.published(envelope.bundle_id) == []
    assert "inbound_dropped" in agent.steps(envelope.mail_id)
    assert not (agent.root / "held" / "mail" / envelope.mail_id).exists()


@pytest.mark.parametrize("offset_s", [-3600.0, 2 * 86400.0])
def test_a_decision_dated_before_the_hold_or_far_ahead_is_refused(
    agent: Agent, offset_s: float
) -> None:
    envelope = held_mail(agent)
    agent.control(Decision(envelope.mail_id, "release", "head@corp.example",
                           int((agent.clock[0] + offset_s) * 1000), 1))  # fmt: skip
    refused = [f for m, s, f in agent.audit.events if s == "inbound_decision_refused"]
    assert [f["code"] for f in refused] == ["inconsistent"]
    assert (agent.root / "held" / "mail" / envelope.mail_id).exists()


def test_an_expired_hold_is_dropped_with_a_notice(agent: Agent) -> None:
    from outer_agent.hold_keeper import HoldKeeper

    envelope = held_mail(agent)
    keeper = HoldKeeper(agent.holds, agent.filtering, agent.sender, agent.audit, check_s=1,
                        clock=lambda: agent.clock[0])  # fmt: skip
    assert keeper.run_once() == 0
    agent.clock[0] += 3601
    assert keeper.run_once() == 1
    notice = agent.published(derived_bundle_id(envelope.bundle_id, "expired"))
    mark = decode_package(notice[0]).manifest.inbound
    assert mark is not None
    assert mark.action == "expired"
    assert keeper.run_once() == 0
    assert len(agent.sender.published) == 2
    agent.control(Decision(envelope.mail_id, "release", "late@corp.example",
                           int(agent.clock[0] * 1000), 1))  # fmt: skip
    assert agent.published(envelope.bundle_id) == []


def test_policy_versions_only_grow_and_a_bad_one_changes_nothing(agent: Agent) -> None:
    agent.control(policy(3))
    agent.control(policy(2))  # older
    agent.control(Policy(3, 1, published_text("default_action = 'block'", {}, {})))  # conflict
    agent.control(policy(4, "[[rule]]\nid = 'x'\naction = 'approve'\n"))  # unknown action
    agent.control(policy(3))  # a resend of the held one: nothing
    codes = [f["code"] for _, s, f in agent.audit.events if s == "policy_refused"]
    assert codes == ["stale", "conflict", "bad_rules"]
    assert agent.policies.version == 3
    assert PolicyStore(agent.root / "policy.json").version == 3  # kept across a restart


def test_a_record_that_does_not_decode_is_quarantined(agent: Agent) -> None:
    bundle = ReceivedBundle("outbound", 1, os.urandom(16), Kind.CONTROL, b"\xc1", 0, 1)
    agent.desk.accept(bundle)
    assert len(agent.quarantined) == 1
    assert agent.quarantined[0].startswith("outbound_control_not_msgpack: ")
    assert [f["reason"] for _, s, f in agent.audit.events if s == "quarantined"] == [
        "outbound_control_not_msgpack"
    ]


def test_a_verdict_is_kept_until_the_mail_is_gone_and_reused_after_a_crash(
    tmp_path: Path, pool: RenderPool
) -> None:
    """A policy changing between a crash and the restart cannot block a mail that was held."""
    clock = [time.time()]
    agent = Agent(tmp_path, pool, clock)
    agent.pipeline.stop()  # the render threads are ours now
    agent.control(policy(1))
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = (
        "k@partner.example",
        "ceo@corp.example",
        "s",
    )
    message.set_content("x")
    bundle_id = new_bundle_id()
    envelope = Envelope(bundle_id.hex(), bundle_id, "k@partner.example", ("ceo@corp.example",),
                        clock[0], "203.0.113.5", "h", False)  # fmt: skip
    raw = message.as_bytes()
    first = agent.filtering.plan(envelope, raw, _auth(), attempt=0, crashed=False)
    assert [o.bundle_id for o in first.outgoing] == [derived_bundle_id(bundle_id, "hold")]
    assert (tmp_path / "inbound" / "verdicts" / envelope.mail_id).exists()
    # crash before the claimed copy went; meanwhile the policy blocks everyone's mail
    agent.control(policy(2, "default_action = 'block'"))
    again = agent.filtering.plan(envelope, raw, _auth(), attempt=1, crashed=False)
    assert [o.bundle_id for o in again.outgoing] == [derived_bundle_id(bundle_id, "hold")]
    assert not [e for e in again.events if e[1] == "inbound_held"]  # held once
    agent.filtering.done(envelope.mail_id)
    assert not (tmp_path / "inbound" / "verdicts" / envelope.mail_id).exists()


def test_a_mail_carried_before_a_crash_stays_carried_under_a_new_policy(
    tmp_path: Path, pool: RenderPool
) -> None:
    clock = [time.time()]
    agent = Agent(tmp_path, pool, clock)
    agent.pipeline.stop()
    agent.control(policy(1, "default_action = 'block'"))
    bundle_id = new_bundle_id()
    envelope = Envelope(bundle_id.hex(), bundle_id, "k@partner.example", ("u@corp.example",),
                        clock[0], "203.0.113.5", "h", False)  # fmt: skip
    agent.sender.publish(b"the package of before", bundle_id)  # on the link before the crash
    plan = agent.filtering.plan(envelope, b"Subject: s\r\n\r\nx\r\n", _auth(), attempt=1,
                                crashed=False)  # fmt: skip
    assert [o.bundle_id for o in plan.outgoing] == [bundle_id]
    assert not [e for e in plan.events if e[1] == "inbound_blocked"]


def _auth():  # type: ignore[no-untyped-def]
    from outer_agent.authres import AuthVerdict

    return AuthVerdict.not_checked()


def test_status_says_which_policy_is_in_force_and_what_is_held(agent: Agent) -> None:
    from maildiode.commands.status import describe_queues
    from outer_agent.receive_filters import inbound_summary

    assert inbound_summary(agent.root)["policy_version"] == 0
    held_mail(agent)
    summary = inbound_summary(agent.root)
    assert summary == {"policy_version": 1, "held": 1, "archive_waiting": 0, "archive_failed": 0}
    (agent.root / "policy.json").write_text("{torn")
    assert inbound_summary(agent.root)["policy_version"] is None
    lines = describe_queues({"spool": agent.spool.counts() | {"oldest_waiting_s": None},
                             "inbound": summary})  # fmt: skip
    assert "  inbound policy:  1; 1 mail(s) held" in lines
