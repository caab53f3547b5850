"""The approvers' and employees' new pages over plain HTTP (Starlette's TestClient): the
confirmation step, bulk approve / reject with one reason, absence delegation with its dated
window, an administrator deciding on behalf, the sender's own mail and its withdrawal, the
inbound holds addressed to them, and the reason in Korean."""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta

import pytest

from inner_agent.inbound.holds import HoldBook
from inner_agent.outbound.approval import Event
from inner_agent.web.config import ConsoleSection
from inner_agent.web.roles import Role
from tests.inner.outbound.test_web import client_for, csrf_of, sign_in, token_of
from tests.inner.outbound.test_workflow import accept
from tests.support.outbound import PASSWORDS, approval_app, build_workflow, rrn_mail

DAY_S = 86_400.0
KIM_PASSWORD = "kim-password-5"
ROOT_PASSWORD = "root-password-6"


@pytest.fixture
def site(tmp_path, monkeypatch):
    parts = build_workflow(tmp_path, approval={"remind_after_s": 5 * DAY_S,
                                               "expire_after_s": 10 * DAY_S})  # fmt: skip
    parts.directory.set_password("kim@corp.example", KIM_PASSWORD)
    parts.directory.accounts.add("root@corp.example", Role.ADMIN, ROOT_PASSWORD)
    monkeypatch.setitem(PASSWORDS, "kim@corp.example", KIM_PASSWORD)
    monkeypatch.setitem(PASSWORDS, "root@corp.example", ROOT_PASSWORD)
    return parts, approval_app(parts)


def signed_in(app, email: str):
    client = client_for(app)
    sign_in(client, email, next_path="/requests" if email != "kim@corp.example" else "/my/sent")
    return client


def held(parts, count: int) -> list[str]:
    return [accept(parts, rrn_mail()) for _ in range(count)]


def bulk_form(listing: str, request_ids: list[str], action: str, **extra: str) -> list:
    fields = [("csrf", csrf_of(listing)), ("action", action)]
    for request_id in request_ids:
        token = re.search(rf'name="token-{request_id}" value="([^"]+)"', listing).group(1)
        fields += [("pick", request_id), (f"token-{request_id}", token)]
    return fields + list(extra.items())


def post_fields(client, url: str, fields: list):
    from urllib.parse import urlencode

    return client.post(url, content=urlencode(fields),
                       headers={"content-type": "application/x-www-form-urlencoded"})  # fmt: skip


# ---------------------------------------------------------------------- confirm, Korean


