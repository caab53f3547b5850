"""The employee's and the approvers' new powers on the desk, with a fake clock and no
network: a sender withdraws a held mail (never sent, approvers told); a delegate decides in
an absent approver's name during the absence window and not after it; an administrator
decides on behalf; every such decision is recorded under the approver's name and says who."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from inner_agent.outbound.absences import window
from inner_agent.outbound.approval import Event, State
from inner_agent.outbound.errors import (
    AbsenceRefused,
    InvalidTransition,
    TokenRefused,
    WithdrawRefused,
)
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from tests.support.outbound import build_workflow, plain_mail, rrn_mail

DAY_S = 86_400.0


def accept(parts, data: bytes, sender="kim@corp.example") -> str:
    mail = SpooledMail(new_mail_id(), sender, ("partner@example.com",), parts.clock(),
                       "127.0.0.1", "mx")  # fmt: skip
    parts.spool.store(mail, data)
    parts.workflow.accepted(mail)
    parts.workflow.process_received()
    return mail.mail_id


def audited(parts, mail_id: str, step: str) -> dict:
    (fields,) = [f for m, s, f in parts.audit.events if m == mail_id and s == step]
    return fields


@pytest.fixture
def parts(tmp_path):
    # Requests (and their tokens) live ten days, so an absence can end while they wait.
    return build_workflow(tmp_path, approval={"remind_after_s": 5 * DAY_S,
                                              "expire_after_s": 10 * DAY_S})  # fmt: skip


@pytest.fixture
def desk(parts):
    return parts.workflow.desk


# ------------------------------------------------------------------------------- withdraw


def test_the_sender_withdraws_a_held_mail_and_it_is_never_sent(parts, desk):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    lee_token = parts.workflow.issue_token(request, "lee@corp.example")

    withdrawn = desk.withdraw(mail_id, "KIM@corp.example")

    assert withdrawn.state is State.WITHDRAWN
    assert parts.state.mail(mail_id).state == "withdrawn"
    assert parts.state.request(request.request_id).state is State.WITHDRAWN
    assert audited(parts, mail_id, "withdrawn") == {
        "by": "kim@corp.example", "request_id": request.request_id,
        "approvers": ["lee@corp.example", "park@corp.example"],
    }  # fmt: skip
    told = sorted(n.rcpt for n in parts.state.notices() if n.kind == "approver:withdrawn")
    assert told == ["lee@corp.example", "park@corp.example"]
    assert [n.rcpt for n in parts.state.notices() if n.kind == "notice:withdrawn"] == [
        "kim@corp.example"
    ]
    with pytest.raises(FileNotFoundError):
        parts.spool.load(mail_id)  # the spool copy is gone: nothing left to send
    # the approver's link no longer decides anything, and nothing is ever published
    with pytest.raises(InvalidTransition, match="withdrawn cannot take approve"):
        desk.decide(request.request_id, "lee@corp.example", Event.APPROVE, lee_token)
    assert parts.workflow.publish_pending() == 0
    assert parts.publisher.published == []
    assert desk.pending_for("lee@corp.example") == []


def test_only_the_sender_withdraws_and_only_while_undecided(parts, desk):
    mail_id = accept(parts, rrn_mail())
    with pytest.raises(WithdrawRefused, match="not one lee@corp.example sent"):
        desk.withdraw(mail_id, "lee@corp.example")
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    desk.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    with pytest.raises(WithdrawRefused, match="not waiting for approval"):
        desk.withdraw(mail_id, "kim@corp.example")
    allowed = accept(parts, plain_mail())
    with pytest.raises(WithdrawRefused, match="not waiting"):
        desk.withdraw(allowed, "kim@corp.example")


def test_a_withdrawal_racing_a_decision_loses_cleanly(parts, desk):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    decided = parts.state.request(request.request_id)
    desk.withdraw(mail_id, "kim@corp.example")
    # the approver read the request before the withdrawal and stores after it
    token = parts.workflow.issue_token(decided, "lee@corp.example")
    with pytest.raises((InvalidTransition, TokenRefused)):
        desk.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    assert parts.state.mail(mail_id).state == "withdrawn"


def test_the_sender_sees_their_own_mails_only(parts, desk):
    mine = accept(parts, rrn_mail())
    accept(parts, rrn_mail(sender="park@corp.example"), sender="park@corp.example")
    listed = desk.sent_by("kim@corp.example")
    assert [row.mail_id for row, _request in listed] == [mine]
    assert listed[0][1].approvers == ("lee@corp.example", "park@corp.example")


# ------------------------------------------------------------------ absence delegation


def absent_lee(parts, desk, days: int = 8) -> None:
    """lee away from the clock's day for ``days`` days; jung (no approver) decides."""
    today = datetime.fromtimestamp(parts.clock(), UTC).date()
    last = date.fromordinal(today.toordinal() + days - 1)
    desk.absences.add("lee@corp.example", "jung@corp.example", window(today, last, UTC),
                      "lee@corp.example")  # fmt: skip


