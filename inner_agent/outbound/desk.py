"""What an approver can do, and all the web pages may call: list the requests waiting for
them, view one (a link's token checked on the way in), fetch its preview (pages with personal
data painted over), and decide. Someone who is not an approver of a request (nor the one who
decided it) does not see it.

The desk works on the databases only, so it runs in the web process as well as in the
agent's; ``on_decided`` is told after each stored decision (the web process wakes the agent's
worker with it, so an approved mail is published at once rather than at the next poll)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from inner_agent.outbound.approval import Event, Request, apply
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.effects import Effects
from inner_agent.outbound.errors import InvalidTransition
from inner_agent.outbound.lifecycle import Approved, Rejected
from inner_agent.outbound.notices import Notices
from inner_agent.outbound.ports import Audit, Stores
from inner_agent.outbound.previews import Preview
from inner_agent.outbound.state import MailRow, OutboundState
from inner_agent.outbound.token_gate import TokenGate
from inner_agent.outbound.tokens import TokenSigner

__all__ = ["ApprovalDesk", "Decided", "View", "approval_desk"]


@dataclass(frozen=True)
class View:
    request: Request
    mail: MailRow
    token: str | None  # for the decision forms; None when this user cannot decide now


@dataclass(frozen=True)
class Decided:
    request: Request
    mail: MailRow


class ApprovalDesk:
    def __init__(
        self,
        state: OutboundState,
        gate: TokenGate,
        effects: Effects,
        audit: Audit,
        clock: Callable[[], float],
        *,
        on_decided: Callable[[], None] | None = None,
    ) -> None:
        self.state, self.gate, self.effects = state, gate, effects
        self.audit, self.clock = audit, clock
        self.on_decided = on_decided

    def pending_for(self, approver: str) -> list[tuple[Request, MailRow]]:
        """The requests ``approver`` may decide now, oldest first, with their mails."""
        found = []
        for request in self.state.pending_requests():
            mail = self.state.mail(request.mail_id) if approver in request.approvers else None
            if mail is not None:
                found.append((request, mail))
        return found

    def view(self, request_id: str, user: str, untrusted_token: str | None = None) -> View | None:
        """The request for ``user``, or None (unknown, or not theirs to see). A link's token is
        checked first: TokenRefused (logged and audited) when it cannot be used."""
        request = self.state.request(request_id)
        mail = self.state.mail(request.mail_id) if request else None
        if request is not None and untrusted_token:
            self.gate.check(untrusted_token, request_id, request, user)
        if request is None or mail is None or not _may_see(request, user):
            return None
        token = None
        if request.state.pending and user in request.approvers:
            token = untrusted_token or self.gate.issue(request, user)
        return View(request, mail, token)

    def image(self, request_id: str, user: str) -> bytes | None:
        """The masked image of the request's mail, or None (unknown, or not theirs to see)."""
        request = self.state.request(request_id)
        if request is None or not _may_see(request, user):
            return None
        return self.state.preview(request_id)

    def preview(self, request_id: str, user: str) -> Preview | None:
        """The request's preview (its pages, where each finding was painted over, what was
        left out), or None (unknown, or not theirs to see)."""
        request = self.state.request(request_id)
        if request is None or not _may_see(request, user):
            return None
        return self.effects.stored_preview(request_id)

    def mail_of(self, request_id: str) -> str | None:
        """The mail id of a request (for access records), or None."""
        request = self.state.request(request_id)
        return request.mail_id if request is not None else None

    def decide(
        self, request_id: str, approver: str, verdict: Event, untrusted_token: str, reason: str = ""
    ) -> Decided:
        """Approve or reject. TokenRefused (logged and audited) or InvalidTransition (already
        decided, or decided at the same moment)."""
        if verdict not in (Event.APPROVE, Event.REJECT):
            raise InvalidTransition(f"{verdict} is not a decision")
        stored = self.state.request(request_id)
        admitted = self.gate.check(untrusted_token, request_id, stored, approver)
        request = admitted.request
        decided = apply(request, verdict, now=self.clock(), actor=approver, reason=reason)
        self.gate.spend(admitted, approver, untrusted_token)
        if not self.state.save_request(decided, expect=request):
            raise InvalidTransition(f"request {request_id} was decided at the same moment")
        outcome = Approved(decided) if verdict is Event.APPROVE else Rejected(decided)
        self.effects.advance(decided.mail_id, outcome)
        if self.on_decided is not None:
            self.on_decided()
        row = self.state.mail(decided.mail_id)
        if row is None:
            raise InvalidTransition(f"request {request_id} refers to an unknown mail")
        return Decided(decided, row)

    def note_csrf_refusal(self, where: str, client: str) -> None:
        """A page's POST came without its session's CSRF token: audited as a refused token."""
        self.audit.record("-", "token_refused", reason="csrf", where=where, client=client)


def _may_see(request: Request, user: str) -> bool:
    return user in request.approvers or request.decided_by == user


def approval_desk(
    section: OutboundSection,
    stores: Stores,
    audit: Audit,
    *,
    signer: TokenSigner,
    clock: Callable[[], float] = time.time,
    on_decided: Callable[[], None] | None = None,
) -> ApprovalDesk:
    """The approvers' desk over ``stores``, with its token gate, notices and effects: the
    workflow makes one in the agent's process, the web process its own over the same files
    (without the scanner, the previews and the link the workflow needs besides)."""
    gate = TokenGate(signer, stores.state, audit,
                     expire_after_s=section.approval.expire_after_s, clock=clock)  # fmt: skip
    effects = Effects(stores, audit, Notices(section, stores.state, gate, clock))
    return ApprovalDesk(stores.state, gate, effects, audit, clock, on_decided=on_decided)
