"""The one token check: the web's link check and a decision go through TokenGate alone, in
the documented order, and every refusal is audited."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from inner_agent.outbound.approval import Event
from inner_agent.outbound.errors import TokenRefused
from tests.inner.outbound.test_workflow import accept
from tests.support.outbound import build_workflow, rrn_mail

OUTBOUND = Path(__file__).resolve().parents[3] / "inner_agent" / "outbound"


def test_only_the_gate_verifies_tokens():
    callers = sorted(
        path.name
        for path in OUTBOUND.glob("*.py")
        if re.search(r"signer\.(verify|open)\(|\.(spend_nonce|nonce_spent)\(", path.read_text())
    )
    assert callers == ["token_gate.py"]


@pytest.fixture
def held(tmp_path):
    parts = build_workflow(tmp_path, approval={"on_expiry": "escalate"})
    mail_id = accept(parts, rrn_mail())
    return parts, parts.state.request_for_mail(mail_id)


def reasons(parts) -> list[str]:
    return [f["reason"] for _m, step, f in parts.audit.events if step == "token_refused"]


def test_a_link_and_a_decision_are_refused_alike(held):
    parts, request = held
    parts.clock.now += 1000  # escalated: lee is no longer an approver
    parts.workflow.tick()
    request = parts.state.request(request.request_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")  # genuine, unexpired
    with pytest.raises(TokenRefused) as by_link:
        parts.workflow.desk.view(request.request_id, "lee@corp.example", token)
    with pytest.raises(TokenRefused) as by_form:
        parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    assert by_link.value.reason == by_form.value.reason == "wrong-approver"
    assert reasons(parts) == ["wrong-approver", "wrong-approver"]


def test_a_spent_token_opens_no_decision_form(held):
    parts, request = held
    token = parts.workflow.issue_token(request, "park@corp.example")
    view = parts.workflow.desk.view(request.request_id, "park@corp.example", token)
    assert view.token == token
    parts.workflow.decide(request.request_id, "park@corp.example", Event.APPROVE, token)
    with pytest.raises(TokenRefused) as caught:
        parts.workflow.desk.view(request.request_id, "park@corp.example", token)
    assert caught.value.reason == "reused"
    after = parts.workflow.desk.view(request.request_id, "park@corp.example")
    assert after.token is None  # decided: nothing to sign any more


def test_only_decisions_are_decided(held):
    from inner_agent.outbound.errors import InvalidTransition

    parts, request = held
    token = parts.workflow.issue_token(request, "lee@corp.example")
    with pytest.raises(InvalidTransition, match="not a decision"):
        parts.workflow.decide(request.request_id, "lee@corp.example", Event.TIMEOUT, token)
    assert parts.state.request(request.request_id).state.pending
