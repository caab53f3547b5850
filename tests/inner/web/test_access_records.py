"""Access records (접속기록, issue 16.3): sign-in, sign-out, failed sign-ins and views are
recorded with who, when, from where, what and which mail, in the audit store; auditors query
them in the API contract's shape. The optional client allow-list refuses other addresses
before anything else."""

from __future__ import annotations

import pytest

from agentkit.access import ACCESS_STEP, AccessLog, AccessQuery, Action, iso_time, read_access
from agentkit.audit import AuditLog
from inner_agent.web.config import ConsoleSection
from tests.inner.outbound.test_workflow import accept
from tests.support.console import (
    ADMIN,
    APPROVER,
    AUDITOR,
    bearer,
    browser,
    console_site,
    csrf_of,
    sign_in,
)
from tests.support.outbound import rrn_mail

SEOUL = ConsoleSection().zone
CONTRACT = {"time", "account", "address", "action", "mail"}


@pytest.fixture
def site(tmp_path):
    return console_site(tmp_path)


def records_api(site, token: str, query: str = "") -> dict:
    response = browser(site.app).get(f"/api/v1/access-records{query}", headers=bearer(token))
    assert response.status_code == 200, response.text
    return response.json()


def test_sign_in_sign_out_and_failed_sign_ins_are_recorded(site):
    admin = browser(site.app, "10.1.1.30")
    assert sign_in(admin, ADMIN, "wrong-password-x").status_code == 401
    assert sign_in(browser(site.app, "10.1.1.31"), "800101-1234567", "x" * 12).status_code == 401
    site.parts.clock.now += 5
    assert sign_in(admin, ADMIN).status_code == 303
    site.parts.clock.now += 5
    assert admin.post("/logout", data={"csrf": csrf_of(admin.get("/").text)}).status_code == 303
    found = [(r.account, r.address, r.action, r.detail) for r in site.records()]
    assert found[0] == (ADMIN, "10.1.1.30", "signout", "")
    assert found[1] == (ADMIN, "10.1.1.30", "signin", "")
    assert found[2][1:] == ("10.1.1.31", "signin_failed", "wrong")
    assert found[2][0].startswith("?")  # a typed resident number is never recorded as typed
    assert "800101" not in repr(found)
    assert found[3] == (ADMIN, "10.1.1.30", "signin_failed", "wrong")


def test_the_api_answers_in_the_contracts_shape(site):
    sign_in(browser(site.app, "10.1.1.30"), ADMIN)
    body = records_api(site, site.token_for(AUDITOR))
    assert body["total"] == 1
    item = body["items"][0]
    assert CONTRACT <= set(item)
    assert item["account"] == ADMIN
    assert item["address"] == "10.1.1.30"
    assert item["action"] == "signin"
    assert item["mail"] is None
    assert item["time"] == iso_time(site.parts.clock.now, SEOUL)
    assert item["time"].endswith("+09:00")


def test_viewing_a_mail_and_its_image_names_the_mail(site):
    mail_id = accept(site.parts, rrn_mail())
    request = site.parts.state.request_for_mail(mail_id)
    approver = browser(site.app)
    sign_in(approver, APPROVER)
    assert approver.get(f"/requests/{request.request_id}").status_code == 200
    assert approver.get(f"/requests/{request.request_id}/image.png").status_code == 200
    body = records_api(site, site.token_for(ADMIN), f"?mail={mail_id}")
    assert [(i["action"], i["account"], i["mail"]) for i in body["items"]] == [
        ("image_viewed", APPROVER, mail_id),
        ("mail_viewed", APPROVER, mail_id),
    ]
    assert body["total"] == 2


def test_access_records_stay_out_of_the_mails_trail(site):
    """Who read a mail is for auditors: the mail's own events (its trail) do not show it."""
    mail_id = accept(site.parts, rrn_mail())
    request = site.parts.state.request_for_mail(mail_id)
    approver = browser(site.app)
    sign_in(approver, APPROVER)
    approver.get(f"/requests/{request.request_id}")
    store = AuditLog(site.access.path)
    assert store.query(mail_id=mail_id) == []
    assert [e.details["mail"] for e in store.query(step=ACCESS_STEP) if "mail" in e.details] == [
        mail_id
    ]


def test_queries_filter_page_and_count(site):
    log = site.access
    for n in range(7):
        site.parts.clock.now += 60
        log.record(ADMIN if n % 2 else AUDITOR, f"10.0.0.{n}", Action.MAIL_VIEWED,
                   mail_id=f"m{n}")  # fmt: skip
    token = site.token_for(AUDITOR)
    page = records_api(site, token, f"?account={ADMIN}&limit=2")
    assert page["total"] == 3
    assert [i["mail"] for i in page["items"]] == ["m5", "m3"]
    assert (
        records_api(site, token, f"?account={ADMIN}&limit=2&offset=2")["items"][0]["mail"] == "m1"
    )
    since = iso_time(site.parts.clock.now - 120, SEOUL)
    recent = records_api(site, token, f"?action=mail_viewed&since={since.replace('+', '%2B')}")
    assert [i["mail"] for i in recent["items"]] == ["m6", "m5", "m4"]


def test_reading_access_records_is_itself_recorded(site):
    token = site.token_for(AUDITOR)
    records_api(site, token, "?action=signin")
    viewed = site.records(action="records_viewed")
    assert [(r.account, r.detail) for r in viewed] == [
        (AUDITOR, "GET /api/v1/access-records?action=signin")
    ]


def test_read_access_works_read_only_from_another_process_view(tmp_path):
    path = tmp_path / "audit.db"
    writer = AuditLog(path, agent="inner", clock=lambda: 1_800_000_000.0)
    AccessLog(writer, path, SEOUL).record("cli:root", "local", Action.TOKEN_CREATED,
                                          detail="0123456789ab (a@x.kr)")  # fmt: skip
    page = read_access(path, AccessQuery(action="token_created"))
    assert page.total == 1
    assert page.as_json(SEOUL)["items"][0] == {
        "time": "2027-01-15T17:00:00+09:00", "account": "cli:root", "address": "local",
        "action": "token_created", "mail": None, "detail": "0123456789ab (a@x.kr)",
    }  # fmt: skip
    assert read_access(tmp_path / "absent.db", AccessQuery()).total == 0


def test_a_client_outside_the_allow_list_is_refused_before_anything(tmp_path):
    site = console_site(tmp_path, web={"allowed_clients": ["10.1.0.0/16"]})
    inside, outside = browser(site.app, "10.1.1.20"), browser(site.app, "10.2.0.5")
    assert inside.get("/login").status_code == 200
    page = outside.get("/login")
    assert page.status_code == 403
    assert "접속할 수 없습니다" in page.text
    assert "md_pre" not in page.headers.get("set-cookie", "")
    token = site.token_for(ADMIN)
    api = outside.get("/api/v1/whoami", headers=bearer(token))
    assert api.status_code == 403
    assert api.json()["error"] == "client_not_allowed"
    assert inside.get("/api/v1/whoami", headers=bearer(token)).status_code == 200
    mapped = browser(site.app, "::ffff:10.1.1.20")
    assert mapped.get("/login").status_code == 200


def test_the_allow_list_is_off_by_default(site):
    assert browser(site.app, "192.0.2.7").get("/login").status_code == 200
