"""Delivery of approved outbound mail against fault-injecting SMTP sinks."""

from __future__ import annotations

import email
import time
from dataclasses import dataclass
from email import policy

import pytest
import trustme

from outer_agent.delivery import (
    DeliveryQueue,
    DeliveryService,
    RetryPolicy,
    SmtpHop,
    bounce_bundle_id,
)
from protocol import Kind
from tests.outer.sinks import FaultySink, start_sink
from tests.outer.test_pipeline import FakeAudit

ORIGINAL = (
    "From: 직원 <emp@corp.example>\r\nTo: partner@ext.example\r\nSubject: 견적서\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n안녕하세요.\r\n.leading dot line\r\n..two dots\r\nend\r\n"
).encode()


@dataclass
class Mail:  # stands in for mailsafe.payload.OutboundMail
    mail_id: str
    mail_from: str
    rcpt_to: tuple[str, ...]
    data: bytes
    decided_by: str = "head@corp.example"
    decided_at: str = "2026-11-23T10:00:00Z"


@dataclass
class Bundle:  # stands in for protocol.ReceivedBundle
    bundle_id: bytes
    seq: int
    data: object
    kind: Kind = Kind.DATA


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def service(tmp_path, hop, *, clock=None, expire_s=3600.0, attempts=3):
    injected = []
    audit = FakeAudit()
    svc = DeliveryService(
        DeliveryQueue(tmp_path / "out", clock=clock or time.time),
        hop,
        audit,
        decode=lambda data: data,
        inject_inbound=lambda env, msg: injected.append((env, msg)),
        policy=RetryPolicy(
            attempts_per_pass=attempts,
            retry_initial_s=60,
            retry_max_s=600,
            expire_s=expire_s,
            quick_wait_s=0.01,
        ),
        hostname="outer.test",
        clock=clock or time.time,
    )
    return svc, audit, injected


def hop_for(controller, **kw):
    """These sinks speak no TLS; the tests about TLS ask for it (the default is required)."""
    kw.setdefault("starttls", "opportunistic")
    return SmtpHop(smarthost=("127.0.0.1", controller.port), helo="outer.test", timeout_s=5, **kw)


def accept(svc, rcpts=("partner@ext.example",), mail_from="emp@corp.example", bundle_id=b"B" * 16):
    svc.accept_bundle(Bundle(bundle_id, 7, Mail("m1", mail_from, tuple(rcpts), ORIGINAL)))


def test_451_then_250_is_retried_and_the_relay_gets_the_original_bytes(tmp_path):
    sink = FaultySink(replies=["451 4.3.0 try later", "250 2.0.0 OK"])
    controller = start_sink(sink)
    try:
        svc, audit, injected = service(tmp_path, hop_for(controller))
        accept(svc)
        assert svc.run_due() == 1
    finally:
        controller.stop()
    assert sink.data_calls == 2
    [got] = sink.received
    assert got.data == ORIGINAL
    assert got.mail_from == "emp@corp.example"
    assert got.rcpt_to == ["partner@ext.example"]
    assert [e[1] for e in audit.events] == ["received_outbound", "delivered"]
    assert injected == []
    assert svc.queue.items() == []


def test_550_bounces_with_a_notice_to_the_sender_through_the_inbound_path(tmp_path):
    sink = FaultySink(replies=["550 5.7.1 we do not want it"])
    controller = start_sink(sink)
    try:
        svc, audit, injected = service(tmp_path, hop_for(controller))
        accept(svc)
        assert svc.run_due() == 1
    finally:
        controller.stop()
    assert sink.data_calls == 1  # a permanent refusal is not retried
    [(envelope, notice)] = injected
    assert envelope.rcpt_to == ("emp@corp.example",)
    assert envelope.mail_from == ""
    parsed = email.message_from_bytes(notice, policy=policy.default)
    assert parsed["To"] == "emp@corp.example"
    assert "전송 실패" in parsed["Subject"]
    assert "견적서" in parsed["Subject"]
    assert "550" in parsed.get_content()
    assert "partner@ext.example" in parsed.get_content()
    bounced = audit.steps("bounced")[0][2]
    assert bounced["rcpt"] == ["partner@ext.example"]
    assert bounced["notice"] is True
    item_bundle = b"B" * 16
    assert len(envelope.bundle_id) == 16
    assert envelope.bundle_id != item_bundle


