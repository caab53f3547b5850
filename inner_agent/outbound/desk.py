"""What an approver can do, and all the web pages may call: list the requests waiting for
them, view one (a link's token checked on the way in), fetch its preview (pages with personal
data painted over), and decide. Someone who is not an approver of a request (nor the one who
decided it) does not see it, except a delegate during the approver's dated absence
(``absences.py``) and an administrator (``admin=True``, from the signed-in account's role):
both decide in an approver's name, and the decision is recorded as theirs "for" that approver.
The desk is also the employee's: the mails they sent (``sent_by``) and ``withdraw`` of one
still held.

The desk works on the databases only, so it runs in the web process as well as in the
agent's; ``on_decided`` is told after each stored decision (the web process wakes the agent's
worker with it, so an approved mail is published at once rather than at the next poll)."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from inner_agent.outbound.absences import Absences
from inner_agent.outbound.approval import Event, Request, apply
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.effects import Effects
from inner_agent.outbound.errors import InvalidTransition, WithdrawRefused
from inner_agent.outbound.lifecycle import Approved, Rejected, Withdrawn
from inner_agent.outbound.notices import Notices
from inner_agent.outbound.ports import Audit, Stores
from inner_agent.outbound.previews import Preview
from inner_agent.outbound.senders import comparable, stored_check
from inner_agent.outbound.state import MailRow, OutboundState
from inner_agent.outbound.token_gate import TokenGate
from inner_agent.outbound.tokens import TokenSigner

__all__ = ["MAX_OWN_MAILS", "ApprovalDesk", "Decided", "Standing", "View", "approval_desk"]

# The employee's page lists this many of their newest mails (older ones are in the console).
MAX_OWN_MAILS = 200


@dataclass(frozen=True)
class Standing:
    """In whose name a user may decide a request: ``approver``, one of its approvers, and
    ``capacity``: "" (the approver themself), "delegate" or "admin"."""

    approver: str
    capacity: str = ""


@dataclass(frozen=True)
class View:
    request: Request
    mail: MailRow
    token: str | None  # for the decision forms; None when this user cannot decide now
    standing: Standing | None = None  # in whose name this user decides; None: cannot


@dataclass(frozen=True)
class Decided:
    request: Request
    mail: MailRow


class ApprovalDesk:
    def __init__(  # noqa: PLR0917 - the parts approval_desk builds, in one place
        self,
        state: OutboundState,
        gate: TokenGate,
        effects: Effects,
        audit: Audit,
        clock: Callable[[], float],
        absences: Absences,
        *,
        on_decided: Callable[[], None] | None = None,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        """``fence``: raises (agentkit.leasekeeper.FenceClosed) once the agent no longer
        holds its state's lease: no decision and no withdrawal is stored from then on."""
        self.state, self.gate, self.effects = state, gate, effects
        self.audit, self.clock, self.absences = audit, clock, absences
        self.on_decided = on_decided
        self.fence = fence

    def standing(self, request: Request, user: str, *, admin: bool = False) -> Standing | None:
        """In whose name ``user`` may decide ``request`` now: their own, an absent approver's
        (a delegation open at the clock's now), any approver's for an administrator; or
        None. Nobody the mail shows as its sender decides it in anyone's name (issue 15.5:
        a delegate or an administrator must not approve their own mail)."""
        if user in request.approvers:
            return Standing(user)
        if self._shown_as_sender(request, user):
            return None
        for absence in self.absences.covering(user, self.clock()):
            if absence.absent in request.approvers:
                return Standing(absence.absent, "delegate")
        if admin and request.approvers:
            return Standing(request.approvers[0], "admin")
        return None

    def _shown_as_sender(self, request: Request, user: str) -> bool:
        mail = self.state.mail(request.mail_id)
        if mail is None:
            return True  # nothing to check against: no power in someone else's name
        return comparable(user) in stored_check(mail.decision, mail.mail_from)[0]

    def pending_for(self, approver: str, *, admin: bool = False) -> list[tuple[Request, MailRow]]:
        """The requests ``approver`` may decide now (in their name or, as a delegate or an
        administrator, in someone else's), oldest first, with their mails."""
        found = []
        for request in self.state.pending_requests():
            mine = self.standing(request, approver, admin=admin) is not None
            mail = self.state.mail(request.mail_id) if mine else None
            if mail is not None:
                found.append((request, mail))
        return found

    def token_for(self, request: Request, user: str) -> str:
        """A fresh token for ``user`` on ``request`` (the list page's bulk form)."""
        return self.gate.issue(request, user)

    def view(
        self, request_id: str, user: str, untrusted_token: str | None = None, *,
        admin: bool = False,
    ) -> View | None:  # fmt: skip
        """The request for ``user``, or None (unknown, or not theirs to see). A link's token is
        checked first: TokenRefused (logged and audited) when it cannot be used."""
        request = self.state.request(request_id)
        mail = self.state.mail(request.mail_id) if request else None
        standing = self.standing(request, user, admin=admin) if request else None
        if request is not None and untrusted_token:
            acting_as = standing.approver if standing else None
            self.gate.check(untrusted_token, request_id, request, user, acting_as=acting_as)
        if request is None or mail is None or not _may_see(request, user, standing):
            return None
        token = None
        if request.state.pending and standing is not None:
            token = untrusted_token or self.gate.issue(request, user)
        return View(request, mail, token, standing if request.state.pending else None)

    def image(self, request_id: str, user: str, *, admin: bool = False) -> bytes | None:
        """The masked image of the request's mail, or None (unknown, or not theirs to see)."""
        request = self.state.request(request_id)
        standing = self.standing(request, user, admin=admin) if request else None
        if request is None or not _may_see(request, user, standing):
            return None
        return self.state.preview(request_id)

    def preview(self, request_id: str, user: str, *, admin: bool = False) -> Preview | None:
        """The request's preview (its pages, where each finding was painted over, what was
        left out), or None (unknown, or not theirs to see)."""
        request = self.state.request(request_id)
        standing = self.standing(request, user, admin=admin) if request else None
        if request is None or not _may_see(request, user, standing):
            return None
        return self.effects.stored_preview(request_id)

    def mail_of(self, request_id: str) -> str | None:
        """The mail id of a request (for access records), or None."""
        request = self.state.request(request_id)
        return request.mail_id if request is not None else None

    def decide(
        self,
        request_id: str,
        approver: str,
        verdict: Event,
        untrusted_token: str,
        reason: str = "",
        *,
        admin: bool = False,
    ) -> Decided:
        """Approve or reject as the signed-in ``approver`` (in an absent approver's name as
        their delegate, or in any approver's as an administrator). TokenRefused (logged and
        audited) or InvalidTransition (already decided, or decided at the same moment)."""
        if verdict not in (Event.APPROVE, Event.REJECT):
            raise InvalidTransition(f"{verdict} is not a decision")
        self.fence()
        stored = self.state.request(request_id)
        standing = self.standing(stored, approver, admin=admin) if stored else None
        name = standing.approver if standing else approver
        admitted = self.gate.check(untrusted_token, request_id, stored, approver, acting_as=name)
        request = admitted.request
        decided = apply(request, verdict, now=self.clock(), actor=name, reason=reason)
        self.gate.spend(admitted, approver, untrusted_token)
        capacity = standing.capacity if standing is not None else ""
        acted_by = approver if capacity else ""
        if not self.state.save_request(decided, expect=request, acted_by=acted_by,
                                       capacity=capacity):  # fmt: skip
            raise InvalidTransition(f"request {request_id} was decided at the same moment")
        event = Approved if verdict is Event.APPROVE else Rejected
        self.effects.advance(decided.mail_id, event(decided, acted_by, capacity))
        if self.on_decided is not None:
            self.on_decided()
        row = self.state.mail(decided.mail_id)
        if row is None:
            raise InvalidTransition(f"request {request_id} refers to an unknown mail")
        return Decided(decided, row)

    # ------------------------------------------------------------------ the employee's side

    def sent_by(self, sender: str) -> list[tuple[MailRow, Request | None]]:
        """The newest MAX_OWN_MAILS mails ``sender`` sent out, each with its request (or
        None: never held)."""
        return [(row, self.state.request_for_mail(row.mail_id))
                for row in self.state.mails_from(sender, MAX_OWN_MAILS)]  # fmt: skip

    def withdraw(self, mail_id: str, sender: str) -> Request:
        """Take back ``sender``'s held mail before anyone decided: it is never sent, its
        approvers are told. WithdrawRefused when it is not theirs or not held; InvalidTransition
        when a decision came at the same moment."""
        self.fence()
        row = self.state.mail(mail_id)
        request = self.state.request_for_mail(mail_id)
        if row is None or row.mail_from.lower() != sender.lower():
            raise WithdrawRefused(f"mail {mail_id} is not one {sender} sent")
        if request is None or not request.state.pending or row.state != "held":
            raise WithdrawRefused(f"mail {mail_id} is not waiting for approval")
        withdrawn = apply(request, Event.WITHDRAW, now=self.clock(), actor=sender.lower())
        if not self.state.save_request(withdrawn, expect=request):
            raise InvalidTransition(f"request {request.request_id} was decided at that moment")
        self.effects.advance(mail_id, Withdrawn(withdrawn))
        if self.on_decided is not None:
            self.on_decided()
        return withdrawn

    def note_csrf_refusal(self, where: str, client: str) -> None:
        """A page's POST came without its session's CSRF token: audited as a refused token."""
        self.audit.record("-", "token_refused", reason="csrf", where=where, client=client)


def _may_see(request: Request, user: str, standing: Standing | None) -> bool:
    return standing is not None or user in request.approvers or request.decided_by == user


def approval_desk(
    section: OutboundSection,
    stores: Stores,
    audit: Audit,
    *,
    signer: TokenSigner,
    clock: Callable[[], float] = time.time,
    on_decided: Callable[[], None] | None = None,
    fence: Callable[[], None] = lambda: None,
) -> ApprovalDesk:
    """The approvers' desk over ``stores``, with its token gate, notices and effects: the
    workflow makes one in the agent's process, the web process its own over the same files
    (without the scanner, the previews and the link the workflow needs besides)."""
    gate = TokenGate(signer, stores.state, audit,
                     expire_after_s=section.approval.expire_after_s, clock=clock)  # fmt: skip
    effects = Effects(stores, audit, Notices(section, stores.state, gate, clock))
    absences = Absences(section.spool_dir / "absences.db", clock=clock)
    return ApprovalDesk(stores.state, gate, effects, audit, clock, absences,
                        on_decided=on_decided, fence=fence)  # fmt: skip
