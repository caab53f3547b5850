"""OutboundService as a unit: start, accept over SMTP, stop, start again — a held mail and
its request survive the restart and can still be approved and published; a link token issued
before the restart still works after it."""

from __future__ import annotations

import smtplib
from types import SimpleNamespace

import pytest

from inner_agent.outbound.approval import Event
from inner_agent.outbound.service import OutboundService
from tests.support.documents import make_mail, make_screenshot
from tests.support.outbound import RecordingPublisher, rrn_mail, start_outbound, wait_for


def test_held_mail_survives_a_restart(tmp_path):
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com"], rrn_mail())
        state = running.service.workflow.state
        request = wait_for(lambda: state.pending_requests(), what="held mail")[0]
        token = running.service.workflow.issue_token(request, "lee@corp.example")
        running.loop.call(running.service.stop())

        again = OutboundService(
            SimpleNamespace(outbound=running.section), running.service.audit, publisher=publisher
        )
        running.loop.call(again.start())
        running.service = again
        workflow = again.workflow
        assert [r.request_id for r in workflow.state.pending_requests()] == [request.request_id]
        workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
        again.wake()
        wait_for(lambda: publisher.published, what="publication after the restart")
        assert workflow.state.mail(request.mail_id).state == "sent"
    finally:
        running.stop()


def test_config_without_outbound_is_refused():
    with pytest.raises(ValueError, match=r"no \[outbound\] section"):
        OutboundService(SimpleNamespace(outbound=None), audit=None)


def test_busy_web_port_is_a_clear_error_and_nothing_stays_running(tmp_path):
    import socket

    from tests.support.outbound import LoopThread, MemoryAudit, fill_directory, make_section

    section = make_section(tmp_path)
    fill_directory(section)
    busy = socket.socket()
    busy.bind(("127.0.0.1", int(section.web.listen.rpartition(":")[2])))
    busy.listen(1)
    loop = LoopThread()
    service = OutboundService(
        SimpleNamespace(outbound=section), MemoryAudit(), publisher=RecordingPublisher()
    )
    try:
        with pytest.raises(OSError, match=f"cannot listen on {section.web.listen}"):
            loop.call(service.start())
        probe = socket.socket()
        probe.bind(("127.0.0.1", int(section.listen.rpartition(":")[2])))  # SMTP port released
        probe.close()
    finally:
        busy.close()
        loop.close()


def test_a_conflicting_republish_keeps_the_first_version(tmp_path) -> None:
    """An id already published with other content (a bundle from before bundles were rebuilt
    identically) is not refused forever: the first version is on the link and stays."""
    from agentkit.links import LinkPublisher
    from protocol import FolderTransport, Sender
    from tests.protocol.golden import KEY_A

    sender = Sender(tmp_path / "state", "outbound", KEY_A, FolderTransport(tmp_path / "send"))
    publisher = LinkPublisher(sender)
    try:
        first = publisher.publish(b"first version", b"\x01" * 16)
        assert first == 1
        assert publisher.publish(b"first version", b"\x01" * 16) == 1  # idempotent
        # kept, not raised: the seq the first version is on the link under
        assert publisher.publish(b"other content", b"\x01" * 16) == 1
        assert sender.last_seq == 1
    finally:
        publisher.close()


@pytest.mark.parametrize("ocr", ["auto", False])
def test_a_screenshot_of_a_list_is_held_when_ocr_is_on(tmp_path, ocr) -> None:
    """The agent reads pictures with the installed Tesseract by default ("auto"); with OCR
    off the same mail leaves unheld, as the pixels are not read."""
    screenshot = make_screenshot(["고객 명단", "김철수 주민등록번호 800101-1234560"])
    raw = make_mail(text="첨부 확인 부탁드립니다.", attachments=[("명단.png", screenshot)])
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher, ocr=ocr)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com"], raw)
        state = running.service.workflow.state
        if ocr == "auto":
            request = wait_for(lambda: state.pending_requests(), what="held mail")[0]
            assert state.mail(request.mail_id).state == "held"
            assert publisher.published == []
        else:
            wait_for(lambda: publisher.published, what="the mail published unheld")
            assert state.pending_requests() == []
    finally:
        running.stop()
