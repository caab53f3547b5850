"""The whole outbound path with real parts at every edge:

internal client --smtplib--> inner outbound intake (spool, scan: held for a resident number in
XLSX and HWP attachments) --> approval request mail via the internal server --> the head
approves over plain HTTP (urllib against the running web server; sees only masked values)
--> protocol.Sender on stream "outbound" into link/out/send --> carried like a linkage
product into link/out/recv --> outer agent's LinkReader + DeliveryService --> a relay sink
(aiosmtpd on loopback) receives the ORIGINAL bytes, exactly.
"""

from __future__ import annotations

import http.cookiejar
import re
import smtplib
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from maildiode.audit import AuditLog
from maildiode.commands.carry import carry_pass, staging_for
from maildiode.settings import LinkSection
from mailsafe.package import decode_outbound
from outer_agent.delivery import DeliveryQueue, DeliveryService, RetryPolicy, SmtpHop
from protocol import FolderIntake, Keyring, LinkReader, Receiver, SigningKey
from tests.support.outbound import (
    PASSWORDS,
    RRN,
    RRN_MASKED,
    MailSink,
    approval_link,
    rrn_mail,
    start_outbound,
    wait_for,
)

pytestmark = pytest.mark.e2e


class Browser:
    """A cookie-keeping HTTP client on urllib (no JavaScript, like the pages themselves)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, url: str) -> tuple[str, bytes]:
        with self.opener.open(url, timeout=10) as response:
            return response.url, response.read()

    def post(self, url: str, fields: dict[str, str]) -> tuple[str, bytes]:
        data = urllib.parse.urlencode(fields).encode()
        with self.opener.open(url, data=data, timeout=10) as response:
            return response.url, response.read()


def field(page: bytes, name: str) -> str:
    return re.search(rf'name="{name}" value="([^"]*)"', page.decode()).group(1)


class Outer:
    """The outer agent's receiving end of the out link and its delivery to the relay."""

    def __init__(self, root: Path, inner_public: Path, relay_port: int) -> None:
        self.audit = AuditLog(root / "outer-audit.db", agent="outer")
        intake = FolderIntake(root / "link/out/recv", root / "outer/work", root / "outer/quarantine",
                              settle_s=0, watch=False)
        receiver = Receiver(root / "outer/state", "outbound", Keyring.load([inner_public]))
        self.reader = LinkReader(intake=intake, receiver=receiver)
        self.delivery = DeliveryService(
            DeliveryQueue(root / "outer/outbound"),
            SmtpHop(smarthost=("127.0.0.1", relay_port), helo="outer.test", starttls="off", timeout_s=5),
            self.audit, decode=decode_outbound, inject_inbound=lambda envelope, data: None,
            policy=RetryPolicy(quick_wait_s=0.05), hostname="outer.test")

    def step(self) -> None:
        self.reader.poll(self.delivery.accept_bundle)
        self.delivery.run_due()


def test_held_approved_carried_delivered_unchanged(tmp_path):
    keys = tmp_path / "keys"
    keys.mkdir()
    signing = SigningKey.generate()
    signing.save(keys / "inner.key")
    signing.verify_key.save(keys / "inner.pub")
    link = LinkSection(send_dir=tmp_path / "link/out/send", recv_dir=tmp_path / "link/in/recv",
                       settle_s=0)
    config = SimpleNamespace(link=link, keys=SimpleNamespace(signing_key=keys / "inner.key", encrypt_to=None))
    inner_audit = AuditLog(tmp_path / "inner-audit.db", agent="inner")
    relay = MailSink()
    running = start_outbound(tmp_path, config=config, audit=inner_audit)
    try:
        original = rrn_mail()
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com", "cc@partner.example"], original)
        state = running.service.workflow.state
        request = wait_for(lambda: state.pending_requests(), what="approval request")[0]
        wait_for(lambda: state.mail(request.mail_id).state == "held", what="held mail")

        # the head gets the request mail through the internal server and follows its link
        request_mail = wait_for(lambda: running.internal.to("lee@corp.example"), what="request mail")
        assert RRN.encode() not in request_mail[0].data
        browser = Browser()
        login_url, login_page = browser.get(approval_link(request_mail[0].data))
        assert "/login" in login_url
        detail_url, detail = browser.post(f"{running.web_url}/login", {
            "csrf": field(login_page, "csrf"), "next": field(login_page, "next"),
            "email": "lee@corp.example", "password": PASSWORDS["lee@corp.example"]})
        assert f"/requests/{request.request_id}" in detail_url
        assert RRN_MASKED.encode() in detail and RRN.encode() not in detail
        _url, image = browser.get(f"{running.web_url}/requests/{request.request_id}/image.png")
        assert image.startswith(b"\x89PNG")
        done_url, _page = browser.post(f"{running.web_url}/requests/{request.request_id}/decide", {
            "csrf": field(detail, "csrf"), "token": field(detail, "token"), "action": "approve"})
        assert done_url.endswith("/requests?done=approved")

        # out link: published by the inner agent, carried, read and delivered by the outer
        send_dir, recv_dir = tmp_path / "link/out/send", tmp_path / "link/out/recv"
        recv_dir.mkdir(parents=True, exist_ok=True)
        wait_for(lambda: any(send_dir.iterdir()), what="chunk files in link/out/send")
        outer = Outer(tmp_path, keys / "inner.pub", relay.port)
        snapshot: dict = {}

        def carried_and_delivered():
            nonlocal snapshot
            _count, snapshot = carry_pass(send_dir, recv_dir, staging_for(recv_dir), snapshot)
            outer.step()
            return relay.received

        (delivered,) = wait_for(carried_and_delivered, what="delivery to the relay")
        assert delivered.data == original  # the ORIGINAL bytes, unchanged
        assert delivered.mail_from == "kim@corp.example"
        assert sorted(delivered.rcpt_to) == ["cc@partner.example", "partner@example.com"]

        inner_steps = [e.step for e in inner_audit.query(mail_id=request.mail_id)]
        assert inner_steps[:4] == ["accepted_outbound", "scanned", "held", "approval_requested"]
        assert "approved" in inner_steps and "sent_out" in inner_steps
        outer_steps = [e.step for e in outer.audit.query(mail_id=request.mail_id)]
        assert outer_steps == ["received_outbound", "delivered"]
        wait_for(lambda: "[발송 승인] 거래처 명단 송부" in running.internal.subjects_to("kim@corp.example"),
                 what="approval notice to the sender")
    finally:
        running.stop()
        relay.stop()
