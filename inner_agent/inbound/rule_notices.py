"""The mail an inbound rule's ``notify`` asks for: the outer agent decided a mail by a rule
(the package's ``InboundMark`` names it), and the people the rule names inside are told by a
notice in Korean naming the rule ("[규칙 알림] RULE: 차단 — SUBJECT").

- ``recipient``: the mail's recipients (inside by definition);
- ``admin``, ``security``: every enabled account holding that console role;
- ``sender``: never — the sender is outside, and nothing goes back out through the diode.

The rule's ``notify`` is read from the inner agent's own rules file (the one it publishes),
looked up by the rule's id when the package arrives: the outer agent's mark carries the id and
the version, not the list. A rule changed between the decision and the arrival is told as it
reads now (docs/policy.md). Only the decision itself notifies (allow, monitor, block, hold),
not a release or an expiry later.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from pathlib import Path
from typing import Final, Protocol

from inner_agent.notify import CheckedMail, shown_header_text
from inner_agent.outbound.rule_notices import RuleNotice, inbound_rule_notice, notice_addresses
from inner_agent.web.accounts import Account
from mailsafe.inbound_rules import InboundRuleSet, default_inbound_rules, load_inbound_rules
from mailsafe.policy import RulesError

__all__ = ["InboundRuleNotices", "RulesReader"]

log = logging.getLogger(__name__)

# The marks of a rule deciding a mail (not a release or an expiry after it).
FIRING: Final = frozenset({"allow", "monitor", "block", "hold"})


class Accounts(Protocol):
    def accounts(self) -> list[Account]: ...


class People(Protocol):
    """The directory: its mail domains and the web accounts (``Directory``)."""

    @property
    def accounts(self) -> Accounts: ...

    def domains(self) -> frozenset[str]: ...


class RulesReader:
    """The inbound rules of ``path`` (None: the built-in ones), read again when the file
    changes; a file that does not validate leaves the last good rules in force."""

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self._seen: tuple[int, int] | None = None
        self._rules = default_inbound_rules()

    def current(self) -> InboundRuleSet:
        if self.path is None:
            return self._rules
        try:
            stat = self.path.stat()
            seen = (stat.st_mtime_ns, stat.st_size)
            if seen != self._seen:
                self._rules, self._seen = load_inbound_rules(self.path), seen
        except (OSError, RulesError) as exc:
            log.warning("inbound rule notices: %s: %s; the last good rules apply", self.path, exc)
        return self._rules


class InboundRuleNotices:
    """``for_mail(mail, recipients)``: (address, message) for each person to tell."""

    def __init__(self, rules: Callable[[], InboundRuleSet], people: People, *,
                 from_address: str, clock: Callable[[], float] = time.time) -> None:  # fmt: skip
        self.rules, self.people = rules, people
        self.from_address, self.clock = from_address, clock

    def for_mail(self, mail: CheckedMail, recipients: tuple[str, ...]) -> list[tuple[str, bytes]]:
        mark = mail.manifest.inbound
        if mark is None or mark.action not in FIRING or not mark.rule:
            return []
        rule = next((r for r in self.rules().rule if r.id == mark.rule), None)
        if rule is None or not rule.notify:
            return []
        notice = _notice(mail, mark.rule, mark.action, recipients)
        wanted = [whom for whom in rule.notify if whom != "sender"]  # never back out
        accounts = self.people.accounts.accounts()
        addresses = _addresses(wanted, notice, self.people.domains(), accounts)
        now = self.clock()
        return [(to, inbound_rule_notice(notice, to, from_address=self.from_address, now=now))
                for to in addresses]  # fmt: skip


def _notice(mail: CheckedMail, rule: str, action: str, recipients: tuple[str, ...]) -> RuleNotice:
    manifest = mail.manifest
    sender = shown_header_text(manifest.envelope.mail_from or manifest.headers.from_, 320)
    subject = shown_header_text(manifest.headers.subject, 300)
    return RuleNotice(rule, action, "", sender, recipients, subject, manifest.mail_id)


def _addresses(notify: Sequence[str], notice: RuleNotice, domains: Collection[str],
               accounts: Iterable[Account]) -> list[str]:  # fmt: skip
    # the recipients of an inbound mail are ours whatever the directory's domains say
    ours = {*domains, *(r.rpartition("@")[2].lower() for r in notice.recipients)}
    return notice_addresses(notify, notice, ours, accounts)
