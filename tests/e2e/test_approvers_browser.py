"""The employee's and the approvers' new pages in a real browser (Playwright driving Debian's
Chromium) against the running OutboundService, on a 390-px phone screen: the sender sees
whom their held mail waits for and withdraws it (never published, the approvers told); an
approver picks three requests, approves them together after the confirmation page, and each
is published exactly once. No page scrolls sideways on the phone.

Screenshots go to a temporary folder, or to ``MAILDIODE_SCREENSHOTS`` when set
(``docs/approval/`` holds the committed ones; the tests never write there by themselves)."""

from __future__ import annotations

import os
import smtplib
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from tests.e2e.test_outbound_browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.outbound import (
    PASSWORDS,
    RRN,
    RRN_MASKED,
    RecordingPublisher,
    forwarded_list_mail,
    rrn_mail,
    start_outbound,
    wait_for,
)

pytestmark = pytest.mark.e2e

PHONE = {"width": 390, "height": 844}
KIM_PASSWORD = "kim-password-5"


@pytest.fixture
def running(tmp_path):
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher)
    running.publisher = publisher
    running.service.workflow.directory.set_password("kim@corp.example", KIM_PASSWORD)
    yield running
    running.stop()


@pytest.fixture
def phone():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport=PHONE, device_scale_factor=1, is_mobile=True)
        yield context.new_page()
        context.close()
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    return Path(os.environ.get("MAILDIODE_SCREENSHOTS") or tmp_path)


def send(running, count: int) -> list:
    with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
        for _ in range(count):
            client.sendmail("kim@corp.example", ["partner@example.com"], rrn_mail())
    state = running.service.workflow.state
    return wait_for(lambda: len(state.pending_requests()) >= count and state.pending_requests(),
                    what=f"{count} held mails")  # fmt: skip


def sign_in(page, url: str, email: str, password: str) -> None:
    page.goto(url)
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#signin")


def fits_the_phone(page, what: str) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], (what, width)


def test_the_sender_withdraws_a_held_mail_on_the_phone(running, phone, shots):
    (request,) = send(running, 1)
    sign_in(phone, f"{running.web_url}/my/sent", "kim@corp.example", KIM_PASSWORD)
    phone.wait_for_selector("#sent")
    status = phone.inner_text(f"#mail-{request.mail_id} .status")
    assert "승인 대기" in status
    assert "lee@corp.example" in status
    assert "개인정보 규칙: 주민등록번호 2건" in status
    fits_the_phone(phone, "my sent mail")
    phone.screenshot(path=str(shots / "phone-my-sent.png"), full_page=True)

    phone.click(f"#withdraw-{request.mail_id}")
    phone.wait_for_selector("#done")
    assert "발송되지 않습니다" in phone.inner_text("#done")
    assert "발송 취소" in phone.inner_text(f"#mail-{request.mail_id} .status")
    state = running.service.workflow.state
    assert state.mail(request.mail_id).state == "withdrawn"
    wait_for(lambda: any(s.startswith("[승인 요청 철회]")
                         for s in running.internal.subjects_to("lee@corp.example")),
             what="the approver told of the withdrawal")  # fmt: skip
    running.service.workflow.publish_pending()
    assert running.publisher.published == []


def test_bulk_approval_of_three_on_the_phone(running, phone, shots):
    requests = send(running, 3)
    sign_in(phone, f"{running.web_url}/requests", "lee@corp.example",
            PASSWORDS["lee@corp.example"])  # fmt: skip
    phone.wait_for_selector("#pending")
    fits_the_phone(phone, "pending list")
    phone.screenshot(path=str(shots / "phone-requests.png"), full_page=True)
    phone.goto(f"{running.web_url}/requests/{requests[0].request_id}")
    phone.wait_for_selector("#approve")
    assert "개인정보 규칙: 주민등록번호 2건" in phone.inner_text("#because")
    phone.wait_for_function("document.querySelector('#preview').complete", timeout=60_000)
    fits_the_phone(phone, "request detail")
    phone.screenshot(path=str(shots / "phone-request-detail.png"), full_page=True)

    phone.goto(f"{running.web_url}/requests")
    for request in requests:
        phone.check(f"#pick-{request.request_id}")
    phone.click("#bulk-approve")
    phone.wait_for_selector("#confirm")
    assert "3건" in phone.inner_text("#confirm-text")
    fits_the_phone(phone, "confirmation")
    phone.screenshot(path=str(shots / "phone-confirm.png"), full_page=True)
    state = running.service.workflow.state
    assert {state.mail(r.mail_id).state for r in requests} == {"held"}
    phone.click("#confirm")
    phone.wait_for_selector("#done")
    assert "3건을 승인했습니다" in phone.inner_text("#done")

    wait_for(lambda: len(running.publisher.published) >= 3, what="three publications")
    wait_for(lambda: {state.mail(r.mail_id).state for r in requests} == {"sent"},
             what="all three sent")  # fmt: skip
    bundle_ids = [bundle_id for _bundle, bundle_id in running.publisher.published]
    assert len(bundle_ids) == 3
    assert len(set(bundle_ids)) == 3


def test_the_absence_page_fits_the_phone(running, phone, shots):
    sign_in(phone, f"{running.web_url}/absence", "lee@corp.example",
            PASSWORDS["lee@corp.example"])  # fmt: skip
    phone.wait_for_selector("#delegate")
    fits_the_phone(phone, "absence")
    phone.screenshot(path=str(shots / "phone-absence.png"), full_page=True)


def test_a_forwarded_mails_attachment_is_on_the_detail_page_on_the_phone(running, phone, shots):
    """A mail sent through the intake carries a forwarded mail (message/rfc822) with a
    customer list XLSX: the approver's extracted text names the list as the forwarded mail's
    attachment, its rows readable and the number masked; the page fits the phone (its
    screenshot is committed as docs/approval/phone-request-detail-forwarded.png)."""
    with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
        client.sendmail("kim@corp.example", ["partner@example.com"], forwarded_list_mail())
    state = running.service.workflow.state
    (request,) = wait_for(lambda: state.pending_requests(), what="the held forwarded mail")
    sign_in(phone, f"{running.web_url}/requests/{request.request_id}", "lee@corp.example",
            PASSWORDS["lee@corp.example"])  # fmt: skip
    phone.wait_for_selector("#approve")
    phone.click("#extracted summary")
    section = phone.locator("#extracted h4", has_text="전달된 메일의 첨부: 고객명단.xlsx")
    assert section.count() == 1, phone.inner_text("#extracted")
    text = section.locator("xpath=following-sibling::pre[1]").inner_text()
    assert "김고객" in text, text
    assert RRN_MASKED in text, text
    assert RRN not in phone.content()
    phone.wait_for_function("document.querySelector('#preview').complete", timeout=60_000)
    fits_the_phone(phone, "request detail with a forwarded mail")
    section.scroll_into_view_if_needed()
    phone.screenshot(path=str(shots / "phone-request-detail-forwarded.png"), full_page=True)
