"""The injection SMTP client against a real Postfix (PIPELINING) and aiosmtpd (without it)."""

from __future__ import annotations

import email
import socket
import time
from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from inner_agent.smtpclient import Hop, Session, TemporaryFailure, dot_stuffed
from maildiode.demo.stack import wait_for
from tests.support.postfix import PostfixInstance

DOMAIN = "corp.example"
# Per-recipient answers, checked before the usual rules; smtpd drops idle clients after 1 s.
REFUSING = f"""
smtpd_recipient_restrictions =
    check_recipient_access inline:{{ {{ refuse@{DOMAIN} = 550 5.1.1 no such user }},
        {{ later@{DOMAIN} = 450 4.2.1 mailbox busy }} }},
    permit_mynetworks, reject_unauth_destination
smtpd_timeout = 1s
"""

BODY = (
    b"From: a@corp.example\r\nTo: u@corp.example\r\nSubject: dots\r\n\r\n"
    b".a line that starts with a dot\r\n..two dots\r\n.\r\nlast line\r\n"
)


@pytest.fixture(scope="module")
def postfix() -> Iterator[PostfixInstance]:
    with PostfixInstance(domain=DOMAIN, extra_main_cf=REFUSING) as instance:
        yield instance


def _delivered(postfix: PostfixInstance, count: int) -> list[email.message.Message]:
    wait_for(lambda: len(postfix.messages()) >= count, 30, "Postfix delivered the messages")
    return [email.message_from_bytes(p.read_bytes()) for p in postfix.messages()]


def _session(port: int) -> Session:
    return Session(Hop("127.0.0.1", port, timeout_s=10))


def test_dot_stuffing_is_smtplibs() -> None:
    assert dot_stuffed(b".x\r\ny\r\n.\r\n") == b"..x\r\ny\r\n..\r\n.\r\n"
    assert dot_stuffed(b"no newline") == b"no newline\r\n.\r\n"


def test_pipelined_transactions_reach_postfix_intact(postfix: PostfixInstance) -> None:
    session = _session(postfix.port)
    before = len(postfix.messages())
    try:
        for _ in range(3):  # the same connection, no RSET between messages
            outcome = session.send("a@corp.example", [f"u@{DOMAIN}"], BODY)
            assert outcome.accepted == (f"u@{DOMAIN}",)
            assert outcome.reply.startswith("250 ")
    finally:
        session.close()
    body = _delivered(postfix, before + 3)[-1].get_payload()
    assert body == ".a line that starts with a dot\n..two dots\n.\nlast line\n"


def test_recipients_are_sorted_by_their_replies(postfix: PostfixInstance) -> None:
    session = _session(postfix.port)
    try:
        rcpts = [f"refuse@{DOMAIN}", f"u@{DOMAIN}", f"later@{DOMAIN}"]
        outcome = session.send("a@corp.example", rcpts, BODY)
        assert outcome.accepted == (f"u@{DOMAIN}",)
        assert outcome.permanent == (f"refuse@{DOMAIN}",)
        assert outcome.temporary == (f"later@{DOMAIN}",)
        assert outcome.reply.startswith("250 ")
        assert f"refuse@{DOMAIN}: 550 5.1.1" in outcome.reply
        assert f"later@{DOMAIN}: 450 4.2.1" in outcome.reply
        # Nobody accepted: DATA is refused, nothing is sent, and the connection stays usable.
        nobody = session.send("a@corp.example", [f"refuse@{DOMAIN}"], BODY)
        assert nobody.accepted == ()
        assert nobody.permanent == (f"refuse@{DOMAIN}",)
        again = session.send("a@corp.example", [f"u@{DOMAIN}"], BODY)
        assert again.accepted == (f"u@{DOMAIN}",)
    finally:
        session.close()


def test_a_connection_the_server_closed_is_replaced_at_once(postfix: PostfixInstance) -> None:
    session = _session(postfix.port)
    try:
        assert session.send("a@corp.example", [f"u@{DOMAIN}"], BODY).accepted
        time.sleep(2.5)  # Postfix's smtpd_timeout (1 s) drops the idle connection
        outcome = session.send("a@corp.example", [f"u@{DOMAIN}"], BODY)
        assert outcome.accepted == (f"u@{DOMAIN}",)
    finally:
        session.close()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_a_server_that_is_down_is_a_temporary_failure() -> None:
    with pytest.raises(TemporaryFailure):
        _session(_free_port()).send("a@corp.example", [f"u@{DOMAIN}"], BODY)


class _Recorder:
    def __init__(self) -> None:
        self.received: list[bytes] = []

    async def handle_MAIL(self, server, session, envelope, address, options):
        if address.startswith("blocked@"):
            return "553 5.7.1 sender refused"
        if address.startswith("busy@"):
            return "451 4.3.0 try later"
        envelope.mail_from = address
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.received.append(envelope.original_content)
        return "250 2.0.0 queued"


def test_without_pipelining_one_command_at_a_time() -> None:
    recorder = _Recorder()
    port = _free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        session = _session(port)
        assert session.send("a@corp.example", ["u@corp.example"], BODY).accepted
        refused = session.send("blocked@corp.example", ["u@corp.example"], BODY)
        assert refused.permanent == ("u@corp.example",)
        assert "553 5.7.1" in refused.reply
        with pytest.raises(TemporaryFailure, match="451"):
            session.send("busy@corp.example", ["u@corp.example"], BODY)
        assert session.send("a@corp.example", ["u@corp.example"], BODY).accepted
        session.close()
    finally:
        controller.stop()
    assert len(recorder.received) == 2
    assert recorder.received[0] == BODY  # the server undid the dot-stuffing exactly
