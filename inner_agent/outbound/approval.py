"""The approval state machine: named states, named events, one transition table. Pure.

::

                 approve                       approve
      ┌────────────────────────┐      ┌──────────────────────┐
      │                        ▼      │                      ▼
    HELD ──timeout (escalate)──> ESCALATED            APPROVED
      │ │                         │  │
      │ └──reject──> REJECTED <───┘  └──timeout──> EXPIRED
      └──timeout (reject)──> EXPIRED
    HELD, ESCALATED ──withdraw (the sender)──> WITHDRAWN

``remind`` leaves the state as it is (HELD or ESCALATED) and only moves the reminder time.
APPROVED, REJECTED, EXPIRED and WITHDRAWN are final; any event on them is an InvalidTransition.
A timeout escalates only when ``on_expiry = "escalate"`` and there is someone above to ask,
at most MAX_ESCALATIONS times; otherwise it expires (the mail is not sent).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from inner_agent.outbound.errors import InvalidTransition

__all__ = [
    "MAX_ESCALATIONS",
    "Event",
    "Request",
    "State",
    "Timing",
    "apply",
    "due_event",
    "next_state",
]

# Each escalation goes one department up; three levels reach the top of most organisations.
MAX_ESCALATIONS = 3


class State(StrEnum):
    HELD = "held"
    ESCALATED = "escalated"
    APPROVED = "approved"
    REJECTED = "rejected"
    EXPIRED = "expired"
    WITHDRAWN = "withdrawn"  # the sender took the mail back before anyone decided

    @property
    def pending(self) -> bool:
        return self in (State.HELD, State.ESCALATED)


class Event(StrEnum):
    APPROVE = "approve"
    REJECT = "reject"
    REMIND = "remind"
    TIMEOUT = "timeout"
    WITHDRAW = "withdraw"


@dataclass(frozen=True)
class Timing:
    remind_after_s: float
    expire_after_s: float
    on_expiry: Literal["reject", "escalate"]


@dataclass(frozen=True)
class Request:
    """One approval request for one held mail."""

    request_id: str
    mail_id: str
    state: State
    approvers: tuple[str, ...]  # who may decide now (head and/or delegate, lower-case)
    since: float  # when the current approvers were asked
    reminded: bool = False
    escalations: int = 0
    decided_by: str | None = None
    reason: str = ""


_TABLE: dict[tuple[State, Event], State] = {
    (State.HELD, Event.APPROVE): State.APPROVED,
    (State.HELD, Event.REJECT): State.REJECTED,
    (State.HELD, Event.REMIND): State.HELD,
    (State.ESCALATED, Event.APPROVE): State.APPROVED,
    (State.ESCALATED, Event.REJECT): State.REJECTED,
    (State.ESCALATED, Event.REMIND): State.ESCALATED,
    (State.HELD, Event.WITHDRAW): State.WITHDRAWN,
    (State.ESCALATED, Event.WITHDRAW): State.WITHDRAWN,
}


def next_state(state: State, event: Event, *, can_escalate: bool = False) -> State:
    """The state after ``event``; raise InvalidTransition when ``state`` does not allow it."""
    if event is Event.TIMEOUT and state.pending:
        return State.ESCALATED if can_escalate else State.EXPIRED
    try:
        return _TABLE[(state, event)]
    except KeyError:
        raise InvalidTransition(f"request in state {state} cannot take {event}") from None


def apply(
    request: Request,
    event: Event,
    *,
    now: float,
    actor: str | None = None,
    reason: str = "",
    escalate_to: tuple[str, ...] = (),
) -> Request:
    """The request after ``event``. ``actor`` must be one of the approvers to decide (a
    delegate or an administrator decides in the name of one: ``actor`` is that approver);
    ``withdraw`` records the sender as ``actor``."""
    if event in (Event.APPROVE, Event.REJECT) and actor not in request.approvers:
        raise InvalidTransition(f"{actor} is not an approver of request {request.request_id}")
    can_escalate = bool(escalate_to) and request.escalations < MAX_ESCALATIONS
    state = next_state(request.state, event, can_escalate=can_escalate)
    if event is Event.REMIND:
        return dataclasses.replace(request, reminded=True)
    if state is State.ESCALATED and event is Event.TIMEOUT:
        return dataclasses.replace(
            request,
            state=state,
            approvers=escalate_to,
            since=now,
            reminded=False,
            escalations=request.escalations + 1,
        )
    return dataclasses.replace(request, state=state, decided_by=actor, reason=reason)


def due_event(request: Request, timing: Timing, now: float) -> Event | None:
    """What the clock asks of a pending request now: a reminder, a timeout, or nothing."""
    if not request.state.pending:
        return None
    waited = now - request.since
    if waited >= timing.expire_after_s:
        return Event.TIMEOUT
    if waited >= timing.remind_after_s and not request.reminded:
        return Event.REMIND
    return None
