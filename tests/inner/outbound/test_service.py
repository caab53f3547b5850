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


def test_an_agent_that_lost_the_lease_takes_in_and_publishes_nothing(tmp_path) -> None:
    """Behind a closed fence (the standby took the lease) the worker's passes publish nothing,
    not even a mail accepted just before, and the intake answers 451."""
    import time

    from inner_agent.outbound.spool import SpooledMail, new_mail_id
    from tests.support.outbound import SwitchableFence, plain_mail

    publisher, fence = RecordingPublisher(), SwitchableFence()
    running = start_outbound(tmp_path, publisher=publisher, fence=fence)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com"], plain_mail())
        wait_for(lambda: publisher.published, what="the first mail published")
        fence.close("the lease (token 1) is now held by inner-b (token 2)")
        service = running.service
        late = SpooledMail(mail_id=new_mail_id(), mail_from="kim@corp.example",
                           rcpt_to=("partner@example.com",), received_at=time.time(),
                           client_addr="127.0.0.1", helo="mx.corp.example")  # fmt: skip
        service.workflow.spool.store(late, plain_mail())
        service.workflow.accepted(late)
        running.loop.call(service.run_once())
        time.sleep(0.5)  # the worker's own passes (poll_s 0.05) would have published it
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            with pytest.raises(smtplib.SMTPSenderRefused) as refused:
                client.sendmail("kim@corp.example", ["partner@example.com"], plain_mail())
        assert refused.value.smtp_code == 451
        assert len(publisher.published) == 1
        assert service.workflow.state.mail(late.mail_id).state == "received"
    finally:
        running.stop()


def test_a_closed_fence_puts_nothing_on_the_link(tmp_path) -> None:
    from agentkit.leasekeeper import FenceClosed
    from agentkit.links import LinkPublisher
    from protocol import FolderTransport, Sender
    from tests.protocol.golden import KEY_A
    from tests.support.outbound import SwitchableFence

    fence = SwitchableFence()
    sender = Sender(tmp_path / "state", "outbound", KEY_A, FolderTransport(tmp_path / "send"))
    publisher = LinkPublisher(sender, fence=fence)
    try:
        publisher.publish(b"first", b"1" * 16)
        sent = sorted((tmp_path / "send").iterdir())
        fence.close("the lease (token 1) was not renewed in time")
        for attempt in (
            lambda: publisher.publish(b"second", b"2" * 16),
            lambda: publisher.publish_many([(b"third", b"3" * 16)]),
            publisher.heartbeat_if_due,
        ):
            with pytest.raises(FenceClosed, match="not renewed in time"):
                attempt()
        assert sorted((tmp_path / "send").iterdir()) == sent
    finally:
        publisher.close()


def test_a_decision_behind_a_closed_fence_is_not_stored(tmp_path) -> None:
    """An approver's click reaching an agent that lost the lease stores nothing: the request
    stays pending for the new holder's approvers' pages."""
    from agentkit.leasekeeper import FenceClosed
    from tests.support.outbound import SwitchableFence

    publisher, fence = RecordingPublisher(), SwitchableFence()
    running = start_outbound(tmp_path, publisher=publisher, fence=fence)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com"], rrn_mail())
        workflow = running.service.workflow
        request = wait_for(lambda: workflow.state.pending_requests(), what="held mail")[0]
        token = workflow.issue_token(request, "lee@corp.example")
        fence.close("the lease (token 1) is now held by inner-b (token 2)")
        with pytest.raises(FenceClosed, match="inner-b"):
            workflow.decide(request.request_id, "lee@corp.example", Event.APPROVE, token)
        assert [r.request_id for r in workflow.state.pending_requests()] == [request.request_id]
        assert workflow.state.mail(request.mail_id).state == "held"
        assert publisher.published == []
    finally:
        running.stop()
