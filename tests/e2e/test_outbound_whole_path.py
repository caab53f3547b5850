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
import shutil
import smtplib
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentkit.audit import AuditLog
from agentkit.settings import LinkSection
from maildiode.trial.carrier import carry_pass, staging_for
from mailsafe.payload import decode_outbound
from outer_agent.delivery import DeliveryQueue, DeliveryService, RetryPolicy, SmtpHop
from protocol import FolderIntake, Keyring, LinkReader, Receiver, SigningKey
from tests.support.outbound import (
    PASSWORDS,
    RRN,
    RRN_MASKED,
    MailSink,
    approval_link,
    free_port,
    rrn_mail,
    start_outbound,
    wait_for,
)
from tests.support.postfix import PostfixInstance

pytestmark = pytest.mark.e2e


class Browser:
    """A cookie-keeping HTTP client on urllib (no JavaScript, like the pages themselves)."""

    def __init__(self) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar())
        )

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
        intake = FolderIntake(
            root / "link/out/recv",
            root / "outer/work",
            root / "outer/quarantine",
            settle_s=0,
            watch=False,
        )
        receiver = Receiver(root / "outer/state", "outbound", Keyring.load([inner_public]))
        self.reader = LinkReader(intake=intake, receiver=receiver)
        self.delivery = DeliveryService(
            DeliveryQueue(root / "outer/outbound"),
            SmtpHop(
                smarthost=("127.0.0.1", relay_port), helo="outer.test", starttls="off", timeout_s=5
            ),
            self.audit,
            decode=decode_outbound,
            inject_inbound=lambda envelope, data: None,
            policy=RetryPolicy(quick_wait_s=0.05),
            hostname="outer.test",
        )

    def step(self) -> None:
        self.reader.poll(self.delivery.accept_bundle)
        self.delivery.run_due()


def link_config(tmp_path: Path) -> tuple[Path, SimpleNamespace]:
    """The inner agent's key pair and the [link]/[keys] parts its out link needs."""
    keys = tmp_path / "keys"
    keys.mkdir()
    signing = SigningKey.generate()
    signing.save(keys / "inner.key")
    signing.verify_key.save(keys / "inner.pub")
    link = LinkSection(
        send_dir=tmp_path / "link/out/send", recv_dir=tmp_path / "link/in/recv", settle_s=0
    )
    return keys, SimpleNamespace(
        link=link, keys=SimpleNamespace(signing_key=keys / "inner.key", encrypt_to=None)
    )


def approve_over_http(running, request, link: str) -> None:
    """The head follows the link, signs in, sees only masked values, and approves."""
    browser = Browser()
    login_url, login_page = browser.get(link)
    assert "/login" in login_url
    detail_url, detail = browser.post(
        f"{running.web_url}/login",
        {
            "csrf": field(login_page, "csrf"),
            "next": field(login_page, "next"),
            "email": "lee@corp.example",
            "password": PASSWORDS["lee@corp.example"],
        },
    )
    assert f"/requests/{request.request_id}" in detail_url
    assert RRN_MASKED.encode() in detail
    assert RRN.encode() not in detail
    _url, image = browser.get(f"{running.web_url}/requests/{request.request_id}/image.png")
    assert image.startswith(b"\x89PNG")
    done_url, _page = browser.post(
        f"{running.web_url}/requests/{request.request_id}/decide",
        {"csrf": field(detail, "csrf"), "token": field(detail, "token"), "action": "approve"},
    )
    assert done_url.endswith("/requests?done=approved")


def carry_until_delivered(tmp_path: Path, outer: Outer, relay: MailSink) -> list:
    """Play the linkage product (link/out/send -> link/out/recv) until the relay has mail."""
    send_dir, recv_dir = tmp_path / "link/out/send", tmp_path / "link/out/recv"
    recv_dir.mkdir(parents=True, exist_ok=True)
    snapshot: dict = {}

    def carried_and_delivered():
        nonlocal snapshot
        _count, snapshot = carry_pass(send_dir, recv_dir, staging_for(recv_dir), snapshot)
        outer.step()
        return relay.received

    return wait_for(carried_and_delivered, what="delivery to the relay")


