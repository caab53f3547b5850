"""A held mail is moved by two processes: the web process decides, the agent's worker
reminds, escalates and expires. The database decides who wins (a compare-and-set on the
request's state and escalation count, and on the mail's state), never a lock in memory:
exactly one of two moves from the same state takes effect, with one audit event and one
notice. And a decision a killed web process stored but did not carry out is finished."""

from __future__ import annotations

import multiprocessing
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from agentkit.audit import AuditLog
from inner_agent.outbound.approval import Event, State
from inner_agent.outbound.errors import InvalidTransition
from inner_agent.outbound.lifecycle import MailState
from tests.support.documents import make_mail
from tests.support.outbound import HR_CSV, RRN, build_workflow

# Three levels, so a request can be escalated twice: 영업부 -> 경영본부 -> 이사회.
THREE_LEVELS = HR_CSV.replace(
    "choi@corp.example,최고위,경영본부,,head".encode(),
    "choi@corp.example,최고위,경영본부,이사회,head\nceo@corp.example,대표,이사회,,head".encode(),
)
HELD_MAILS = 12


def hold(parts: Any) -> tuple[str, Any]:
    from inner_agent.outbound.spool import SpooledMail, new_mail_id

    mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",),
                       parts.clock(), "127.0.0.1", "mx")  # fmt: skip
    parts.spool.store(mail, make_mail(subject="명단", text=f"주민등록번호 {RRN}"))
    parts.workflow.accepted(mail)
    parts.workflow.process_received()
    request = parts.state.request_for_mail(mail.mail_id)
    assert request is not None, "the mail was not held"
    return mail.mail_id, request


def test_a_decision_read_before_an_escalation_cannot_land_after_it(tmp_path, monkeypatch):
    """The head of the department above reads the request; before the decision is stored
    the request times out again and goes one level further up. Before the compare-and-set
    took the escalation count, the decision was stored on top (the state was ``escalated``
    both times) and the mail was both escalated and approved by someone no longer asked."""
    parts = build_workflow(tmp_path, approval={"on_expiry": "escalate"})
    parts.directory.import_csv(THREE_LEVELS)
    mail_id, request = hold(parts)
    parts.clock.now += 1000
    assert parts.workflow.tick() == 1
    escalated = parts.state.request(request.request_id)
    assert escalated.approvers == ("choi@corp.example",)
    token = parts.workflow.issue_token(escalated, "choi@corp.example")

    read = parts.state.request

    def read_then_escalate(request_id: str) -> Any:
        found = read(request_id)
        monkeypatch.setattr(parts.state, "request", read)  # once
        # The agent's timer, a deadline later (the decider's token is still good on its clock).
        later = parts.clock.now + 1000
        monkeypatch.setattr(parts.workflow.timers, "clock", lambda: later)
        assert parts.workflow.tick() == 1  # the second escalation, between read and write
        return found

    monkeypatch.setattr(parts.state, "request", read_then_escalate)
    with pytest.raises(InvalidTransition):
        parts.workflow.decide(request.request_id, "choi@corp.example", Event.APPROVE, token)
    now = parts.state.request(request.request_id)
    assert (now.state, now.approvers, now.escalations) == (
        State.ESCALATED, ("ceo@corp.example",), 2,
    )  # fmt: skip
    assert parts.state.mail(mail_id).state == "held"
    assert "approved" not in parts.audit.steps(mail_id)
    assert parts.workflow.publish_pending() == 0


def test_the_mail_moves_only_from_the_state_its_edge_starts_from(tmp_path):
    """Two desks over the same files (two processes' connections): the second decision's
    mail move, read before the first was stored, finds the mail gone from ``held``."""
    parts = build_workflow(tmp_path)
    mail_id, request = hold(parts)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    from inner_agent.outbound.lifecycle import Rejected

    with pytest.raises(InvalidTransition, match="left held"):
        parts.workflow.effects.advance(mail_id, Rejected(request), now_in=MailState.HELD)
    assert parts.state.mail(mail_id).state == "sending"
    assert parts.audit.steps(mail_id).count("rejected") == 0


