"""An outbound mail's lifecycle: named states, named events, one transition function. Pure.

::

    SPOOLED --accept--> RECEIVED --allow / monitor--> SENDING --published--> SENT
                           │  │ └─block──────────────> BLOCKED
                           │  └─no-approver──────────> REJECTED
                           └─hold / request-found──> HELD ──approve──> SENDING
                                                      │ ├─reject──> REJECTED
                                                      │ ├─withdraw──> WITHDRAWN
                                                      │ └─expire──> EXPIRED
                                                      └─remind / escalate──> HELD
    SPOOLED, RECEIVED --unreadable--> QUARANTINED
    SENT, BLOCKED, REJECTED, EXPIRED, WITHDRAWN --leftover-found--> (same): spool copy removed
    QUARANTINED --leftover-found--> (same): the copy a failed move left, moved into quarantine

``transition(state, event)`` returns the next state and the actions of that edge (store the
state, write the audit event, tell the sender, ask the approvers or tell them their request
closed, remove or quarantine the spool file); ``effects.Effects`` carries them out in order.
Any other (state, event) pair is an ``InvalidTransition``. ``SPOOLED`` is never stored: it is
a spool file the database does not know yet (the intake's 250 came before the row, or the
row was lost in a crash).

Publishing is not an action of an edge: ``SENDING`` is stored first and the publisher's pass
publishes every mail in it, so a crash between the two publishes the same bundle again (the
link de-duplicates by bundle id). ``published`` is the event that pass reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, ClassVar

from inner_agent.outbound.approval import Request
from inner_agent.outbound.errors import InvalidTransition
from inner_agent.outbound.previews import Preview

__all__ = [
    "NO_APPROVER_TEXT",
    "Accepted",
    "Action",
    "Allowed",
    "Approved",
    "AskApprovers",
    "Blocked",
    "Escalated",
    "Expired",
    "Held",
    "LeftoverFound",
    "MailEvent",
    "MailState",
    "Monitored",
    "NoApprover",
    "Occurrence",
    "OpenRequest",
    "Published",
    "Quarantine",
    "Record",
    "Rejected",
    "Reminded",
    "RemoveSpool",
    "RequestFound",
    "Rerouted",
    "SetState",
    "TellApprovers",
    "TellSender",
    "Transition",
    "Unreadable",
    "Withdrawn",
    "on_behalf",
    "transition",
]

# What the sender of a held mail is told when nobody in the directory can approve it.
NO_APPROVER_TEXT = "승인할 부서장이 디렉터리에 없습니다 (no approver in the directory)"
# The reason file of a quarantine done again at recovery (the first reason is in the audit).
LEFT_BY_A_FAILED_MOVE = "moved at recovery: an earlier move into quarantine failed; see its audit"


class MailState(StrEnum):
    SPOOLED = "spooled"  # a spool file without a database row; never stored
    RECEIVED = "received"
    HELD = "held"
    SENDING = "sending"
    SENT = "sent"
    BLOCKED = "blocked"
    REJECTED = "rejected"
    EXPIRED = "expired"
    QUARANTINED = "quarantined"
    WITHDRAWN = "withdrawn"  # the sender took it back while it was held; never sent

    @property
    def finished(self) -> bool:
        """The mail needs its spool copy no more (quarantine moved the copy away itself)."""
        return self in (
            MailState.SENT,
            MailState.BLOCKED,
            MailState.REJECTED,
            MailState.EXPIRED,
            MailState.WITHDRAWN,
        )


class MailEvent(StrEnum):
    ACCEPT = "accept"
    ALLOW = "allow"
    MONITOR = "monitor"
    BLOCK = "block"
    HOLD = "hold"
    REQUEST_FOUND = "request-found"
    NO_APPROVER = "no-approver"
    REMIND = "remind"
    MOVE = "move"
    ESCALATE = "escalate"
    APPROVE = "approve"
    REJECT = "reject"
    EXPIRE = "expire"
    WITHDRAW = "withdraw"
    PUBLISHED = "published"
    UNREADABLE = "unreadable"
    LEFTOVER_FOUND = "leftover-found"


# ----------------------------------------------------------------------------------- events


@dataclass(frozen=True)
class Accepted:
    """The SMTP intake spooled the mail (or start-up found its file)."""

    kind: ClassVar[MailEvent] = MailEvent.ACCEPT
    mail_from: str
    rcpt_to: tuple[str, ...]
    client: str


@dataclass(frozen=True)
class Allowed:
    kind: ClassVar[MailEvent] = MailEvent.ALLOW
    rule: str | None


@dataclass(frozen=True)
class Monitored:
    kind: ClassVar[MailEvent] = MailEvent.MONITOR
    rule: str | None


@dataclass(frozen=True)
class Blocked:
    kind: ClassVar[MailEvent] = MailEvent.BLOCK
    rule: str | None
    explanation: str


@dataclass(frozen=True)
class Held:
    """The policy holds the mail and someone can approve it: ``request`` asks them."""

    kind: ClassVar[MailEvent] = MailEvent.HOLD
    request: Request
    preview: Preview  # the pages shown to the approvers, painted over
    rule: str | None
    note: str = ""  # why these approvers: the sender check's mismatch (empty: as usual)


@dataclass(frozen=True)
class RequestFound:
    """A request for this mail is stored already: it is held, nobody is asked twice."""

    kind: ClassVar[MailEvent] = MailEvent.REQUEST_FOUND


@dataclass(frozen=True)
class NoApprover:
    kind: ClassVar[MailEvent] = MailEvent.NO_APPROVER
    reason: str = NO_APPROVER_TEXT  # what the sender is told


@dataclass(frozen=True)
class Reminded:
    kind: ClassVar[MailEvent] = MailEvent.REMIND
    request: Request


@dataclass(frozen=True)
class Rerouted:
    """The directory now names other approvers for the request (``request.approvers``, a
    manager changed by a sync or an import): they are asked, as a new request is."""

    kind: ClassVar[MailEvent] = MailEvent.MOVE
    request: Request


@dataclass(frozen=True)
class Escalated:
    """The request timed out and went to the approvers above (``request.approvers``)."""

    kind: ClassVar[MailEvent] = MailEvent.ESCALATE
    request: Request


@dataclass(frozen=True)
class Approved:
    """``request.decided_by`` is the approver the decision is recorded under; ``acted_by``
    who really decided when that was someone else (``capacity``: "delegate" during the
    approver's absence, or "admin"); empty when the approver decided."""

    kind: ClassVar[MailEvent] = MailEvent.APPROVE
    request: Request
    acted_by: str = ""
    capacity: str = ""


@dataclass(frozen=True)
class Rejected:
    """As ``Approved``: ``acted_by`` and ``capacity`` say who decided in the approver's name."""

    kind: ClassVar[MailEvent] = MailEvent.REJECT
    request: Request
    acted_by: str = ""
    capacity: str = ""


@dataclass(frozen=True)
class Withdrawn:
    """The sender took the held mail back (``request.decided_by``) before anyone decided."""

    kind: ClassVar[MailEvent] = MailEvent.WITHDRAW
    request: Request


@dataclass(frozen=True)
class Expired:
    kind: ClassVar[MailEvent] = MailEvent.EXPIRE
    request: Request


@dataclass(frozen=True)
class Published:
    """The publisher's pass put the mail on the out link under ``seq``."""

    kind: ClassVar[MailEvent] = MailEvent.PUBLISHED
    seq: int
    size: int
    decided_by: str


@dataclass(frozen=True)
class Unreadable:
    """The spool file is torn or not ours, or processing it failed again and again."""

    kind: ClassVar[MailEvent] = MailEvent.UNREADABLE
    detail: str


@dataclass(frozen=True)
class LeftoverFound:
    """A finished mail's spool copy outlived a crash between the final state and its removal,
    or a quarantined mail's copy its failed move left in the spool."""

    kind: ClassVar[MailEvent] = MailEvent.LEFTOVER_FOUND


Occurrence = (
    Accepted | Allowed | Monitored | Blocked | Held | RequestFound | NoApprover | Reminded
    | Rerouted | Escalated | Approved | Rejected | Expired | Withdrawn | Published | Unreadable
    | LeftoverFound
)  # fmt: skip


# ----------------------------------------------------------------------------------- actions


@dataclass(frozen=True)
class SetState:
    state: MailState
    decided_by: str | None = None  # None: leave the stored value as it is


@dataclass(frozen=True)
class Record:
    """One audit event for the mail."""

    step: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TellSender:
    """Queue the notice of ``outcome`` (notice_mail.NOTICE_TEXT) for the envelope sender."""

    outcome: str
    reason: str = ""
    decided_by: str = ""


@dataclass(frozen=True)
class OpenRequest:
    """Store the request, the held state, the request mails and the sender's "held" notice
    in one transaction: a crash can neither leave a held mail nobody is asked about nor ask
    twice."""

    request: Request
    preview: Preview
    note: str = ""  # told to the sender with the "held" notice


@dataclass(frozen=True)
class AskApprovers:
    """Queue a request mail (with a fresh token) to each of ``request.approvers``."""

    request: Request
    reminder: bool = False


@dataclass(frozen=True)
class TellApprovers:
    """Queue a notice of ``outcome`` to each of ``request.approvers`` (their open request was
    closed without them: the sender withdrew the mail)."""

    request: Request
    outcome: str


@dataclass(frozen=True)
class RemoveSpool:
    pass


@dataclass(frozen=True)
class Quarantine:
    """Move the spool file to the quarantine with ``detail`` as its reason."""

    detail: str


Action = (
    SetState | Record | TellSender | OpenRequest | AskApprovers | TellApprovers | RemoveSpool
    | Quarantine
)  # fmt: skip


@dataclass(frozen=True)
class Transition:
    state: MailState
    actions: tuple[Action, ...]


# ----------------------------------------------------------------------------------- table

S, E = MailState, MailEvent

_NEXT: dict[tuple[MailState, MailEvent], MailState] = {
    (S.SPOOLED, E.ACCEPT): S.RECEIVED,
    (S.SPOOLED, E.UNREADABLE): S.QUARANTINED,
    (S.RECEIVED, E.ALLOW): S.SENDING,
    (S.RECEIVED, E.MONITOR): S.SENDING,
    (S.RECEIVED, E.BLOCK): S.BLOCKED,
    (S.RECEIVED, E.HOLD): S.HELD,
    (S.RECEIVED, E.REQUEST_FOUND): S.HELD,
    (S.RECEIVED, E.NO_APPROVER): S.REJECTED,
    (S.RECEIVED, E.UNREADABLE): S.QUARANTINED,
    (S.HELD, E.REMIND): S.HELD,
    (S.HELD, E.MOVE): S.HELD,
    (S.HELD, E.ESCALATE): S.HELD,
    (S.HELD, E.APPROVE): S.SENDING,
    (S.HELD, E.REJECT): S.REJECTED,
    (S.HELD, E.EXPIRE): S.EXPIRED,
    (S.HELD, E.WITHDRAW): S.WITHDRAWN,
    (S.SENDING, E.PUBLISHED): S.SENT,
    **{(done, E.LEFTOVER_FOUND): done for done in MailState if done.finished},
    (S.QUARANTINED, E.LEFTOVER_FOUND): S.QUARANTINED,  # its move had failed: moved again
}


def transition(state: MailState, event: Occurrence) -> Transition:
    """The state after ``event`` and the actions of that edge, in the order to carry them
    out; InvalidTransition when ``state`` does not take ``event``."""
    try:
        target = _NEXT[(state, event.kind)]
    except KeyError:
        raise InvalidTransition(f"mail in state {state} cannot take {event.kind}") from None
    return Transition(target, _actions(state, event))


def _policy(rule: str | None) -> str:
    return f"policy:{rule or 'default'}"


def _accepted(event: Accepted) -> tuple[Action, ...]:
    fields = {
        "mail_from": event.mail_from,
        "rcpts": list(event.rcpt_to),
        "rcpt_count": len(event.rcpt_to),
        "client": event.client,
    }
    return (Record("accepted_outbound", fields),)


def _allowed(event: Allowed | Monitored) -> tuple[Action, ...]:
    step = "allowed" if isinstance(event, Allowed) else "monitored"
    return SetState(S.SENDING, _policy(event.rule)), Record(step, {"rule": event.rule})


def _blocked(event: Blocked) -> tuple[Action, ...]:
    return (
        SetState(S.BLOCKED, _policy(event.rule)),
        Record("blocked", {"rule": event.rule, "explanation": event.explanation}),
        TellSender("blocked", reason=event.explanation),
        RemoveSpool(),
    )


def _held(event: Held) -> tuple[Action, ...]:
    request = event.request
    held: dict[str, Any] = {"request_id": request.request_id, "rule": event.rule}
    if event.note:
        held |= {"route": "security-officer", "note": event.note}
    return (
        OpenRequest(request, event.preview, event.note),
        Record("held", held),
        _asked("approval_requested", request),
    )


def _no_approver(event: NoApprover) -> tuple[Action, ...]:
    return (
        SetState(S.REJECTED, "system"),
        Record("rejected", {"reason": "no-approver", "by": "system"}),
        TellSender("rejected", reason=event.reason),
        RemoveSpool(),
    )


def _asked(step: str, request: Request) -> Record:
    return Record(step, {"request_id": request.request_id, "approvers": list(request.approvers)})


def _escalated(event: Escalated) -> tuple[Action, ...]:
    request = event.request
    fields = {
        "request_id": request.request_id,
        "to": list(request.approvers),
        "level": request.escalations,
    }
    return (
        Record("escalated", fields),
        AskApprovers(request),
        _asked("approval_requested", request),
        TellSender("escalated"),
    )


def on_behalf(by: str, acted_by: str) -> str:
    """How a decision made in someone's name is shown: "kim@... for lee@..."."""
    return f"{acted_by} for {by}" if acted_by and acted_by != by else by


def _decided_fields(event: Approved | Rejected) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "by": event.request.decided_by,
        "request_id": event.request.request_id,
    }
    if event.acted_by:
        fields |= {
            "acted_by": event.acted_by,
            "capacity": event.capacity,
            "on_behalf": on_behalf(event.request.decided_by or "", event.acted_by),
        }
    return fields