def test_held_approved_carried_delivered_unchanged(tmp_path):
    keys, config = link_config(tmp_path)
    inner_audit = AuditLog(tmp_path / "inner-audit.db", agent="inner")
    relay = MailSink()
    running = start_outbound(tmp_path, config=config, audit=inner_audit)
    try:
        original = rrn_mail()
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail(
                "kim@corp.example", ["partner@example.com", "cc@partner.example"], original
            )
        state = running.service.workflow.state
        request = wait_for(lambda: state.pending_requests(), what="approval request")[0]
        wait_for(lambda: state.mail(request.mail_id).state == "held", what="held mail")

        # the head gets the request mail through the internal server and follows its link
        request_mail = wait_for(
            lambda: running.internal.to("lee@corp.example"), what="request mail"
        )
        assert RRN.encode() not in request_mail[0].data
        approve_over_http(running, request, approval_link(request_mail[0].data))

        # out link: published by the inner agent, carried, read and delivered by the outer
        outer = Outer(tmp_path, keys / "inner.pub", relay.port)
        (delivered,) = carry_until_delivered(tmp_path, outer, relay)
        assert delivered.data == original  # the ORIGINAL bytes, unchanged
        assert delivered.mail_from == "kim@corp.example"
        assert sorted(delivered.rcpt_to) == ["cc@partner.example", "partner@example.com"]

        inner_steps = [e.step for e in inner_audit.query(mail_id=request.mail_id)]
        assert inner_steps[:4] == ["accepted_outbound", "scanned", "held", "approval_requested"]
        assert "approved" in inner_steps
        assert "sent_out" in inner_steps
        outer_steps = [e.step for e in outer.audit.query(mail_id=request.mail_id)]
        assert outer_steps == ["received_outbound", "delivered"]
        wait_for(
            lambda: (
                "[발송 승인] 거래처 명단 송부" in running.internal.subjects_to("kim@corp.example")
            ),
            what="approval notice to the sender",
        )
    finally:
        running.stop()
        relay.stop()


class RelayingPostfix(PostfixInstance):
    """The internal mail server: delivers corp.example to its Maildir and relays every other
    domain to maildiode's outbound intake (``relayhost``), as a real installation does."""

    def __init__(self, base: Path, *, relay_port: int) -> None:
        super().__init__(base, domain="corp.example", relay_to=relay_port)


def maildir_to(postfix: PostfixInstance, rcpt: str) -> list[bytes]:
    found = []
    for path in postfix.messages():
        data = path.read_bytes()
        if f"To: {rcpt}".encode() in data:
            found.append(data)
    return found


def test_through_postfix_as_the_internal_server(tmp_path):
    keys, config = link_config(tmp_path)
    relay = MailSink()
    outbound_port = free_port()
    # Postfix's own processes (user postfix, nobody) must reach their folders; pytest's
    # tmp_path is private to root (0700), so the instance lives in a traversable folder.
    postfix_base = Path(tempfile.mkdtemp(prefix="maildiode-postfix-"))
    postfix_base.chmod(0o755)
    postfix = RelayingPostfix(postfix_base / "postfix", relay_port=outbound_port)
    running = None
    try:
        postfix.start()
        running = start_outbound(
            tmp_path,
            config=config,
            listen=f"127.0.0.1:{outbound_port}",
            notice={"internal_smtp": f"127.0.0.1:{postfix.port}"},
        )
        sent = rrn_mail()
        with smtplib.SMTP("127.0.0.1", postfix.port) as client:  # an employee's mail client
            client.sendmail("kim@corp.example", ["partner@example.com"], sent)
        state = running.service.workflow.state
        request = wait_for(lambda: state.pending_requests(), timeout=60, what="relayed and held")[0]
        wait_for(lambda: state.mail(request.mail_id).state == "held", what="held mail")
        # what the internal server handed over (Postfix adds its Received: line)
        _envelope, accepted = running.service.workflow.spool.load(request.mail_id)
        assert accepted.endswith(sent.split(b"\r\n\r\n", 1)[1])

        # the approval request reaches the head's mailbox through Postfix
        (request_mail,) = wait_for(
            lambda: maildir_to(postfix, "lee@corp.example"),
            timeout=60,
            what="approval request in the Maildir",
        )
        assert RRN.encode() not in request_mail
        approve_over_http(running, request, approval_link(request_mail))

        outer = Outer(tmp_path, keys / "inner.pub", relay.port)
        (delivered,) = carry_until_delivered(tmp_path, outer, relay)
        assert delivered.data == accepted  # the bytes the internal server relayed, unchanged
        wait_for(
            lambda: maildir_to(postfix, "kim@corp.example"),
            timeout=60,
            what="decision notices to the sender's mailbox",
        )
    finally:
        if running is not None:
            running.stop()
        postfix.close()
        relay.stop()
        shutil.rmtree(postfix_base, ignore_errors=True)


