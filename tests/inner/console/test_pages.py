"""The console's pages through the listener's app (issue 16.4-16.6): what each role sees, a
mail's trail and findings, scope and tampered ids, script in mail fields shown as text,
downloads (Korean headers, BOM, CSRF, access records), the dashboard's outer side."""

from __future__ import annotations

import io
import re
from dataclasses import replace

import pytest
from openpyxl import load_workbook

from inner_agent.console.pages import picture_media_type
from inner_agent.reports import ReportStore
from tests.agentkit.control_golden import REPORT
from tests.inner.console.conftest import (
    PNG,
    SHEET_PNG,
    XSS_DISPLAY,
    XSS_DRAWN,
    XSS_SUBJECT,
    XSS_WITHHELD,
)
from tests.support.console import ADMIN, AUDITOR, SECURITY, browser, console_site, csrf_of, sign_in
from tests.support.outbound import RRN, RRN_MASKED

ROLE_REFUSED = "권한이 없습니다"


def records(console, **query):
    return console.site.records(**query)


# ----------------------------------------------------------------------------- roles


def test_administrators_and_auditors_see_the_whole_dashboard(console):
    for who in ("admin", "auditor"):
        page = console.page(who, "/")
        assert page.status_code == 200
        for part in (
            'id="alarms"',
            'id="mail-counts"',
            'id="link-in"',
            'id="queue-injection"',
            'id="host-inner"',
            'id="host-outer"',
            'id="outer-report"',
        ):
            assert part in page.text, (who, part)
        assert 'href="/access"' in page.text


def test_a_security_officer_sees_its_part_and_its_mail_only(console):
    home = console.page("security", "/")
    assert home.status_code == 200
    assert 'id="mail-counts"' in home.text
    assert 'id="host-inner"' not in home.text
    assert 'id="alarms"' not in home.text
    assert 'data-outcome="delivered"' not in home.text
    assert 'data-outcome="held"' in home.text
    listed = console.page("security", "/mail").text
    assert console.ids["held_out"] in listed
    assert console.ids["quarantined_in"] in listed
    assert console.ids["plain_in"] not in listed
    assert console.ids["sent_out"] not in listed
    for path in ("/stats", "/access"):
        refused = console.page("security", path)
        assert refused.status_code == 403
        assert ROLE_REFUSED in refused.text


def test_approvers_go_to_their_requests_and_may_not_open_the_console(console):
    assert console.page("approver", "/").headers["location"] == "/requests"
    for path in ("/mail", "/stats", "/access", f"/mail/in/{console.ids['plain_in']}"):
        refused = console.page("approver", path)
        assert refused.status_code == 403, path
        assert ROLE_REFUSED in refused.text


# ----------------------------------------------------------------------------- mail


def test_an_administrator_finds_a_mail_by_subject_and_opens_its_trail(console):
    found = console.page("admin", "/mail", params={"subject": "가나다"})
    assert found.status_code == 200
    links = re.findall(r'class="subject" href="([^"]+)"', found.text)
    assert links == [f"/mail/in/{console.ids['plain_in']}"]
    detail = console.page("admin", links[0])
    assert detail.status_code == 200
    steps = re.findall(r'<tr data-step="([a-z_]+)">', detail.text)
    assert steps == ["received", "published", "received_inside", "injected"]
    assert "outer" in detail.text
    assert "inner" in detail.text
    viewed = records(console, account=ADMIN, action="mail_viewed", mail=console.ids["plain_in"])
    assert [r.detail for r in viewed] == ["console"]


def test_the_trail_reads_as_sentences_with_the_values_it_names(console):
    held = console.page("admin", f"/mail/out/{console.ids['held_out']}").text
    assert "규칙 <b>rrn-hold</b>에 따라 승인 대기로 보류했습니다." in held
    assert "<b>kim@corp.example</b>의 발신 메일을 받았습니다" in held
    quarantined = console.page("admin", f"/mail/in/{console.ids['quarantined_in']}").text
    assert "격리했습니다. 사유: <b>변환 결과가 올바르지 않습니다 (bad_package)</b>" in quarantined
    assert "<code>reason</code>=bad_package" not in quarantined  # said, not repeated
    plain = console.page("admin", f"/mail/in/{console.ids['plain_in']}").text
    line = re.search(r'<tr data-step="injected">.*?</tr>', plain, re.S)
    assert line is not None
    assert "<b>1</b>번째 알림을 내부 메일 서버에 넘겼습니다 (응답: <b>250 2.0.0 Ok</b>)." in line[0]