def test_a_decision_left_half_done_is_finished_before_the_web_starts_again(tmp_path):
    """The web process stored the approval, then was killed before the mail moved: the mail
    is still ``held`` with a decided request, which no timer or page would touch again."""
    parts = build_workflow(tmp_path)
    mail_id, request = hold(parts)
    from inner_agent.outbound.approval import apply

    decided = apply(request, Event.APPROVE, now=parts.clock(), actor="lee@corp.example")
    assert parts.state.save_request(decided, expect=request)  # the first write, alone
    assert parts.state.mail(mail_id).state == "held"
    assert parts.workflow.settle_decisions() == 1
    assert parts.state.mail(mail_id).state == "sending"
    assert parts.audit.steps(mail_id)[-1] == "approved"
    assert [n.kind for n in parts.state.notices() if n.mail_id == mail_id][-1] == (
        "notice:approved"
    )
    assert parts.workflow.publish_pending() == 1
    assert parts.workflow.settle_decisions() == 0


# ------------------------------------------------------------------ two processes


def _workflow_in_a_process(folder: Path, section_fields: dict[str, Any], now: float) -> Any:
    """The workflow a process of its own builds over ``folder``'s files, on a fixed clock."""
    from inner_agent.outbound.config import OutboundSection
    from inner_agent.outbound.directory import Directory
    from inner_agent.outbound.scanning import Scanner
    from inner_agent.outbound.spool import Spool
    from inner_agent.outbound.state import OutboundState
    from inner_agent.outbound.tokens import TokenSigner, load_or_create_secret
    from inner_agent.outbound.workflow import Outlets, Stores, Workflow
    from mailsafe.policy import default_rules
    from tests.support.outbound import RecordingPublisher

    section = OutboundSection.model_validate(section_fields)
    stores = Stores(Spool(section.spool_dir), OutboundState(section.spool_dir / "state.db",
                    clock=lambda: now), Directory(section.directory_db))  # fmt: skip
    audit = AuditLog(folder / "race-audit.db", agent="inner", clock=lambda: now)
    return Workflow(section, stores, Outlets(audit, RecordingPublisher()),
                    scanner=Scanner(default_rules(), None),
                    signer=TokenSigner(load_or_create_secret(section.web.secret_key_file)),
                    clock=lambda: now)  # fmt: skip


def _decide_all(folder: Path, fields: dict[str, Any], now: float, tokens: dict[str, str],
                start: Any, results: Any) -> None:  # fmt: skip
    """The web process: approve every request as soon as the race starts."""
    workflow = _workflow_in_a_process(folder, fields, now)
    start.wait()
    won = 0
    for request_id, token in tokens.items():
        try:
            workflow.decide(request_id, "lee@corp.example", Event.APPROVE, token)
            won += 1
        except InvalidTransition:
            pass
    results.put(("decided", won))


def _expire_all(folder: Path, fields: dict[str, Any], now: float, start: Any,
                results: Any) -> None:  # fmt: skip
    """The agent's worker: its timer, after every deadline, as soon as the race starts."""
    workflow = _workflow_in_a_process(folder, fields, now)
    start.wait()
    results.put(("expired", workflow.tick()))


def test_a_decision_and_the_expiry_race_across_two_processes(tmp_path):
    parts = build_workflow(tmp_path)
    requests = [hold(parts)[1] for _ in range(HELD_MAILS)]
    tokens = {r.request_id: parts.workflow.issue_token(r, "lee@corp.example") for r in requests}
    fields = parts.section.model_dump(mode="json")
    context = multiprocessing.get_context("spawn")  # a fresh interpreter, like the web's
    start, results = context.Barrier(2), context.Queue()
    racers = [
        context.Process(target=_decide_all,
                        args=(tmp_path, fields, parts.clock() + 10, tokens, start, results)),
        context.Process(target=_expire_all,
                        args=(tmp_path, fields, parts.clock() + 2000, start, results)),
    ]  # fmt: skip
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=120)
        assert racer.exitcode == 0
    won = dict(results.get(timeout=5) for _ in racers)
    assert won["decided"] + won["expired"] == HELD_MAILS  # every request, exactly once

    audit = AuditLog(tmp_path / "race-audit.db", agent="inner")
    outcomes = Counter((e.mail_id, e.step) for e in audit.query() if e.step in
                       ("approved", "expired"))  # fmt: skip
    for request in requests:
        stored = parts.state.request(request.request_id)
        mail = parts.state.mail(request.mail_id)
        winner = "approved" if stored.state is State.APPROVED else "expired"
        assert stored.state in (State.APPROVED, State.EXPIRED)
        assert mail.state == ("sending" if winner == "approved" else "expired")
        assert outcomes[(request.mail_id, winner)] == 1
        assert sum(outcomes[(request.mail_id, step)] for step in ("approved", "expired")) == 1
        told = [n.kind for n in parts.state.notices() if n.mail_id == request.mail_id
                and n.kind in ("notice:approved", "notice:expired")]  # fmt: skip
        assert told == [f"notice:{winner}"]
