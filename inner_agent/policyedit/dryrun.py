"""A draft rule tried on a mail before it is saved (pure apart from reading the mail's
attachments, which ``read`` is given): the mail is read as the agent reads it
(``mailsafe.scan.read_mail``: the same places, the same personal-data detector) and decided
by the rules' own functions — the draft alone (``mailsafe.policy.evaluate`` over a rule set of
that one rule), and the whole file with the draft in its place — both as if the draft were
enabled (a new rule is saved disabled until its author turns it on).

A pasted text is tried as the body of a mail from the given sender to the given recipient.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Final

from inner_agent.policyedit.edits import with_rule
from inner_agent.policyedit.ruleform import Direction
from mailsafe.extract import Found
from mailsafe.inbound_rules import InboundRuleSet, Membership, decide_recipients
from mailsafe.mime import ParsedMail, parse_message
from mailsafe.policy import MailFacts, RuleSet, SenderInfo, evaluate
from mailsafe.scan import read_mail

__all__ = ["MAX_DRY_RUN_BYTES", "Trial", "pasted_mail", "try_rule"]

# An uploaded mail larger than this is not tried (the intake's own limit is larger, but a
# dry run is a page request in the web process).
MAX_DRY_RUN_BYTES: Final = 25 << 20
ACTION_WORDS: Final = {"block": "차단", "approve": "승인 대기(보류)", "hold": "보류",
                       "monitor": "기록(모니터)", "allow": "허용", "mask": "가림"}  # fmt: skip


@dataclass(frozen=True)
class Trial:
    """What the draft would do to the mail: ``applies`` with the draft's action and why, and
    what the whole file with the draft would decide."""

    applies: bool
    action: str  # the draft's action when it applies, else ""
    explanation: str  # why it applies (places and counts, never values)
    overall_action: str
    overall_rule: str | None
    overall_explanation: str

    @property
    def sentence(self) -> str:
        if not self.applies:
            return "이 규칙은 이 메일에 해당하지 않습니다."
        return f"이 규칙이었다면 이 메일을 {ACTION_WORDS.get(self.action, self.action)} 했습니다."


def pasted_mail(text: str, sender: str, recipient: str) -> bytes:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = sender, recipient, "(dry run)"
    message.set_content(text)
    return message.as_bytes()


def try_rule(
    direction: Direction,
    document: Mapping[str, Any],
    draft: dict[str, Any],
    *,
    replacing: str | None,
    raw: bytes,
    envelope: tuple[str, Sequence[str], str | None],
    read: Callable[[ParsedMail], list[Found]],
    membership: Membership | None = None,
    sender: Callable[[str, str | None], SenderInfo] = SenderInfo,
) -> Trial:
    """``envelope``: the sender, the recipients, the sender's department (none: the
    directory's); ``sender`` describes a sender from the directory (groups, rank, departments
    above). ``document`` and ``draft`` must validate (the page checks first)."""
    address, recipients, department = envelope
    parsed = parse_message(raw)
    authors = tuple(a.addr for a in parsed.from_ if a.addr)
    everyone = tuple(dict.fromkeys([*recipients, *(a.addr for a in (*parsed.to, *parsed.cc))]))
    facts = read_mail(parsed, read(parsed)).facts(
        sender(address or (authors[0] if authors else ""), department), everyone, authors
    )
    alone = {**draft, "enabled": True}
    whole = with_rule(document, alone, replacing)  # as the file would decide with it on
    if direction == "outbound":
        return _outbound(RuleSet.model_validate({"rule": [alone]}), RuleSet.model_validate(whole),
                         facts, str(draft.get("id")))  # fmt: skip
    rule_sets = (InboundRuleSet.model_validate({**_groups(document), "rule": [alone]}),
                 InboundRuleSet.model_validate(whole))  # fmt: skip
    # decided per envelope recipient, as the outer agent does; the mail's To and Cc without one
    deciding = tuple(recipients) or everyone
    return _inbound(rule_sets, facts, (deciding, membership or Membership()),
                    str(draft.get("id")))  # fmt: skip


def _groups(document: Mapping[str, Any]) -> dict[str, Any]:
    return {"groups": document["groups"]} if "groups" in document else {}


def _outbound(alone: RuleSet, whole: RuleSet, facts: MailFacts, rule_id: str) -> Trial:
    mine, overall = evaluate(alone, facts), evaluate(whole, facts)
    applies = mine.rule == rule_id
    return Trial(applies, mine.action if applies else "", mine.explanation if applies else "",
                 overall.action, overall.rule, overall.explanation)  # fmt: skip


def _inbound(rule_sets: tuple[InboundRuleSet, InboundRuleSet], facts: MailFacts,
             who: tuple[Sequence[str], Membership], rule_id: str) -> Trial:  # fmt: skip
    (alone, whole), (recipients, membership) = rule_sets, who
    mine = decide_recipients(alone, facts, recipients, membership)
    hit = next((g.decision for g in mine
                if rule_id in (g.decision.rule, g.decision.mask_rule)), None)  # fmt: skip
    first = decide_recipients(whole, facts, recipients, membership)[0].decision
    action = "" if hit is None else ("mask" if hit.mask_rule == rule_id else hit.action)
    return Trial(hit is not None, action, hit.explanation if hit else "",
                 first.action, first.rule, first.explanation)  # fmt: skip