def test_a_value_in_a_trail_sentence_is_escaped_and_unknown_keys_and_steps_stay(tmp_path):
    site = console_site(tmp_path)
    mail_id = "9" * 32
    now = site.parts.clock.now
    site.mails.write([
        (now - 60, "inner", mail_id, "accepted_outbound", {"mail_from": "kim@corp.example",
         "rcpts": ["x@example.com"], "client": "10.1.1.9", "rcpt_count": 1}),
        (now - 59, "inner", mail_id, "blocked", {"rule": "card", "explanation": XSS_SUBJECT,
         "novel_key": "kept"}),
        (now - 58, "inner", mail_id, "sender_notified", {"outcome": "blocked"}),
    ])  # fmt: skip
    admin = browser(site.app)
    assert sign_in(admin, ADMIN).status_code == 303
    page = admin.get(f"/mail/out/{mail_id}").text
    assert "<script>" not in page
    assert "규칙 <b>card</b>에 따라 차단했습니다: <b>&lt;script&gt;" in page
    assert "<code>novel_key</code>=kept" in page
    assert "보낸 사람에게 알렸습니다: <b>차단</b>" in page


def test_a_name_in_the_mail_search_finds_the_person_with_department_and_address(tmp_path):
    site = console_site(tmp_path)
    data = site.listener.console
    data.places = replace(data.places, directory_db=site.parts.section.directory_db)
    kims = site.mails.outbound("7" * 32, subject="김철수의 메일", sender="kim@corp.example")
    site.mails.outbound("8" * 32, subject="다른 사람의 메일", sender="park@corp.example")
    admin = browser(site.app)
    assert sign_in(admin, ADMIN).status_code == 303
    page = admin.get("/mail", params={"sender": "김철", "direction": "out"}).text
    people = re.findall(r'<li class="person">(.*?)</li>', page, re.S)
    assert len(people) == 1
    shown = re.sub(r"<[^>]+>", "", people[0])
    assert shown == "김철수 · 영업부 · kim@corp.example — 이 사람의 메일"
    link = re.search(r'class="person-mail" href="([^"]+)"', people[0])
    assert link is not None
    assert link[1].replace("&amp;", "&") == "/mail?address=kim%40corp.example&direction=out"
    listed = admin.get(link[1].replace("&amp;", "&")).text
    assert f"/mail/out/{kims}" in listed
    assert "8" * 32 not in listed
    assert 'id="people-found"' not in admin.get("/mail", params={"sender": "kim@"}).text


def test_findings_are_masked_and_the_picture_is_an_access_record(console):
    mail_id = console.ids["held_out"]
    detail = console.page("security", f"/mail/out/{mail_id}")
    assert detail.status_code == 200
    assert RRN_MASKED in detail.text
    assert RRN not in detail.text
    assert "주민등록번호" in detail.text
    assert "attachment:명단.xlsx" in detail.text
    assert records(console, account=SECURITY, action="findings_viewed", mail=mail_id)
    assert not records(console, account=SECURITY, action="image_viewed", mail=mail_id)
    picture = console.page("security", f"/mail/out/{mail_id}/picture.png")
    assert picture.status_code == 200
    assert picture.headers["content-type"] == "image/png"
    assert picture.content.startswith(b"\x89PNG")
    assert records(console, account=SECURITY, action="image_viewed", mail=mail_id)
    assert (
        console.page("admin", f"/mail/in/{console.ids['plain_in']}/picture.png").status_code == 404
    )


def test_every_page_of_the_picture_is_listed_and_served_one_at_a_time(console):
    mail_id = console.ids["held_out"]
    detail = console.page("security", f"/mail/out/{mail_id}")
    pages = re.findall(r'<li><a href="([^"]+)">([^<]+)</a></li>', detail.text)
    assert [title for _, title in pages] == ["본문", "첨부 명단.xlsx 1쪽"]
    assert pages[1][0] == f"/mail/out/{mail_id}/picture.png?page=2"
    second = console.page("security", pages[1][0])
    assert second.status_code == 200
    assert second.content == SHEET_PNG
    assert console.page("security", pages[0][0]).content == PNG
    viewed = records(console, account=SECURITY, action="image_viewed", mail=mail_id)
    assert "console, page 2" in [r.detail for r in viewed]
    for wrong in ("3", "0", "-1", "x", "١", "99999"):
        missing = console.page("security", f"/mail/out/{mail_id}/picture.png?page={wrong}")
        assert missing.status_code == 404, wrong


