"""The outbound mail's lifecycle alone: every allowed transition with its actions in order,
and every (state, event) pair outside the table refused."""

from __future__ import annotations

import itertools

import pytest

from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.errors import InvalidTransition
from inner_agent.outbound.lifecycle import (
    LEFT_BY_A_FAILED_MOVE,
    NO_APPROVER_TEXT,
    Accepted,
    Allowed,
    Approved,
    AskApprovers,
    Blocked,
    Escalated,
    Expired,
    Held,
    LeftoverFound,
    MailEvent,
    MailState,
    Monitored,
    NoApprover,
    OpenRequest,
    Published,
    Quarantine,
    Record,
    Rejected,
    Reminded,
    RemoveSpool,
    RequestFound,
    Rerouted,
    SetState,
    TellApprovers,
    TellSender,
    Unreadable,
    Withdrawn,
    transition,
)
from inner_agent.outbound.previews import Preview, PreviewPage

S = MailState
ASKING = Request("r1", "m1", State.HELD, ("lee@x.kr", "park@x.kr"), 0.0)
APPROVED = Request("r1", "m1", State.APPROVED, ("lee@x.kr",), 0.0, decided_by="lee@x.kr")
REJECTED = Request(
    "r1", "m1", State.REJECTED, ("lee@x.kr",), 0.0, decided_by="lee@x.kr", reason="PII"
)
ESCALATED = Request("r1", "m1", State.ESCALATED, ("choi@x.kr",), 5.0, escalations=1)
EXPIRED = Request("r1", "m1", State.EXPIRED, ("lee@x.kr",), 0.0)
WITHDRAWN = Request("r1", "m1", State.WITHDRAWN, ("lee@x.kr",), 0.0, decided_by="kim@x.kr")
PNG = Preview((PreviewPage("image/png", b"\x89PNG preview", "body", 1),))


def asked(step: str, request: Request) -> Record:
    return Record(step, {"request_id": "r1", "approvers": list(request.approvers)})


def quarantined(detail: str) -> Record:
    return Record("quarantined", {"reason": "outbound_spool_unreadable", "detail": detail})


# Every edge of the machine: (from, event, to, the actions in the order they are carried out).
EDGES = [
    (S.SPOOLED, Accepted("kim@x.kr", ("a@y.com",), "10.0.0.1"), S.RECEIVED, (
        Record("accepted_outbound", {"mail_from": "kim@x.kr", "rcpts": ["a@y.com"],
                                     "rcpt_count": 1, "client": "10.0.0.1"}),
    )),
    (S.SPOOLED, Unreadable("torn"), S.QUARANTINED, (Quarantine("torn"), quarantined("torn"))),
    (S.RECEIVED, Allowed(None), S.SENDING, (
        SetState(S.SENDING, "policy:default"), Record("allowed", {"rule": None}),
    )),
    (S.RECEIVED, Monitored("watch"), S.SENDING, (
        SetState(S.SENDING, "policy:watch"), Record("monitored", {"rule": "watch"}),
    )),
    (S.RECEIVED, Blocked("no-secret", "secret"), S.BLOCKED, (
        SetState(S.BLOCKED, "policy:no-secret"),
        Record("blocked", {"rule": "no-secret", "explanation": "secret"}),
        TellSender("blocked", reason="secret"),
        RemoveSpool(),
    )),
    (S.RECEIVED, Held(ASKING, PNG, "hold-pii"), S.HELD, (
        OpenRequest(ASKING, PNG),
        Record("held", {"request_id": "r1", "rule": "hold-pii"}),
        asked("approval_requested", ASKING),
    )),
    (S.RECEIVED, RequestFound(), S.HELD, (SetState(S.HELD),)),
    (S.RECEIVED, NoApprover(), S.REJECTED, (
        SetState(S.REJECTED, "system"),
        Record("rejected", {"reason": "no-approver", "by": "system"}),
        TellSender("rejected", reason=NO_APPROVER_TEXT),
        RemoveSpool(),
    )),
    (S.RECEIVED, Unreadable("bug"), S.QUARANTINED, (
        Quarantine("bug"), SetState(S.QUARANTINED), quarantined("bug"),
    )),
    (S.HELD, Reminded(ASKING), S.HELD, (
        AskApprovers(ASKING, reminder=True), asked("reminded", ASKING),
    )),
    (S.HELD, Rerouted(ESCALATED), S.HELD, (  # a directory change named other approvers
        AskApprovers(ESCALATED), asked("approval_requested", ESCALATED),
    )),
    (S.HELD, Escalated(ESCALATED), S.HELD, (
        Record("escalated", {"request_id": "r1", "to": ["choi@x.kr"], "level": 1}),
        AskApprovers(ESCALATED),
        asked("approval_requested", ESCALATED),
        TellSender("escalated"),
    )),
    (S.HELD, Approved(APPROVED), S.SENDING, (
        SetState(S.SENDING, "lee@x.kr"),
        Record("approved", {"by": "lee@x.kr", "request_id": "r1"}),
        TellSender("approved", decided_by="lee@x.kr"),
    )),
    (S.HELD, Rejected(REJECTED), S.REJECTED, (
        SetState(S.REJECTED, "lee@x.kr"),
        Record("rejected", {"by": "lee@x.kr", "reason": "PII", "request_id": "r1"}),
        TellSender("rejected", reason="PII", decided_by="lee@x.kr"),
        RemoveSpool(),
    )),
    (S.HELD, Withdrawn(WITHDRAWN), S.WITHDRAWN, (
        SetState(S.WITHDRAWN, "kim@x.kr"),
        Record("withdrawn", {"by": "kim@x.kr", "request_id": "r1", "approvers": ["lee@x.kr"]}),
        TellApprovers(WITHDRAWN, "withdrawn"),
        TellSender("withdrawn", decided_by="kim@x.kr"),
        RemoveSpool(),
    )),
    (S.HELD, Expired(EXPIRED), S.EXPIRED, (
        SetState(S.EXPIRED, "system"),
        Record("expired", {"request_id": "r1"}),
        TellSender("expired"),
        RemoveSpool(),
    )),
    (S.SENDING, Published(7, 1234, "lee@x.kr"), S.SENT, (
        SetState(S.SENT),
        Record("sent_out", {"seq": 7, "bytes": 1234, "decided_by": "lee@x.kr"}),
        RemoveSpool(),
    )),
    *[(done, LeftoverFound(), done, (RemoveSpool(),))
      for done in (S.SENT, S.BLOCKED, S.REJECTED, S.EXPIRED, S.WITHDRAWN)],
    # a quarantined mail's copy still in the spool: its move failed; moved again, never removed
    (S.QUARANTINED, LeftoverFound(), S.QUARANTINED, (Quarantine(LEFT_BY_A_FAILED_MOVE),)),
]  # fmt: skip

