"""The outbound SMTP intake with a real aiosmtpd server and smtplib: internal clients are
spooled durably before 250; others get 554 at the greeting."""

from __future__ import annotations

import ipaddress
import smtplib

import pytest

from inner_agent.outbound.smtp import OutboundIntake, OutboundSmtpServer, is_allowed
from inner_agent.outbound.spool import Spool
from tests.support.outbound import LoopThread, plain_mail


@pytest.fixture
def loop():
    thread = LoopThread()
    yield thread
    thread.close()


def start(
    loop, tmp_path, networks, accepted, *, max_recipients=3, fail_store=False, min_free_bytes=0
):
    spool = Spool(tmp_path / "spool")
    if fail_store:

        def broken(mail, data):
            raise OSError(28, "No space left on device")

        spool.store = broken
    intake = OutboundIntake(
        spool,
        [ipaddress.ip_network(n) for n in networks],
        max_recipients=max_recipients,
        on_accepted=accepted.append,
        min_free_bytes=min_free_bytes,
    )
    server = OutboundSmtpServer(
        intake, host="127.0.0.1", port=0, hostname="inner.test", max_message_bytes=10_000
    )
    loop.call(server.start())
    return server, spool


def test_internal_client_is_spooled_before_250(loop, tmp_path):
    accepted = []
    server, spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted)
    data = plain_mail()
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        refused = client.sendmail("kim@corp.example", ["a@example.com", "b@example.org"], data)
    assert refused == {}
    (mail,) = accepted
    stored, stored_data = spool.load(mail.mail_id)
    assert stored.rcpt_to == ("a@example.com", "b@example.org")
    assert stored_data == data
    loop.call(server.stop())


def test_outside_client_gets_554(loop, tmp_path):
    accepted = []
    server, _spool = start(loop, tmp_path, ["10.0.0.0/8"], accepted)
    with pytest.raises(smtplib.SMTPConnectError) as caught:
        smtplib.SMTP("127.0.0.1", server.port)
    assert caught.value.smtp_code == 554
    assert accepted == []
    loop.call(server.stop())


def test_limits_and_storage_failure(loop, tmp_path):
    accepted = []
    server, _spool = start(
        loop, tmp_path, ["127.0.0.1/32"], accepted, max_recipients=1, fail_store=True
    )
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        client.mail("kim@corp.example")
        assert client.rcpt("a@example.com")[0] == 250
        assert client.rcpt("b@example.com")[0] == 452
        code, _ = client.data(plain_mail())
    assert code == 451  # not stored: never 250
    assert accepted == []
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail("kim@corp.example", ["a@example.com"], b"x" * 20_000)
    assert caught.value.smtp_code == 552
    loop.call(server.stop())


def test_is_allowed():
    nets = [ipaddress.ip_network("10.1.0.0/16"), ipaddress.ip_network("fd00::/8")]
    assert is_allowed("10.1.2.3", nets)
    assert is_allowed("::ffff:10.1.2.3", nets)
    assert is_allowed("fd00::1", nets)
    assert not is_allowed("10.2.0.1", nets)
    assert not is_allowed("garbage", nets)


def test_full_disk_answers_452_before_taking_the_mail(loop, tmp_path):
    accepted = []
    server, _spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted, min_free_bytes=1 << 62)
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail("kim@corp.example", ["a@example.com"], plain_mail())
    assert caught.value.smtp_code == 452
    assert accepted == []
    loop.call(server.stop())