def test_a_mail_outside_the_role_and_a_tampered_id_are_not_found_alike(console):
    plain = console.ids["plain_in"]
    outside = console.page("security", f"/mail/in/{plain}")
    tampered = console.page("security", f"/mail/out/{console.ids['held_out'][:-1]}0")
    wrong_way = console.page("admin", f"/mail/out/{plain}")
    for response in (outside, tampered, wrong_way):
        assert response.status_code == 404
        assert "메일을 찾을 수 없거나 볼 권한이 없습니다" in response.text
    assert plain not in outside.text
    denied = records(console, account=SECURITY, action="denied", mail=plain)
    assert denied
    assert not records(console, account=SECURITY, action="mail_viewed", mail=plain)
    assert console.page("security", f"/mail/in/{plain}/picture.png").status_code == 404
    assert console.page("admin", "/mail/sideways/" + plain).status_code == 404


def test_script_in_subject_file_names_and_display_names_is_shown_as_text(console):
    mail_id = console.ids["xss_in"]
    for path in ("/mail", f"/mail/in/{mail_id}", "/mail?q=script"):
        page = console.page("admin", path).text
        for raw in (XSS_SUBJECT, XSS_DISPLAY, XSS_WITHHELD, XSS_DRAWN, "<script", "<b id=injected"):
            assert raw not in page, (path, raw)
        assert "&lt;script&gt;alert(&#34;subject&#34;)&lt;/script&gt;" in page
    detail = console.page("admin", f"/mail/in/{mail_id}").text
    assert "&lt;svg onload=alert(2)&gt;.exe" in detail
    assert "&lt;img src=x onerror=alert(1)&gt;" in detail
    assert "&lt;b id=injected&gt;" in detail


def test_a_subject_with_personal_data_is_masked_in_lists_and_details(console):
    for path in ("/mail", f"/mail/out/{console.ids['held_out']}"):
        page = console.page("admin", path).text
        assert f"명단 송부 {RRN_MASKED}" in page
        assert RRN not in page


def test_a_filter_that_cannot_be_used_is_named(console):
    page = console.page("admin", "/mail", params={"since": "yesterday"})
    assert page.status_code == 400
    assert "since=" in page.text


def test_pages_of_results(tmp_path):
    site = console_site(tmp_path)
    for n in range(60):
        site.mails.outbound(f"{n:032x}", ago_s=100 + n)
    admin = browser(site.app)
    sign_in(admin, ADMIN)
    first = admin.get("/mail").text
    assert first.count('class="subject"') == 50
    assert "60건 중 1-50" in first
    following = re.search(r'href="([^"]+)" id="next"', first)
    assert following is not None
    second = admin.get(following.group(1).replace("&amp;", "&")).text
    assert second.count('class="subject"') == 10
    assert "60건 중 51-60" in second
    assert 'id="next"' not in second


# ----------------------------------------------------------------------------- downloads


def download(console, who, path, **fields):
    session = console.sessions[who]
    token = csrf_of(session.get("/").text)
    return session.post(path, data={"csrf": token, **fields})


def test_statistics_export_to_excel_with_korean_headers_is_an_access_record(console):
    response = download(console, "auditor", "/stats/export", format="xlsx", by="day",
                        group="outcome")  # fmt: skip
    assert response.status_code == 200
    assert "attachment" in response.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(response.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0] == ("일자", "처리 결과", "메일 수")
    assert sum(r[2] for r in rows[1:]) == len(console.ids)
    assert {r[1] for r in rows[1:]} >= {"전달", "격리", "승인 대기"}
    (record,) = records(console, account=AUDITOR, action="exported")[:1]
    assert record.count == len(rows) - 1


def test_csv_downloads_start_with_a_bom_and_mail_exports_are_recorded(console):
    response = download(console, "admin", "/mail/export", format="csv", direction="in")
    assert response.status_code == 200
    assert response.content.startswith("\ufeff".encode())
    text = response.content.decode("utf-8-sig")
    assert text.splitlines()[0].startswith("시각 (Asia/Seoul),방향,처리 결과,보낸 사람")
    assert "&lt;" not in text  # a file carries the text itself
    exported = records(console, account=ADMIN, action="exported")
    assert exported[0].count == 3  # the inbound mails