def test_mixed_recipients_deliver_some_and_bounce_others(tmp_path):
    sink = FaultySink(refuse_rcpt={"nobody@ext.example": "550 5.1.1 no such user"})
    controller = start_sink(sink)
    try:
        svc, audit, injected = service(tmp_path, hop_for(controller))
        accept(svc, rcpts=("partner@ext.example", "nobody@ext.example"))
        svc.run_due()
    finally:
        controller.stop()
    assert [r.rcpt_to for r in sink.received] == [["partner@ext.example"]]
    assert audit.steps("delivered")[0][2]["rcpt"] == ["partner@ext.example"]
    assert audit.steps("bounced")[0][2]["rcpt"] == ["nobody@ext.example"]
    assert len(injected) == 1


def test_unreachable_relay_is_kept_with_backoff_then_expires_into_a_bounce(tmp_path):
    clock = Clock()
    dead = SmtpHop(smarthost=("127.0.0.1", 9), helo="outer.test", timeout_s=2)
    svc, audit, injected = service(tmp_path, dead, clock=clock, expire_s=1000, attempts=2)
    accept(svc)
    assert svc.run_due() == 0
    [item] = svc.queue.items()
    assert item.attempts == 1
    assert item.next_try == clock.now + 60
    assert svc.run_due() == 0  # not due yet: nothing tried
    clock.now += 61
    svc.run_due()
    assert svc.queue.items()[0].next_try == clock.now + 120  # doubled
    clock.now += 1000
    assert svc.run_due() == 1
    assert "expired" in audit.steps("bounced")[0][2]["reasons"][0]
    assert len(injected) == 1
    assert len(audit.steps("delivery_deferred")) == 2


def test_a_bundle_seen_again_is_not_queued_twice(tmp_path):
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        svc, audit, _ = service(tmp_path, hop_for(controller))
        accept(svc)
        accept(svc)
        svc.run_due()
        accept(svc)  # after delivery too (the reader re-calls after a crash)
        svc.run_due()
    finally:
        controller.stop()
    assert len(sink.received) == 1
    assert len(audit.steps("received_outbound")) == 1


def test_bounce_ids_are_stable(tmp_path):
    svc, _, _ = service(tmp_path, SmtpHop(smarthost=None, helo="x"))
    accept(svc)
    [item] = svc.queue.items()
    failures = [("partner@ext.example", "550 no")]
    assert bounce_bundle_id(item, failures) == bounce_bundle_id(item, list(failures))


def test_null_sender_is_never_bounced(tmp_path):
    sink = FaultySink(replies=["554 5.0.0 no"])
    controller = start_sink(sink)
    try:
        svc, audit, injected = service(tmp_path, hop_for(controller))
        accept(svc, mail_from="")
        svc.run_due()
    finally:
        controller.stop()
    assert injected == []
    assert audit.steps("bounced")[0][2]["notice"] is False


def test_undecodable_bundle_is_quarantined_not_lost(tmp_path):
    def refuse(data):
        raise ValueError("unknown key 'x'")

    svc, audit, _ = service(tmp_path, SmtpHop(smarthost=None, helo="x"))
    svc.decode = refuse
    svc.accept_bundle(Bundle(b"Q" * 16, 1, b"garbage"))
    assert (tmp_path / "out" / "quarantine" / ("51" * 16)).read_bytes() == b"garbage"
    assert audit.steps("quarantined")[0][2]["reason"] == "outbound_undecodable"


def test_a_control_record_on_the_out_link_is_quarantined_not_read_as_mail(tmp_path):
    """Until the outer agent applies policies and decisions (issue 17), a CONTROL bundle is
    refused by its kind: never handed to the outbound-mail decoder (fail-open)."""
    decoded = []
    svc, audit, _ = service(tmp_path, SmtpHop(smarthost=None, helo="x"))
    svc.decode = lambda data: decoded.append(data)
    svc.accept_bundle(Bundle(b"C" * 16, 2, b"\x85\xa1v\x01", Kind.CONTROL))
    assert decoded == []
    assert (tmp_path / "out" / "quarantine" / ("43" * 16)).read_bytes() == b"\x85\xa1v\x01"
    assert audit.steps("quarantined")[0][2] == {"reason": "outbound_not_mail",
                                                "detail": "bundle kind 3"}  # fmt: skip
    assert list((tmp_path / "out" / "queue").iterdir()) == []


