"""What happens to an accepted outbound mail, composed from small parts. Synchronous and free
of sockets except the outbox's SMTP client: the service calls it from worker threads, the web
pages call its ``desk``, tests drive it with a fake clock, a fake publisher and no network.

The mail's lifecycle is the state machine in ``lifecycle.py`` (drawn there and in
docs/approval.md); the parts decide which event happened and ``Effects`` carries out the
edge's actions:

- ``Arrivals``: accepted mails enter the database; start-up recovery
- ``Scanner``: read, scan and decide one mail
- ``Holding``: who approves (``Approvers``, from ``senders.check_sender``) and the request
- ``ApprovalDesk``: the approvers' side: list, view, image, decide (the web's interface)
- ``TokenGate``: the one token check (web links and decisions)
- ``Timers``: reminders, escalation, expiry
- ``Publishing``: the out link
- ``Notices``: the request and notice mails; ``Outbox`` sends them

Audit steps: ``accepted_outbound`` -> ``scanned`` -> one of
  ``allowed`` / ``monitored`` -> ``sent_out``;
  ``blocked`` (+ ``sender_notified``);
  ``held`` + ``approval_requested`` -> (``reminded``) -> (``escalated``) ->
  ``approved`` -> ``sent_out``, or ``rejected``, or ``expired`` (+ ``sender_notified`` each),
  or ``withdrawn`` by the sender (its approvers told).
Refused tokens are ``token_refused`` with a reason code.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable

from inner_agent.outbound.approval import Event, Request, State, Timing
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.arrivals import Arrivals
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.desk import Decided, approval_desk
from inner_agent.outbound.errors import InvalidTransition, SpoolCorrupt
from inner_agent.outbound.holding import Holding
from inner_agent.outbound.lifecycle import (
    Allowed,
    Approved,
    Blocked,
    Expired,
    MailState,
    Monitored,
    Occurrence,
    Rejected,
    Rerouted,
    Unreadable,
    Withdrawn,
)
from inner_agent.outbound.outbox import Outbox
from inner_agent.outbound.ports import Audit, Outlets, Publisher, Stores
from inner_agent.outbound.preview import Previewer
from inner_agent.outbound.publishing import Publishing
from inner_agent.outbound.rule_notices import RuleNotice, notice_addresses, rule_notice
from inner_agent.outbound.scanning import Scanned, Scanner
from inner_agent.outbound.spool import SpooledMail
from inner_agent.outbound.timers import Timers
from inner_agent.outbound.tokens import TokenSigner

__all__ = ["Audit", "Outlets", "Publisher", "Stores", "Workflow"]

log = logging.getLogger(__name__)

# A mail whose processing raises this many times in a row is quarantined: a transient error
# (a locked database) passes within three tries, a bug on hostile input does not.
MAX_SCAN_FAILURES = 3


class Workflow:
    def __init__(
        self,
        section: OutboundSection,
        stores: Stores,
        outlets: Outlets,
        *,
        scanner: Scanner,
        signer: TokenSigner,
        clock: Callable[[], float] = time.time,
        previewer: Previewer | None = None,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        """``previewer`` draws held mails for their approvers (the service gives one with a
        render worker; without, the preview is the scan's text as one picture). ``fence``:
        the state's lease, checked before the desk stores a decision."""
        approval = section.approval
        timing = Timing(approval.remind_after_s, approval.expire_after_s, approval.on_expiry)
        self.spool, self.state, self.directory = stores.spool, stores.state, stores.directory
        self.scanner, self.signer = scanner, signer
        self.desk = approval_desk(section, stores, outlets.audit, signer=signer, clock=clock,
                                  fence=fence)  # fmt: skip
        self.gate, self.effects = self.desk.gate, self.desk.effects
        approvers = Approvers(stores.directory, approval.fallback_approver)
        self.arrivals = Arrivals(stores, self.effects)
        self.holding = Holding(stores.state, approvers, clock, previewer)
        self.timers = Timers(stores.state, approvers, self.effects, timing, clock)
        self.publishing = Publishing(stores, outlets.publisher, self.effects, clock)
        self.outbox = Outbox(section, stores.state, outlets.audit, clock)
        self.audit = outlets.audit
        self.hold_mismatch = section.sender_mismatch == "hold"
        self.from_address, self.clock = section.notice.from_address, clock
        self._scan_failures: dict[str, int] = {}

    # ------------------------------------------------------------------ the service's passes

    def accepted(self, mail: SpooledMail) -> None:
        self.arrivals.accepted(mail)

    def recover(self) -> int:
        return self.arrivals.recover()

    def settle_decisions(self) -> int:
        """Carry out the decisions a stopped web process stored but did not act on (its
        request is decided, its mail still ``held``); how many. Only while no web process
        runs (at start-up, and before the web process is started again): a live one may be
        between the two writes of a decision it is about to finish itself."""
        settled = 0
        for request in self.state.decided_but_held():
            outcome = self._outcome_of(request)
            log.warning("outbound mail %s: its request was %s but the mail still held (the "
                        "web process stopped in between); finishing it", request.mail_id,
                        request.state)  # fmt: skip
            try:
                self.effects.advance(request.mail_id, outcome)
            except InvalidTransition:
                continue  # moved on meanwhile
            settled += 1
        return settled

    def _outcome_of(self, request: Request) -> Approved | Rejected | Expired | Withdrawn:
        """A stored decision's event, with who decided in the approver's name as stored."""
        if request.state in (State.APPROVED, State.REJECTED):
            acted_by, capacity = self.state.who_acted(request.request_id)
            decision = Approved if request.state is State.APPROVED else Rejected
            return decision(request, acted_by, capacity)
        return _OUTCOMES[request.state](request)

    def process_received(self) -> int:
        """Scan and decide every accepted mail. A mail whose scan fails MAX_SCAN_FAILURES
        times in a row (a bug met by hostile input) is quarantined, not retried forever."""
        done = 0
        for mail_id in self.state.mails_in(str(MailState.RECEIVED)):
            try:
                self.process(mail_id)
            except Exception as exc:
                failures = self._scan_failures.get(mail_id, 0) + 1
                log.exception("outbound mail %s: processing failed (%d/%d)", mail_id, failures,
                              MAX_SCAN_FAILURES)  # fmt: skip
                self._failed(mail_id, failures, exc)
                continue
            self._scan_failures.pop(mail_id, None)
            done += 1
        return done

    def _failed(self, mail_id: str, failures: int, exc: Exception) -> None:
        self._scan_failures[mail_id] = failures
        if failures >= MAX_SCAN_FAILURES:
            detail = f"processing failed {failures} times: {exc!r}"
            self.effects.advance(mail_id, Unreadable(detail))
            self._scan_failures.pop(mail_id, None)

    def process(self, mail_id: str) -> None:
        try:
            mail, data = self.spool.load(mail_id)
        except (SpoolCorrupt, FileNotFoundError) as exc:
            self.effects.advance(mail_id, Unreadable(str(exc)))
            return
        scanned = self.scanner.scan(
            mail,
            data,
            self.directory.user,
            self.directory.domains(),
            self.directory.departments_above,
        )
        if self.hold_mismatch:
            scanned = scanned.held_for_mismatch()
        self.state.set_mail(mail_id, str(MailState.RECEIVED), **scanned.stored())
        self.audit.record(mail_id, "scanned", **scanned.audited())
        self.effects.advance(mail_id, self._verdict(mail, scanned, data))
        self._tell_for_rule(mail_id, mail, scanned)

    def _tell_for_rule(self, mail_id: str, mail: SpooledMail, scanned: Scanned) -> None:
        """The mail the deciding rule's ``notify`` asks for (rule_notices)."""
        decision = scanned.result.decision
        rules = {r.id: r for r in self.scanner.current_rules().rule}
        rule = rules.get(decision.rule or "")
        if rule is None or not rule.notify:
            return
        notice = RuleNotice(rule.id, decision.action, decision.explanation, mail.mail_from,
                            tuple(mail.rcpt_to), scanned.subject, mail_id)  # fmt: skip
        accounts = self.directory.accounts.accounts()
        for to in notice_addresses(rule.notify, notice, self.directory.domains(), accounts):
            data = rule_notice(notice, to, from_address=self.from_address, now=self.clock())
            self.state.queue_notice(mail_id, f"rule:{rule.id}", to, data)

    def _verdict(self, mail: SpooledMail, scanned: Scanned, data: bytes) -> Occurrence:
        decision = scanned.result.decision
        if decision.action == "allow":
            return Allowed(decision.rule)
        if decision.action == "monitor":
            return Monitored(decision.rule)
        if decision.action == "block":
            return Blocked(decision.rule, decision.explanation)
        return self.holding.hold(mail, scanned, data)

    def publish_pending(self) -> int:
        return self.publishing.publish_pending()

    def tick(self) -> int:
        return self.timers.tick()

    def ask_moved(self, request_ids: Iterable[str]) -> int:
        """Ask the approvers a directory change moved requests to (rerouting.py), as a new
        request asks them; a request decided meanwhile is not asked again. How many."""
        asked = 0
        for request_id in request_ids:
            request = self.state.request(request_id)
            if request is None or not request.state.pending:
                continue
            try:
                self.effects.advance(request.mail_id, Rerouted(request))
            except InvalidTransition:
                continue  # the mail left "held" at the same moment
            asked += 1
        return asked

    def send_notices(self) -> int:
        return self.outbox.send_due()

    # ------------------------------------------------------------------ approvers

    def decide(
        self, request_id: str, approver: str, verdict: Event, untrusted_token: str, reason: str = ""
    ) -> Decided:
        return self.desk.decide(request_id, approver, verdict, untrusted_token, reason)

    def issue_token(self, request: Request, approver: str) -> str:
        return self.gate.issue(request, approver)


_OUTCOMES: dict[State, Callable[[Request], Approved | Rejected | Expired | Withdrawn]] = {
    State.APPROVED: Approved,
    State.REJECTED: Rejected,
    State.EXPIRED: Expired,
    State.WITHDRAWN: Withdrawn,
}