# One example of each event, to try against every state.
EXAMPLES = {type(event).kind: event for _from, event, _to, _actions in EDGES}


@pytest.mark.parametrize(("state", "event", "target", "actions"), EDGES)
def test_every_edge_and_its_actions(state, event, target, actions):
    step = transition(state, event)
    assert step.state is target
    assert step.actions == actions


def test_the_examples_cover_every_event():
    assert set(EXAMPLES) == set(MailEvent)


REFUSED = sorted(
    set(itertools.product(MailState, MailEvent))
    - {(state, type(event).kind) for state, event, _to, _actions in EDGES}
)


@pytest.mark.parametrize(("state", "kind"), REFUSED)
def test_every_other_pair_is_refused(state, kind):
    with pytest.raises(InvalidTransition, match=f"mail in state {state} cannot take {kind}"):
        transition(state, EXAMPLES[kind])


def test_quarantined_and_sent_mail_take_nothing_that_would_send_or_ask_again():
    for state in (S.QUARANTINED, S.SENT, S.BLOCKED, S.REJECTED, S.EXPIRED, S.WITHDRAWN):
        for event in (Approved(APPROVED), Allowed(None), Held(ASKING, PNG, None)):
            with pytest.raises(InvalidTransition):
                transition(state, event)
    finished = ("sent", "blocked", "rejected", "expired", "withdrawn")
    assert {MailState(s) for s in finished} == {s for s in MailState if s.finished}


def test_a_decision_in_someone_elses_name_is_recorded_under_theirs_and_says_who():
    """Absence delegation and an administrator: the history stays the approver's."""
    step = transition(S.HELD, Approved(APPROVED, acted_by="park@x.kr", capacity="delegate"))
    assert step.actions == (
        SetState(S.SENDING, "lee@x.kr"),
        Record("approved", {"by": "lee@x.kr", "request_id": "r1", "acted_by": "park@x.kr",
                            "capacity": "delegate", "on_behalf": "park@x.kr for lee@x.kr"}),
        TellSender("approved", decided_by="park@x.kr for lee@x.kr"),
    )  # fmt: skip
    rejected = transition(S.HELD, Rejected(REJECTED, acted_by="root@x.kr", capacity="admin"))
    assert rejected.actions[1] == Record("rejected", {
        "by": "lee@x.kr", "request_id": "r1", "acted_by": "root@x.kr", "capacity": "admin",
        "on_behalf": "root@x.kr for lee@x.kr", "reason": "PII"})  # fmt: skip


def test_a_withdrawn_mail_can_be_neither_approved_nor_sent():
    for event in (Approved(APPROVED), Published(1, 2, "x"), Rejected(REJECTED)):
        with pytest.raises(InvalidTransition):
            transition(S.WITHDRAWN, event)


@pytest.mark.parametrize("module", ["lifecycle", "senders"])
def test_the_pure_modules_import_nothing_that_does_io(module):
    """Their docstrings say "Pure": only data types and pure helpers come in."""
    import ast
    from pathlib import Path

    import inner_agent.outbound as package

    tree = ast.parse((Path(package.__file__).parent / f"{module}.py").read_text())
    imported = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom))
        for alias in node.names
    }
    allowed = {
        "__future__", "collections.abc", "dataclasses", "enum", "re", "typing", "unicodedata",
        "inner_agent.outbound.approval", "inner_agent.outbound.errors",
        "inner_agent.outbound.directory",  # the User record only
        "inner_agent.outbound.previews",  # the Preview record only (pure: values and bytes)
        "mailsafe.mime",  # the Address record only
        "mailsafe",  # mailsafe.lookalike, pure string functions
    }  # fmt: skip
    assert imported <= allowed
