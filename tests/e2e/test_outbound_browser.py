"""The approval flow in a real browser (Playwright driving Debian's Chromium) against the
running OutboundService: a mail with a resident registration number in XLSX and HWP
attachments is held; the department head follows the link in the request mail, signs in,
sees the masked detail and the preview's pages with the places painted over, and approves
(confirming on the page that follows); another request is rejected with a reason
from the pending list."""

from __future__ import annotations

import smtplib

import pytest
from playwright.sync_api import sync_playwright

from tests.support.outbound import (
    PASSWORDS,
    RRN,
    RRN_MASKED,
    RecordingPublisher,
    approval_link,
    rrn_mail,
    start_outbound,
    wait_for,
)

CHROMIUM = "/usr/bin/chromium"
# Without the background-networking flags Chromium keeps trying to reach the internet.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

pytestmark = pytest.mark.e2e


@pytest.fixture
def running(tmp_path):
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher)
    running.publisher = publisher
    yield running
    running.stop()


@pytest.fixture
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def send(running, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
        client.sendmail("kim@corp.example", ["partner@example.com"], data)


def held_request(running, count: int):
    workflow = running.service.workflow
    return wait_for(
        lambda: (
            len(workflow.state.pending_requests()) >= count and workflow.state.pending_requests()
        ),
        what="held mail",
    )


def sign_in(page, email: str) -> None:
    page.fill("#email", email)
    page.fill("#password", PASSWORDS[email])
    page.click("#signin")


def test_approve_from_the_request_mail(running, browser, tmp_path):
    data = rrn_mail()
    send(running, data)
    (request,) = held_request(running, 1)
    mail = wait_for(lambda: running.internal.to("lee@corp.example"), what="approval request mail")
    link = approval_link(mail[0].data)
    assert link.startswith(running.web_url)
    assert "do=approve" in link

    page = browser.new_page()
    page.goto(link)
    assert page.url.startswith(f"{running.web_url}/login")  # the link needs the head's sign-in
    sign_in(page, "lee@corp.example")
    page.wait_for_selector("#approve")
    body = page.inner_text("body")
    assert RRN_MASKED in body
    assert RRN not in body
    assert "attachment:명단.xlsx" in body
    assert "attachment:명단.hwp" in body
    # The page is there before its picture: wait until the browser finished loading it (on a
    # loaded machine that is seconds), then it must be a real image.
    page.wait_for_function("document.querySelector('#preview').complete", timeout=60_000)
    width = page.eval_on_selector("#preview", "img => img.naturalWidth")
    assert width > 500  # the masked image loaded
    # The preview is the mail's pages (issue 18.3): the body, the XLSX and the HWP, each with
    # what was painted over on it beside it, every page a loaded picture.
    texts = "nodes => nodes.map(n => n.innerText)"
    titles = page.eval_on_selector_all("#preview-pages .page-title", texts)
    places = page.eval_on_selector_all("#preview-pages .page-places", texts)
    painted = dict(zip(titles, places, strict=True))
    assert [t for t in titles if t.startswith("첨부")] == [
        "첨부 명단.xlsx 1쪽",
        "첨부 명단.hwp 1쪽",
    ]
    assert painted["첨부 명단.xlsx 1쪽"] == "주민등록번호 1건 가림"
    assert painted["첨부 명단.hwp 1쪽"] == "주민등록번호 1건 가림"
    page.wait_for_function(
        "[...document.querySelectorAll('img.preview')].every(i => i.complete)", timeout=60_000
    )
    widths = page.eval_on_selector_all("img.preview", "nodes => nodes.map(i => i.naturalWidth)")
    assert len(widths) == len(titles)
    assert min(widths) > 500
    assert RRN not in page.inner_text("#extracted")  # the extracted text, for search, masked
    page.screenshot(path=str(tmp_path / "detail.png"), full_page=True)
    page.click("#approve")
    page.wait_for_selector("#confirm")  # the confirmation step: nothing is sent yet
    assert running.service.workflow.state.mail(request.mail_id).state == "held"
    page.click("#confirm")
    page.wait_for_selector("#done")
    assert "승인했습니다" in page.inner_text("#done")

    wait_for(lambda: running.publisher.published, what="publication on the out link")
    from mailsafe.payload import decode_outbound

    assert decode_outbound(running.publisher.published[0][0]).data == data
    subjects = wait_for(
        lambda: [
            s
            for s in running.internal.subjects_to("kim@corp.example")
            if s.startswith("[발송 승인]")
        ],
        what="approval notice to the sender",
    )
    assert subjects == ["[발송 승인] 거래처 명단 송부"]
    assert any(
        s.startswith("[승인 대기]") for s in running.internal.subjects_to("kim@corp.example")
    )
    state = running.service.workflow.state
    assert state.mail(request.mail_id).state == "sent"


def test_reject_with_a_reason_from_the_list(running, browser):
    send(running, rrn_mail())
    (request,) = held_request(running, 1)
    page = browser.new_page()
    page.goto(f"{running.web_url}/requests")
    sign_in(page, "park@corp.example")
    page.wait_for_selector("#pending")
    page.click(f"a[href='/requests/{request.request_id}']")
    page.wait_for_selector("#reject")
    page.fill("#reason", "주민등록번호를 지우고 다시 보내 주세요")
    page.click("#reject")
    page.wait_for_selector("#done")
    assert "반려했습니다" in page.inner_text("#done")
    assert page.query_selector("#empty") is not None  # nothing pending any more
    state = running.service.workflow.state
    wait_for(lambda: state.mail(request.mail_id).state == "rejected", what="rejection")
    assert state.request(request.request_id).reason == "주민등록번호를 지우고 다시 보내 주세요"
    assert running.publisher.published == []
    wait_for(
        lambda: "[발송 반려] 거래처 명단 송부" in running.internal.subjects_to("kim@corp.example"),
        what="rejection notice to the sender",
    )
