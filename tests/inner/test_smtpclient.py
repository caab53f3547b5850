"""The injection SMTP client against a real Postfix (PIPELINING) and aiosmtpd (without it)."""

from __future__ import annotations

import email
import random
import shutil
import smtplib
import ssl
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from inner_agent.smtpclient import Hop, Session, TemporaryFailure, dot_stuffed
from maildiode.trial.stack import free_port, wait_for
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
def postfix_tls() -> Iterator[tuple[Path, ssl.SSLContext]]:
    """A certificate for Postfix's STARTTLS, and a client context that trusts it."""
    ca = trustme.CA()
    folder = Path(tempfile.mkdtemp(prefix="maildiode-tls-", dir="/var/tmp"))
    issued = ca.issue_cert("127.0.0.1")
    issued.private_key_and_cert_chain_pem.write_to_path(str(folder / "server.pem"))
    client = ssl.create_default_context()
    ca.configure_trust(client)
    yield folder / "server.pem", client
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def postfix(postfix_tls: tuple[Path, ssl.SSLContext]) -> Iterator[PostfixInstance]:
    pem, _ = postfix_tls
    tls = f"smtpd_tls_security_level = may\nsmtpd_tls_chain_files = {pem}\n"
    with PostfixInstance(domain=DOMAIN, extra_main_cf=REFUSING + tls) as instance:
        yield instance


def _delivered(postfix: PostfixInstance, count: int) -> list[email.message.Message]:
    wait_for(lambda: len(postfix.messages()) >= count, 30, "Postfix delivered the messages")
    return [email.message_from_bytes(p.read_bytes()) for p in postfix.messages()]


def _session(port: int) -> Session:
    return Session(Hop("127.0.0.1", port, timeout_s=10))


def test_dot_stuffing_is_smtplibs() -> None:
    assert dot_stuffed(b".x\r\ny\r\n.\r\n") == b"..x\r\ny\r\n..\r\n.\r\n"
    assert dot_stuffed(b"no newline") == b"no newline\r\n.\r\n"


def test_dot_stuffing_matches_smtplib_on_random_lines() -> None:
    """Byte for byte what smtplib.SMTP.data sends, for messages dense in dots and breaks."""
    pieces = [b".", b"..", b"\r\n", b"\n", b"\r", b"a", b"\r\n.", b"\n.\n"]
    chooser = random.Random(14)
    for _ in range(2000):
        message = b"".join(chooser.choice(pieces) for _ in range(chooser.randrange(0, 30)))
        expected = smtplib._quote_periods(message)  # type: ignore[attr-defined]
        if expected[-2:] != b"\r\n":
            expected += b"\r\n"
        assert dot_stuffed(message) == expected + b".\r\n", message


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


def test_pipelined_after_starttls_with_postfix(
    postfix: PostfixInstance, postfix_tls: tuple[Path, ssl.SSLContext]
) -> None:
    _, client_context = postfix_tls
    hop = Hop("127.0.0.1", postfix.port, starttls="required", tls_context=client_context,
              timeout_s=10)  # fmt: skip
    session = Session(hop)
    before = len(postfix.messages())
    try:
        for _ in range(2):
            assert session.send("a@corp.example", [f"u@{DOMAIN}"], BODY).accepted
    finally:
        session.close()
    delivered = _delivered(postfix, before + 2)[-1]
    assert "with ESMTPS " in delivered["Received"]  # RFC 3848: ESMTP over TLS


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


def test_a_server_that_is_down_is_a_temporary_failure() -> None:
    with pytest.raises(TemporaryFailure):
        _session(free_port()).send("a@corp.example", [f"u@{DOMAIN}"], BODY)


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
    port = free_port()
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


def _tls_contexts() -> tuple[ssl.SSLContext, ssl.SSLContext]:
    ca = trustme.CA()
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


@pytest.fixture
def tls_server() -> Iterator[tuple[_Recorder, int, ssl.SSLContext, list[bytes]]]:
    """aiosmtpd requiring STARTTLS and AUTH PLAIN (password "s3cret")."""
    server_context, client_context = _tls_contexts()
    logins: list[bytes] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append(auth_data.login)
        return AuthResult(success=auth_data.password == b"s3cret", handled=False)

    recorder, port = _Recorder(), free_port()
    controller = Controller(
        recorder, hostname="127.0.0.1", port=port, tls_context=server_context,
        require_starttls=True, authenticator=authenticator, auth_required=True,
        auth_exclude_mechanism=["LOGIN"],  # PLAIN only: a refusal ends the login at once
    )  # fmt: skip
    controller.start()
    yield recorder, port, client_context, logins
    controller.stop()


def test_starttls_and_auth(tls_server: tuple[_Recorder, int, ssl.SSLContext, list[bytes]]) -> None:
    recorder, port, client_context, logins = tls_server
    hop = Hop("127.0.0.1", port, starttls="required", tls_context=client_context,
              username="inner", password="s3cret", timeout_s=10)  # fmt: skip
    session = Session(hop)
    try:
        for _ in range(2):  # one session: TLS and login once
            assert session.send("a@corp.example", ["u@corp.example"], BODY).accepted
    finally:
        session.close()
    assert recorder.received == [BODY, BODY]
    assert logins == [b"inner"]


def test_a_wrong_password_keeps_the_message_waiting(
    tls_server: tuple[_Recorder, int, ssl.SSLContext, list[bytes]],
) -> None:
    """535 is about our configuration, not the message: temporary, never a bounce."""
    recorder, port, client_context, _ = tls_server
    hop = Hop("127.0.0.1", port, starttls="required", tls_context=client_context,
              username="inner", password="wrong", timeout_s=10)  # fmt: skip
    with pytest.raises(TemporaryFailure, match="session set-up: 535"):
        Session(hop).send("a@corp.example", ["u@corp.example"], BODY)
    assert recorder.received == []


def test_required_starttls_is_never_skipped() -> None:
    recorder, port = _Recorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)  # offers no STARTTLS
    controller.start()
    try:
        required = Session(Hop("127.0.0.1", port, starttls="required", timeout_s=10))
        with pytest.raises(TemporaryFailure, match="does not offer STARTTLS"):
            required.send("a@corp.example", ["u@corp.example"], BODY)
        opportunistic = Session(Hop("127.0.0.1", port, starttls="opportunistic", timeout_s=10))
        assert opportunistic.send("a@corp.example", ["u@corp.example"], BODY).accepted
        opportunistic.close()
    finally:
        controller.stop()
    assert recorder.received == [BODY]