def _approved(event: Approved) -> tuple[Action, ...]:
    by = event.request.decided_by or ""
    return (
        SetState(S.SENDING, by),
        Record("approved", _decided_fields(event)),
        TellSender("approved", decided_by=on_behalf(by, event.acted_by)),
    )


def _rejected(event: Rejected) -> tuple[Action, ...]:
    request = event.request
    by = request.decided_by or ""
    fields = _decided_fields(event) | {"reason": request.reason}
    return (
        SetState(S.REJECTED, by),
        Record("rejected", fields),
        TellSender("rejected", reason=request.reason, decided_by=on_behalf(by, event.acted_by)),
        RemoveSpool(),
    )


def _withdrawn(event: Withdrawn) -> tuple[Action, ...]:
    request = event.request
    by = request.decided_by or ""
    fields = {"by": by, "request_id": request.request_id, "approvers": list(request.approvers)}
    return (
        SetState(S.WITHDRAWN, by),
        Record("withdrawn", fields),
        TellApprovers(request, "withdrawn"),
        TellSender("withdrawn", decided_by=by),
        RemoveSpool(),
    )


def _expired(event: Expired) -> tuple[Action, ...]:
    return (
        SetState(S.EXPIRED, "system"),
        Record("expired", {"request_id": event.request.request_id}),
        TellSender("expired"),
        RemoveSpool(),
    )