class Carrier:
    """The linkage product and the outer agent, one pass at a time, remembering what the
    carrier saw (a file is carried once it stood still between two passes)."""

    def __init__(self, tmp_path: Path, outer: Outer, relay: MailSink) -> None:
        self.send_dir, self.recv_dir = tmp_path / "link/out/send", tmp_path / "link/out/recv"
        self.recv_dir.mkdir(parents=True, exist_ok=True)
        self.outer, self.relay, self.snapshot = outer, relay, {}

    def one_pass(self) -> list:
        _count, self.snapshot = carry_pass(self.send_dir, self.recv_dir,
                                           staging_for(self.recv_dir), self.snapshot)  # fmt: skip
        self.outer.step()
        return self.relay.received


def bulk_approve_over_http(running, request_ids: list[str]) -> None:
    """The head signs in, picks every request on the list, approves them together and
    confirms on the page that follows."""
    browser = Browser()
    _url, login_page = browser.get(f"{running.web_url}/login")
    list_url, listing = browser.post(f"{running.web_url}/login", {
        "csrf": field(login_page, "csrf"), "next": "/requests", "email": "lee@corp.example",
        "password": PASSWORDS["lee@corp.example"]})  # fmt: skip
    assert list_url.endswith("/requests")
    pairs = [("csrf", field(listing, "csrf")), ("action", "approve")]
    for request_id in request_ids:
        pairs += [("pick", request_id), (f"token-{request_id}", field(listing, f"token-{request_id}"))]  # fmt: skip
    data = urllib.parse.urlencode(pairs).encode()
    with browser.opener.open(f"{running.web_url}/requests/bulk", data=data, timeout=10) as page:
        confirm = page.read()
    assert f"{len(request_ids)}건의 메일이".encode() in confirm
    confirmed = urllib.parse.urlencode(re.findall(r'name="([^"]+)" value="([^"]*)"',
                                                  confirm.decode())).encode()  # fmt: skip
    with browser.opener.open(f"{running.web_url}/requests/bulk", data=confirmed,
                             timeout=10) as done:  # fmt: skip
        assert done.url.endswith(f"/requests?done=bulk-approved&n={len(request_ids)}")


def test_bulk_approval_through_postfix_delivers_each_exactly_once(tmp_path):
    """Issue 20: an approver bulk-approves three requests and all three are delivered
    exactly once (the internal server is a real Postfix on loopback)."""
    keys, config = link_config(tmp_path)
    relay = MailSink()
    outbound_port = free_port()
    postfix_base = Path(tempfile.mkdtemp(prefix="maildiode-postfix-"))
    postfix_base.chmod(0o755)
    postfix = RelayingPostfix(postfix_base / "postfix", relay_port=outbound_port)
    running = None
    try:
        postfix.start()
        running = start_outbound(
            tmp_path,
            config=config,
            listen=f"127.0.0.1:{outbound_port}",
            notice={"internal_smtp": f"127.0.0.1:{postfix.port}"},
        )
        with smtplib.SMTP("127.0.0.1", postfix.port) as client:
            for n in range(3):
                client.sendmail("kim@corp.example", [f"partner{n}@example.com"], rrn_mail())
        state = running.service.workflow.state
        requests = wait_for(lambda: len(state.pending_requests()) == 3 and state.pending_requests(),
                            timeout=60, what="three relayed and held")  # fmt: skip
        bulk_approve_over_http(running, [r.request_id for r in requests])

        outer = Outer(tmp_path, keys / "inner.pub", relay.port)
        carry = Carrier(tmp_path, outer, relay)
        wait_for(lambda: len(carry.one_pass()) >= 3, timeout=120, what="three deliveries")
        for _ in range(5):  # more passes of the carrier and the outer agent: nothing again
            carry.one_pass()
        assert sorted(r for m in relay.received for r in m.rcpt_to) == [
            "partner0@example.com", "partner1@example.com", "partner2@example.com"]  # fmt: skip
        for request in requests:
            assert state.mail(request.mail_id).state == "sent"
            steps = [e.step for e in outer.audit.query(mail_id=request.mail_id)]
            assert steps == ["received_outbound", "delivered"]
    finally:
        if running is not None:
            running.stop()
        postfix.close()
        relay.stop()
        shutil.rmtree(postfix_base, ignore_errors=True)
