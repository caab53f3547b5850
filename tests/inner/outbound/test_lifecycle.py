"""The outbound mail's lifecycle alone: every allowed transition with its actions in order,
and every (state, event) pair outside the table refused."""

from __future__ import annotations

import itertools

import pytest

from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.errors import InvalidTransition
from inner_agent.outbound.lifecycle import (
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
    SetState,
    TellSender,
    Unreadable,
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
      for done in (S.SENT, S.BLOCKED, S.REJECTED, S.EXPIRED)],
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
    for state in (S.QUARANTINED, S.SENT, S.BLOCKED, S.REJECTED, S.EXPIRED):
        for event in (Approved(APPROVED), Allowed(None), Held(ASKING, PNG, None)):
            with pytest.raises(InvalidTransition):
                transition(state, event)
    assert {MailState(s) for s in ("sent", "blocked", "rejected", "expired")} == {
        s for s in MailState if s.finished
    }


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