def _published(event: Published) -> tuple[Action, ...]:
    fields = {"seq": event.seq, "bytes": event.size, "decided_by": event.decided_by}
    return SetState(S.SENT), Record("sent_out", fields), RemoveSpool()


def _unreadable(state: MailState, event: Unreadable) -> tuple[Action, ...]:
    audit = Record("quarantined", {"reason": "outbound_spool_unreadable", "detail": event.detail})
    if state is S.SPOOLED:  # no row to mark
        return Quarantine(event.detail), audit
    return Quarantine(event.detail), SetState(S.QUARANTINED), audit


def _leftover(state: MailState) -> tuple[Action, ...]:
    """A quarantined mail's copy left in the spool is one whose move into quarantine failed
    (an I/O error, a read-only disk): moved again, never removed, or the mail would be lost
    with nothing in quarantine. Any other finished mail's copy is done with."""
    if state is S.QUARANTINED:
        return (Quarantine(LEFT_BY_A_FAILED_MOVE),)
    return (RemoveSpool(),)


def _actions(state: MailState, event: Occurrence) -> tuple[Action, ...]:  # noqa: PLR0911, PLR0912 - a table
    match event:
        case Accepted():
            return _accepted(event)
        case Allowed() | Monitored():
            return _allowed(event)
        case Blocked():
            return _blocked(event)
        case Held():
            return _held(event)
        case RequestFound():
            return (SetState(S.HELD),)
        case NoApprover():
            return _no_approver(event)
        case Reminded():
            return AskApprovers(event.request, reminder=True), _asked("reminded", event.request)
        case Rerouted():
            return AskApprovers(event.request), _asked("approval_requested", event.request)
        case Escalated():
            return _escalated(event)
        case Approved():
            return _approved(event)
        case Rejected():
            return _rejected(event)
        case Expired():
            return _expired(event)
        case Withdrawn():
            return _withdrawn(event)
        case Published():
            return _published(event)
        case Unreadable():
            return _unreadable(state, event)
        case LeftoverFound():
            return _leftover(state)