def test_mx_lookup_is_used_without_a_smarthost(tmp_path):
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        looked_up = []

        def resolve(domain):
            looked_up.append(domain)
            return [("127.0.0.1", 9), ("127.0.0.1", controller.port)]  # first MX is down

        hop = SmtpHop(smarthost=None, helo="outer.test", timeout_s=5, resolve_mx=resolve,
                      starttls="opportunistic")  # fmt: skip
        svc, _, _ = service(tmp_path, hop)
        accept(svc)
        assert svc.run_due() == 1
    finally:
        controller.stop()
    assert looked_up == ["ext.example"]
    assert sink.received[0].data == ORIGINAL


def test_starttls_and_auth_at_the_smarthost(tmp_path):
    import ssl

    from aiosmtpd.smtp import AuthResult

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret")

    sink = FaultySink()
    controller = start_sink(
        sink,
        tls_context=server_ctx,
        require_starttls=True,
        authenticator=authenticator,
        auth_required=True,
    )
    try:
        hop = hop_for(
            controller,
            starttls="required",
            tls_context=client_ctx,
            username="outer",
            password="s3cret",
        )
        svc, _, _ = service(tmp_path, hop)
        accept(svc)
        assert svc.run_due() == 1
    finally:
        controller.stop()
    assert logins == [(b"outer", b"s3cret")]
    assert sink.received[0].data == ORIGINAL


@pytest.mark.parametrize("starttls", ["required"])
def test_required_tls_is_not_skipped(tmp_path, starttls):
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        svc, audit, _ = service(tmp_path, hop_for(controller, starttls=starttls), attempts=1)
        accept(svc)
        assert svc.run_due() == 0
    finally:
        controller.stop()
    assert sink.received == []
    assert "STARTTLS" in audit.steps("delivery_deferred")[0][2]["error"]


# A1 red team: an employee's approved mail carried bare CR and LF line ends; the outer agent
# sent them to the internet unchanged, and a receiving MTA that ends DATA at "<CR>.<CR>" or
# "<LF>.<LF>" (the SMTP-smuggling flaws of 2023) would read what follows as a second mail with
# its own envelope: a recipient nobody approved, a sender nobody checked. RFC 5321 §2.3.8: CR
# and LF only ever travel together.
SMUGGLING = (
    b"From: emp@corp.example\r\nTo: partner@ext.example\r\nSubject: quote\r\n\r\nhello\r\n"
    b"first\r.\rMAIL FROM:<ceo@corp.example>\rRCPT TO:<rival@other.example>\rDATA\r"
    b"Subject: unapproved\r\rsecret\r.\r"
    b"second\n.\nRSET\nline\r\nend\r\n"
)


def test_bare_line_ends_never_reach_the_internet_so_nothing_can_be_smuggled(tmp_path):
    sink = FaultySink()
    controller = start_sink(sink)
    try:
        svc, _audit, _injected = service(tmp_path, hop_for(controller))
        svc.accept_bundle(Bundle(b"S" * 16, 7, Mail("m1", "emp@corp.example",
                                                     ("partner@ext.example",), SMUGGLING)))  # fmt: skip
        assert svc.run_due() == 1
    finally:
        controller.stop()
    [got] = sink.received
    assert got.rcpt_to == ["partner@ext.example"]
    assert b"\r" not in got.data.replace(b"\r\n", b""), got.data  # no bare CR on the wire
    assert b"\n" not in got.data.replace(b"\r\n", b""), got.data  # no bare LF on the wire
    lines = got.data.split(b"\r\n")
    assert b"MAIL FROM:<ceo@corp.example>" in lines  # carried as text of the approved mail
    # the three lone dots arrived as lines of this one mail (stuffed on the wire, unstuffed by
    # the sink), and so did everything after them: nothing ended the data early
    assert lines.count(b".") == 3
    assert lines[-2:] == [b"end", b""]
