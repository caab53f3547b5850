"""Approved outbound mail across the out link, delivered by the running agent; a refusal comes
back inside as a rendered notice to the sender."""

from __future__ import annotations

import os

import pytest

from agentkit.audit import AuditLog
from tests.outer.agent_support import AgentProcess, InnerSide, make_agent_dir, wait_for
from tests.outer.sinks import FaultySink, start_sink

pytestmark = pytest.mark.e2e

ORIGINAL = (
    "From: 직원 <emp@corp.example>\r\nTo: partner@ext.example\r\nSubject: 견적서 송부\r\n"
    "Message-ID: <out-1@corp.example>\r\nContent-Type: text/plain; charset=utf-8\r\n"
    "Content-Transfer-Encoding: 8bit\r\n\r\n첨부한 견적서를 확인해 주십시오.\r\n.\r\n..\r\n"
).encode()


def outbound_mail():
    from mailsafe.payload import OutboundMail

    return OutboundMail(
        mail_id="out-1",
        mail_from="emp@corp.example",
        rcpt_to=("partner@ext.example",),
        data=ORIGINAL,
        decided_by="head@corp.example",
        decided_at="2026-11-23T10:00:00Z",
    )


@pytest.mark.parametrize("replies", [["451 4.3.0 busy", "250 2.0.0 OK"]])
def test_relay_receives_the_original_bytes_after_a_temporary_refusal(tmp_path, replies):
    sink = FaultySink(replies=replies)
    controller = start_sink(sink)
    directory = make_agent_dir(tmp_path, relay=f"127.0.0.1:{controller.port}")
    process = AgentProcess(directory)
    process.start()
    try:
        InnerSide(directory, tmp_path / "inner").publish_outbound(outbound_mail(), os.urandom(16))
        wait_for(lambda: sink.received, timeout=60)
    finally:
        process.stop()
        controller.stop()
    [got] = sink.received
    assert got.data == ORIGINAL
    assert got.mail_from == "emp@corp.example"
    assert got.rcpt_to == ["partner@ext.example"]
    assert sink.data_calls == 2
    steps = [e.step for e in AuditLog(directory.audit_path).query(mail_id="out-1")]
    assert steps == ["received_outbound", "delivered"]


def test_permanent_refusal_becomes_a_notice_to_the_sender_through_the_inbound_path(tmp_path):
    sink = FaultySink(replies=["550 5.7.1 rejected by policy"])
    controller = start_sink(sink)
    directory = make_agent_dir(tmp_path, relay=f"127.0.0.1:{controller.port}")
    process = AgentProcess(directory)
    process.start()
    inner = InnerSide(directory, tmp_path / "inner")
    try:
        inner.publish_outbound(outbound_mail(), os.urandom(16))
        wait_for(lambda: inner.poll(), timeout=60)
    finally:
        process.stop()
        controller.stop()
    [(_bundle, package)] = inner.packages()
    manifest = package.manifest
    assert manifest.envelope.rcpt_to == ("emp@corp.example",)
    assert manifest.envelope.mail_from == ""
    assert "전송 실패" in manifest.headers.subject
    assert sink.received == []
    steps = [e.step for e in AuditLog(directory.audit_path).query(mail_id="out-1")]
    assert steps == ["received_outbound", "bounced"]