def test_a_download_without_the_sessions_token_is_refused_and_not_recorded(console):
    before = len(records(console, action="exported"))
    session = console.sessions["auditor"]
    for path in ("/stats/export", "/mail/export", "/access/export", "/access/review"):
        response = session.post(path, data={"format": "xlsx", "month": "2027-01"})
        assert response.status_code == 403, path
    assert len(records(console, action="exported")) == before


def test_access_records_page_export_and_monthly_review(console):
    page = console.page("auditor", "/access", params={"action": "signin"})
    assert page.status_code == 200
    assert page.text.count('data-action="signin"') == 4  # the four sign-ins of the fixture
    assert records(console, account=AUDITOR, action="records_viewed")
    exported = download(console, "auditor", "/access/export", format="xlsx", action="signin")
    sheet = load_workbook(io.BytesIO(exported.content)).active
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][:4] == ("시각 (Asia/Seoul)", "계정", "접속 주소", "행위")
    assert {r[3] for r in rows[1:]} == {"로그인"}
    review = download(console, "auditor", "/access/review", month="2027-01")
    assert review.status_code == 200
    assert load_workbook(io.BytesIO(review.content)).sheetnames == [
        "계정별 요약",
        "이상 징후",
        "접속기록",
    ]
    assert any(r.detail == "access review 2027-01" for r in records(console, action="exported"))


# ----------------------------------------------------------------------------- dashboard


def test_the_dashboard_shows_the_outer_host_fresh_then_stale_with_its_age(tmp_path):
    site = console_site(tmp_path)
    admin = browser(site.app)
    sign_in(admin, ADMIN)
    missing = admin.get("/").text
    assert 'data-state="missing"' in missing
    assert 'data-code="outer_report_missing"' in missing
    state_dir = site.listener.console.places.state_dir
    state_dir.mkdir(parents=True, exist_ok=True)
    store = ReportStore(state_dir / "reports.db")
    clock = site.parts.clock
    report = replace(REPORT, made_ms=int(clock.now * 1000) - 5000, interval_s=30)
    store.add("inbound", b"\x01" * 16, 9, report, int(clock.now * 1000) - 4000)
    store.close()
    fresh = admin.get("/").text
    assert 'data-state="fresh"' in fresh
    assert report.host.hostname in fresh
    assert 'id="queue-delivery"' in fresh
    clock.now += 600
    stale = admin.get("/").text
    assert 'data-state="stale" data-age="605"' in stale
    assert "10분 5초" in stale
    assert 'data-code="outer_report_stale"' in stale
    assert report.host.hostname in stale  # the last figures, marked as that old


def test_every_page_in_english(tmp_path):
    from inner_agent.web.config import ConsoleSection
    from tests.inner.console.conftest import fill
    from tests.support.console import Site
    from tests.support.outbound import build_workflow, listener_for

    parts = build_workflow(tmp_path)
    parts.directory.accounts.add(ADMIN, "admin", "admin-password-1")
    listener = listener_for(parts, console=ConsoleSection(language="en"))
    from inner_agent.outbound.web import create_app

    site = Site(parts, listener, create_app(parts.workflow.desk, listener))
    ids = fill(site)
    admin = browser(site.app)
    sign_in(admin, ADMIN)
    for path in ("/", "/mail", f"/mail/out/{ids['held_out']}", "/stats?group=outcome", "/access"):
        page = admin.get(path)
        assert page.status_code == 200, path
        assert '<html lang="en">' in page.text
        assert "Dashboard" in page.text
        assert "대시보드" not in page.text
    held = admin.get(f"/mail/out/{ids['held_out']}").text
    assert "Held for approval by rule <b>rrn-hold</b>." in held
    assert "승인 대기로 보류했습니다" not in held


@pytest.mark.parametrize(
    ("picture", "media_type"),
    [(b"\x89PNG\r\n\x1a\n" + b"\0" * 8, "image/png"), (b"\xff\xd8\xff\xe0" + b"\0" * 8, "image/jpeg"),
     (b"<svg onload=alert(1)>", "application/octet-stream")],
)  # fmt: skip
def test_the_picture_is_served_as_what_it_is(picture: bytes, media_type: str) -> None:
    """A preview whose first page was a photo is a JPEG: not sent as image/png."""
    assert picture_media_type(picture) == media_type
