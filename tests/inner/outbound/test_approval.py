"""The approval state machine alone: every transition in the table, and every refusal."""

from __future__ import annotations

import pytest

from inner_agent.outbound.approval import (
    MAX_ESCALATIONS,
    Event,
    Request,
    State,
    Timing,
    apply,
    due_event,
    next_state,
)
from inner_agent.outbound.errors import InvalidTransition

TIMING = Timing(remind_after_s=10, expire_after_s=100, on_expiry="reject")


def held(**changes) -> Request:
    base = {
        "request_id": "r1",
        "mail_id": "m1",
        "state": State.HELD,
        "approvers": ("head@x.kr",),
        "since": 0.0,
    }
    return Request(**{**base, **changes})


@pytest.mark.parametrize(
    ("state", "event", "escalate", "expected"),
    [
        (State.HELD, Event.APPROVE, False, State.APPROVED),
        (State.HELD, Event.REJECT, False, State.REJECTED),
        (State.HELD, Event.REMIND, False, State.HELD),
        (State.HELD, Event.TIMEOUT, False, State.EXPIRED),
        (State.HELD, Event.TIMEOUT, True, State.ESCALATED),
        (State.ESCALATED, Event.APPROVE, False, State.APPROVED),
        (State.ESCALATED, Event.REJECT, False, State.REJECTED),
        (State.ESCALATED, Event.REMIND, False, State.ESCALATED),
        (State.ESCALATED, Event.TIMEOUT, False, State.EXPIRED),
        (State.ESCALATED, Event.TIMEOUT, True, State.ESCALATED),
    ],
)
def test_transition_table(state, event, escalate, expected):
    assert next_state(state, event, can_escalate=escalate) is expected


@pytest.mark.parametrize("final", [State.APPROVED, State.REJECTED, State.EXPIRED])
@pytest.mark.parametrize("event", list(Event))
def test_final_states_take_no_event(final, event):
    with pytest.raises(InvalidTransition):
        next_state(final, event, can_escalate=True)


def test_only_an_approver_decides():
    with pytest.raises(InvalidTransition, match="not an approver"):
        apply(held(), Event.APPROVE, now=1, actor="someone@x.kr")
    decided = apply(held(), Event.REJECT, now=1, actor="head@x.kr", reason="개인정보 과다")
    assert (decided.state, decided.decided_by, decided.reason) == (
        State.REJECTED,
        "head@x.kr",
        "개인정보 과다",
    )


def test_reminder_once_then_timeout():
    request = held()
    assert due_event(request, TIMING, 9.9) is None
    assert due_event(request, TIMING, 10) is Event.REMIND
    reminded = apply(request, Event.REMIND, now=10)
    assert reminded.reminded
    assert reminded.state is State.HELD
    assert due_event(reminded, TIMING, 50) is None
    assert due_event(reminded, TIMING, 100) is Event.TIMEOUT


def test_escalation_moves_approvers_and_restarts_the_clock():
    escalated = apply(held(reminded=True), Event.TIMEOUT, now=100, escalate_to=("boss@x.kr",))
    assert escalated.state is State.ESCALATED
    assert escalated.approvers == ("boss@x.kr",)
    assert (escalated.since, escalated.reminded, escalated.escalations) == (100, False, 1)
    assert due_event(escalated, TIMING, 150) is Event.REMIND
    with pytest.raises(InvalidTransition):
        apply(escalated, Event.APPROVE, now=101, actor="head@x.kr")  # the old approver


def test_escalation_stops_after_the_limit():
    top = held(state=State.ESCALATED, escalations=MAX_ESCALATIONS)
    assert apply(top, Event.TIMEOUT, now=1, escalate_to=("boss@x.kr",)).state is State.EXPIRED


def test_timeout_without_anyone_above_expires():
    assert apply(held(), Event.TIMEOUT, now=100).state is State.EXPIRED


def test_decided_requests_have_no_due_events():
    for state in (State.APPROVED, State.REJECTED, State.EXPIRED):
        assert due_event(held(state=state), TIMING, 10_000) is None