def test_approving_one_request_asks_for_confirmation_first(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request = parts.state.request_for_mail(mail_id)
    lee = signed_in(app, "lee@corp.example")
    detail = lee.get(f"/requests/{request.request_id}").text
    assert "개인정보 규칙: 주민등록번호 2건" in detail
    assert "personal-data finding" not in detail  # the policy's own words only for admins
    assert f'action="/requests/{request.request_id}/confirm"' in detail
    confirm = lee.post(f"/requests/{request.request_id}/confirm",
                       data={"csrf": csrf_of(detail), "token": token_of(detail)})  # fmt: skip
    assert confirm.status_code == 200
    assert 'id="confirm"' in confirm.text
    assert "외부로 발송" in confirm.text
    assert parts.state.mail(mail_id).state == "held"  # the confirmation page changes nothing
    done = lee.post(f"/requests/{request.request_id}/decide", data={
        "csrf": csrf_of(confirm.text), "token": token_of(confirm.text), "action": "approve",
        "confirmed": "yes"})  # fmt: skip
    assert done.status_code == 303
    assert parts.state.mail(mail_id).state == "sending"


def test_the_confirmation_page_needs_the_csrf_token(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request = parts.state.request_for_mail(mail_id)
    lee = signed_in(app, "lee@corp.example")
    detail = lee.get(f"/requests/{request.request_id}").text
    refused = lee.post(f"/requests/{request.request_id}/confirm",
                       data={"csrf": "0" * 64, "token": token_of(detail)})  # fmt: skip
    assert refused.status_code == 403


# -------------------------------------------------------------------------------- bulk


def test_bulk_approve_of_three_confirms_then_publishes_each_once(site):
    parts, app = site
    mail_ids = held(parts, 3)
    request_ids = [parts.state.request_for_mail(m).request_id for m in mail_ids]
    lee = signed_in(app, "lee@corp.example")
    listing = lee.get("/requests").text
    first = post_fields(lee, "/requests/bulk", bulk_form(listing, request_ids, "approve"))
    assert first.status_code == 200
    assert "3건의 메일이" in first.text
    assert all(parts.state.mail(m).state == "held" for m in mail_ids)  # not before confirming

    fields = [(k, v) for k, v in re.findall(r'name="([^"]+)" value="([^"]*)"', first.text)]
    done = post_fields(lee, "/requests/bulk", fields)
    assert done.status_code == 303
    assert done.headers["location"] == "/requests?done=bulk-approved&n=3"
    assert "3건을 승인했습니다" in lee.get(done.headers["location"]).text
    assert [parts.state.mail(m).state for m in mail_ids] == ["sending"] * 3
    assert parts.workflow.publish_pending() == 3
    assert parts.workflow.publish_pending() == 0
    assert len(parts.publisher.published) == 3
    assert [parts.audit.steps(m).count("approved") for m in mail_ids] == [1, 1, 1]
    # the same confirmed form again decides nothing twice
    again = post_fields(lee, "/requests/bulk", fields)
    assert again.status_code == 409
    assert len(parts.publisher.published) == 3


@pytest.mark.parametrize("count", ["%D9%A3", "%C2%B2", "1" * 40])
def test_a_forged_bulk_count_shows_no_success_box(site, count):
    """The box's count is one we write (ASCII, at most MAX_BULK's digits): not "٣", "²" or a
    number as long as a link can carry."""
    _parts, app = site
    page = signed_in(app, "lee@corp.example").get(f"/requests?done=bulk-approved&n={count}")
    assert page.status_code == 200
    assert "건을 승인했습니다" not in page.text


def test_bulk_reject_takes_one_reason_for_all(site):
    parts, app = site
    mail_ids = held(parts, 2)
    request_ids = [parts.state.request_for_mail(m).request_id for m in mail_ids]
    park = signed_in(app, "park@corp.example")
    listing = park.get("/requests").text
    no_reason = post_fields(park, "/requests/bulk", bulk_form(listing, request_ids, "reject"))
    assert no_reason.status_code == 400
    assert all(parts.state.mail(m).state == "held" for m in mail_ids)
    done = post_fields(park, "/requests/bulk",
                       bulk_form(listing, request_ids, "reject", reason="주민번호 삭제 후 재발송"))  # fmt: skip
    assert done.status_code == 303
    for request_id in request_ids:
        stored = parts.state.request(request_id)
        assert (stored.state, stored.reason) == ("rejected", "주민번호 삭제 후 재발송")


def test_a_bulk_pick_decided_meanwhile_is_named_and_the_rest_decided(site):
    parts, app = site
    mail_ids = held(parts, 2)
    request_ids = [parts.state.request_for_mail(m).request_id for m in mail_ids]
    lee, park = signed_in(app, "lee@corp.example"), signed_in(app, "park@corp.example")
    listing = lee.get("/requests").text
    park_detail = park.get(f"/requests/{request_ids[0]}").text
    park.post(f"/requests/{request_ids[0]}/decide", data={
        "csrf": csrf_of(park_detail), "token": token_of(park_detail), "action": "reject",
        "reason": "먼저"})  # fmt: skip
    result = post_fields(lee, "/requests/bulk",
                         bulk_form(listing, request_ids, "reject", reason="나중"))  # fmt: skip
    assert result.status_code == 409
    assert "이미 결정되었습니다" in result.text
    assert parts.state.request(request_ids[0]).reason == "먼저"
    assert parts.state.request(request_ids[1]).reason == "나중"


def test_bulk_needs_the_csrf_token(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request_id = parts.state.request_for_mail(mail_id).request_id
    lee = signed_in(app, "lee@corp.example")
    fields = bulk_form(lee.get("/requests").text, [request_id], "reject", reason="x")
    fields[0] = ("csrf", "0" * 64)
    assert post_fields(lee, "/requests/bulk", fields).status_code == 403
    assert parts.state.mail(mail_id).state == "held"


# ----------------------------------------------------------------------------- absence


def days_from_now(parts, first: int, last: int) -> tuple[str, str]:
    today = datetime.fromtimestamp(parts.clock(), ConsoleSection().zone).date()
    return (str(today + timedelta(days=first)), str(today + timedelta(days=last)))


def test_a_delegate_decides_in_the_window_and_not_after(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request_id = parts.state.request_for_mail(mail_id).request_id
    lee = signed_in(app, "lee@corp.example")
    page = lee.get("/absence").text
    first, last = days_from_now(parts, 0, 1)
    saved = lee.post("/absence", data={"csrf": csrf_of(page), "delegate": "jung@corp.example",
                                       "first": first, "last": last})  # fmt: skip
    assert saved.status_code == 303
    assert "jung@corp.example" in lee.get("/absence").text

    jung = signed_in(app, "jung@corp.example")
    assert request_id in jung.get("/requests").text
    detail = jung.get(f"/requests/{request_id}").text
    assert "jung@corp.example for lee@corp.example" in detail
    parts.clock.now += 2 * DAY_S  # the day after the last day (the session idled out too)
    jung = signed_in(app, "jung@corp.example")
    assert request_id not in jung.get("/requests").text
    assert jung.get(f"/requests/{request_id}").status_code == 404
    csrf = csrf_of(jung.get("/absence").text)
    late = jung.post(f"/requests/{request_id}/decide", data={
        "csrf": csrf, "token": token_of(detail), "action": "reject", "reason": "x"})  # fmt: skip
    assert late.status_code == 403
    assert parts.state.mail(mail_id).state == "held"


def test_an_absence_in_the_past_or_reversed_is_refused_beside_its_field(site):
    parts, app = site
    lee = signed_in(app, "lee@corp.example")
    page = lee.get("/absence").text
    first, last = days_from_now(parts, 3, 1)
    wrong = lee.post("/absence", data={"csrf": csrf_of(page), "delegate": "jung@corp.example",
                                       "first": first, "last": last})  # fmt: skip
    assert wrong.status_code == 400
    assert "마지막 날이 첫날보다 앞섭니다" in wrong.text
    assert parts.workflow.desk.absences.of("lee@corp.example", parts.clock()) == []
    assert date.fromisoformat(first) > date.fromisoformat(last)


# ------------------------------------------------------------------------ administrator


def test_an_administrator_decides_on_behalf_and_it_is_recorded(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request_id = parts.state.request_for_mail(mail_id).request_id
    root = signed_in(app, "root@corp.example")
    assert request_id in root.get("/requests").text
    detail = root.get(f"/requests/{request_id}").text
    assert "관리자로서" in detail
    assert "personal-data finding" in detail  # the policy's own words, for the administrator
    done = root.post(f"/requests/{request_id}/decide", data={
        "csrf": csrf_of(detail), "token": token_of(detail), "action": "reject",
        "reason": "외부 반출 금지"})  # fmt: skip
    assert done.status_code == 303
    (fields,) = [f for m, s, f in parts.audit.events if m == mail_id and s == "rejected"]
    assert fields["acted_by"] == "root@corp.example"
    assert fields["capacity"] == "admin"
    assert fields["by"] == "lee@corp.example"


# ------------------------------------------------------------------------ the employee


def test_the_sender_sees_whom_it_waits_for_and_withdraws_it(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    kim = signed_in(app, "kim@corp.example")
    page = kim.get("/my/sent").text
    assert "승인 대기" in page
    assert "lee@corp.example, park@corp.example" in page
    assert "개인정보 규칙: 주민등록번호 2건" in page
    lee = signed_in(app, "lee@corp.example")
    lee_page = lee.get("/my/sent").text
    assert mail_id not in lee_page  # lee sent nothing
    stolen = lee.post(f"/my/sent/{mail_id}/withdraw", data={"csrf": csrf_of(lee_page)})
    assert stolen.status_code == 409
    forged = kim.post(f"/my/sent/{mail_id}/withdraw", data={"csrf": "0" * 64})
    assert forged.status_code == 403
    assert parts.state.mail(mail_id).state == "held"

    done = kim.post(f"/my/sent/{mail_id}/withdraw", data={"csrf": csrf_of(page)})
    assert done.status_code == 303
    after = kim.get(done.headers["location"]).text
    assert "발송 취소 (발송 안 됨)" in after
    assert f'id="withdraw-{mail_id}"' not in after
    assert parts.state.mail(mail_id).state == "withdrawn"
    assert parts.workflow.publish_pending() == 0
    assert parts.publisher.published == []


def test_the_rejection_reason_is_shown_to_the_sender(site):
    parts, app = site
    (mail_id,) = held(parts, 1)
    request_id = parts.state.request_for_mail(mail_id).request_id
    lee = signed_in(app, "lee@corp.example")
    detail = lee.get(f"/requests/{request_id}").text
    lee.post(f"/requests/{request_id}/decide", data={
        "csrf": csrf_of(detail), "token": token_of(detail), "action": "reject",
        "reason": "주민번호를 지워 주세요"})  # fmt: skip
    page = signed_in(app, "kim@corp.example").get("/my/sent").text
    assert "반려됨" in page
    assert "주민번호를 지워 주세요" in page


def test_inbound_holds_addressed_to_the_employee(site):
    parts, app = site
    book = HoldBook(parts.section.spool_dir.parent / "inner" / "inbound-holds.db")
    for mail_id, rcpt in (("in-1", "kim@corp.example"), ("in-2", "lee@corp.example")):
        book.add(mail_id, rule="exe", recipients=[rcpt], approvers=["jung@corp.example"],
                 approver_kind="security_officer", policy_version=1,
                 held_until="2027-01-20T00:00:00+00:00", sender="x@outside.example",
                 subject=f"보류 {mail_id}")  # fmt: skip
    book.close()
    page = signed_in(app, "kim@corp.example").get("/my/held").text
    assert "보류 in-1" in page
    assert "보류 in-2" not in page
    assert "보류 — 승인 대기" in page
    assert "jung@corp.example" in page


def test_a_mail_the_outer_agent_delivered_reads_delivered(site):
    from agentkit.audit import AuditLog

    parts, app = site
    (mail_id,) = held(parts, 1)
    request = parts.state.request_for_mail(mail_id)
    token = parts.workflow.issue_token(request, "lee@corp.example")
    parts.workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
    parts.workflow.publish_pending()
    kim = signed_in(app, "kim@corp.example")
    assert "발송됨" in kim.get("/my/sent").text
    # the outer agent's status report brought its "delivered" event into the audit store
    audit = AuditLog(parts.section.spool_dir.parent / "audit.db", agent="outer")
    audit.record(mail_id, "delivered", relay="mx.partner.example")
    audit.close()
    assert "배달됨" in kim.get("/my/sent").text


def test_an_approver_ends_their_absence_early_and_only_their_own(site):
    parts, app = site
    lee = signed_in(app, "lee@corp.example")
    page = lee.get("/absence").text
    first, last = days_from_now(parts, 0, 5)
    lee.post("/absence", data={"csrf": csrf_of(page), "delegate": "jung@corp.example",
                               "first": first, "last": last})  # fmt: skip
    (absence,) = parts.workflow.desk.absences.of("lee@corp.example", parts.clock())
    park = signed_in(app, "park@corp.example")
    park_csrf = csrf_of(park.get("/absence").text)
    park.post(f"/absence/{absence.id}/cancel", data={"csrf": park_csrf})
    assert parts.workflow.desk.absences.of("lee@corp.example", parts.clock()) == [absence]
    assert lee.post("/absence/x0/cancel", data={"csrf": csrf_of(page)}).status_code == 303
    done = lee.post(f"/absence/{absence.id}/cancel", data={"csrf": csrf_of(page)})
    assert done.headers["location"] == "/absence?done=cancelled"
    assert parts.workflow.desk.absences.of("lee@corp.example", parts.clock()) == []
    assert parts.workflow.desk.absences.covering("jung@corp.example", parts.clock()) == []