def test_a_delegate_decides_during_the_absence_in_the_approvers_name(parts, desk):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    assert desk.pending_for("jung@corp.example") == []  # before the absence: nothing
    absent_lee(parts, desk)
    assert [r.request_id for r, _ in desk.pending_for("jung@corp.example")] == [request.request_id]
    view = desk.view(request.request_id, "jung@corp.example")
    assert view.standing.approver == "lee@corp.example"
    assert view.standing.capacity == "delegate"

    decided = desk.decide(request.request_id, "jung@corp.example", Event.APPROVE, view.token)

    assert decided.request.decided_by == "lee@corp.example"  # the history stays lee's
    assert parts.state.mail(mail_id).decided_by == "lee@corp.example"
    assert audited(parts, mail_id, "approved") == {
        "by": "lee@corp.example", "request_id": request.request_id,
        "acted_by": "jung@corp.example", "capacity": "delegate",
        "on_behalf": "jung@corp.example for lee@corp.example",
    }  # fmt: skip
    parts.workflow.publish_pending()
    assert len(parts.publisher.published) == 1


def test_a_delegate_cannot_decide_after_the_absence_ends(parts, desk):
    absent_lee(parts, desk, days=2)
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    token = desk.view(request.request_id, "jung@corp.example").token
    assert token is not None
    parts.clock.now += 2 * DAY_S  # past the midnight after the last day

    assert desk.pending_for("jung@corp.example") == []
    assert desk.view(request.request_id, "jung@corp.example") is None
    with pytest.raises(TokenRefused) as refused:
        desk.decide(request.request_id, "jung@corp.example", Event.APPROVE, token)
    assert refused.value.reason == "wrong-approver"
    assert parts.state.mail(mail_id).state == "held"
    # lee, back, still decides as usual
    lee_token = desk.view(request.request_id, "lee@corp.example").token
    desk.decide(request.request_id, "lee@corp.example", Event.REJECT, lee_token, "다시")
    assert parts.state.mail(mail_id).state == "rejected"


def test_a_delegate_cannot_decide_before_the_absence_starts(parts, desk):
    today = datetime.fromtimestamp(parts.clock(), UTC).date()
    later = (date.fromordinal(today.toordinal() + 3), date.fromordinal(today.toordinal() + 5))
    desk.absences.add("lee@corp.example", "jung@corp.example", window(*later, UTC),
                      "lee@corp.example")  # fmt: skip
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    assert desk.view(request.request_id, "jung@corp.example") is None
    parts.clock.now += 3 * DAY_S
    assert desk.view(request.request_id, "jung@corp.example").token is not None


def test_absences_refuse_nonsense():
    today = date(2026, 12, 12)
    with pytest.raises(AbsenceRefused, match="앞섭니다"):
        window(today, date(2026, 12, 11), UTC)
    starts, ends = window(today, date(2026, 12, 19), UTC)
    assert ends - starts == 8 * DAY_S  # 12-19 Dec inclusive


def test_a_delegate_is_not_oneself_and_the_window_not_over(parts, desk):
    span = (parts.clock() - 10 * DAY_S, parts.clock() - DAY_S)
    with pytest.raises(AbsenceRefused, match="자기 자신"):
        desk.absences.add("lee@corp.example", "LEE@corp.example", span, "lee@corp.example")
    with pytest.raises(AbsenceRefused, match="이미 지난"):
        desk.absences.add("lee@corp.example", "jung@corp.example", span, "lee@corp.example")


