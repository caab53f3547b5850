"""The receive filters' part of each pass of the outbound worker (``OutboundService``): the
inbound policy checked (and published when it changed), decisions on held mail published.
Both go out as CONTROL records on the out link (docs/protocol.md §16.5, §16.6)."""

from __future__ import annotations

import logging
from typing import Any, Protocol

from agentkit.control import Decision, encode_control
from inner_agent.inbound.holds import HoldBook
from inner_agent.inbound.policy import PolicyPublisher
from protocol import Kind

__all__ = ["InboundOutward"]

log = logging.getLogger(__name__)


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> int: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class InboundOutward:
    def __init__(
        self, policy: PolicyPublisher, book: HoldBook, publisher: Publisher, audit: Audit
    ) -> None:
        self.policy, self.book, self.publisher, self.audit = policy, book, publisher, audit

    def check_policy(self) -> None:
        self.policy.check()

    def recheck(self) -> None:
        """SIGHUP: read the rules file and the directory at the next pass."""
        self.policy.recheck()

    def publish_decisions(self) -> int:
        """Every decision not on the link yet, oldest first; returns how many went out."""
        sent = 0
        for hold in self.book.unsent():
            if hold.bundle_id is None or hold.decided_at is None:
                continue  # a row decided by an older version: nothing to send it under
            record = Decision(mail_id=hold.mail_id, action=hold.action,
                              decided_by=hold.decided_by[:320],
                              decided_at_ms=int(hold.decided_at * 1000),
                              policy_version=hold.policy_version)  # fmt: skip
            seq = self.publisher.publish(encode_control(record), hold.bundle_id, Kind.CONTROL)
            self.book.sent(hold.mail_id, seq)
            self.audit.record(hold.mail_id, "decision_sent", action=hold.action, seq=seq,
                              decided_by=hold.decided_by, rule=hold.rule)  # fmt: skip
            log.info("decision %s on held mail %s published (seq %d)", hold.action,
                     hold.mail_id, seq)  # fmt: skip
            sent += 1
        return sent