# ------------------------------------------------------------------------ administrator


def test_an_administrator_decides_on_behalf_recorded_as_such(parts, desk):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    assert desk.view(request.request_id, "root@corp.example") is None  # not without the role
    view = desk.view(request.request_id, "root@corp.example", admin=True)
    assert view.standing.capacity == "admin"
    desk.decide(request.request_id, "root@corp.example", Event.REJECT, view.token, "보안 점검",
                admin=True)  # fmt: skip
    fields = audited(parts, mail_id, "rejected")
    assert fields["by"] == "lee@corp.example"
    assert fields["acted_by"] == "root@corp.example"
    assert fields["capacity"] == "admin"
    assert parts.state.mail(mail_id).state == "rejected"


def test_a_decision_in_someone_elses_name_finished_after_a_crash_still_says_who_acted(
    parts, desk, monkeypatch
):
    """The web process stored an administrator's rejection and died before the mail moved;
    the agent finishes it at start, and the audit still names the administrator."""
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    view = desk.view(request.request_id, "root@corp.example", admin=True)

    def killed(*_args, **_kwargs):
        raise SystemExit("the web process dies between its two writes")

    with monkeypatch.context() as patched:
        patched.setattr(desk.effects, "advance", killed)
        with pytest.raises(SystemExit):
            desk.decide(request.request_id, "root@corp.example", Event.REJECT, view.token,
                        "보안 점검", admin=True)  # fmt: skip
    assert parts.state.mail(mail_id).state == "held"
    assert parts.workflow.settle_decisions() == 1
    fields = audited(parts, mail_id, "rejected")
    assert fields["by"] == "lee@corp.example"
    assert fields["acted_by"] == "root@corp.example"
    assert fields["capacity"] == "admin"
    assert parts.state.mail(mail_id).state == "rejected"


def test_without_the_role_a_token_of_ones_own_does_not_decide(parts, desk):
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "root@corp.example")
    with pytest.raises(TokenRefused):
        desk.decide(request.request_id, "root@corp.example", Event.APPROVE, token)
    assert parts.state.mail(mail_id).state == "held"


def test_nobody_decides_their_own_mail_in_someone_elses_name(parts, desk):
    """Issue 15.5 holds for delegates and administrators too: kim, named lee's delegate, or an
    administrator, cannot approve a mail kim sent."""
    today = datetime.fromtimestamp(parts.clock(), UTC).date()
    desk.absences.add("lee@corp.example", "kim@corp.example", window(today, today, UTC),
                      "lee@corp.example")  # fmt: skip
    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    assert desk.pending_for("kim@corp.example") == []
    assert desk.view(request.request_id, "kim@corp.example", admin=True) is None
    token = parts.workflow.issue_token(request, "kim@corp.example")
    with pytest.raises(TokenRefused):
        desk.decide(request.request_id, "kim@corp.example", Event.APPROVE, token, admin=True)
    assert parts.state.mail(mail_id).state == "held"
    # the same delegation works for someone else's mail
    other = accept(parts, rrn_mail(sender="park@corp.example"), sender="park@corp.example")
    assert [m.mail_id for _r, m in desk.pending_for("kim@corp.example")] == [other]


def test_a_withdrawal_stored_but_not_carried_out_is_finished_at_start(parts, desk):
    """The web process died between storing the withdrawn request and moving the mail."""
    from inner_agent.outbound.approval import apply

    mail_id = accept(parts, rrn_mail())
    request = parts.state.request_for_mail(mail_id)
    withdrawn = apply(request, Event.WITHDRAW, now=parts.clock(), actor="kim@corp.example")
    assert parts.state.save_request(withdrawn, expect=request)
    assert parts.state.mail(mail_id).state == "held"
    assert parts.workflow.settle_decisions() == 1
    assert parts.state.mail(mail_id).state == "withdrawn"
    assert parts.workflow.publish_pending() == 0
    assert parts.publisher.published == []
