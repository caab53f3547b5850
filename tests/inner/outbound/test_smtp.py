"""The outbound SMTP intake with a real aiosmtpd server and smtplib: internal clients are
spooled durably before 250; others get 554 at the greeting."""

from __future__ import annotations

import ipaddress
import smtplib
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import SMTP

import pytest

from inner_agent.images import shrink_image
from inner_agent.notify import NotifyOptions, build_notifications
from inner_agent.outbound.smtp import OutboundIntake, OutboundSmtpServer, is_allowed
from inner_agent.outbound.spool import Spool
from tests.inner.helpers import checked
from tests.support.outbound import LoopThread, plain_mail


@pytest.fixture
def loop():
    thread = LoopThread()
    yield thread
    thread.close()


# The bridge's own senders: notifications (and postmaster reports), approval notices.
OWN = ("maildiode@corp.example", "maildiode-approval@corp.example")


def start(
    loop,
    tmp_path,
    networks,
    accepted,
    *,
    max_recipients=3,
    fail_store=False,
    min_free_bytes=0,
    holds_lease=lambda _what: True,
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
        own_addresses=OWN,
        holds_lease=holds_lease,
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


def test_an_agent_without_the_lease_refuses_at_mail_with_451(loop, tmp_path):
    """The standby took over (or the lease could not be renewed): the internal server is told
    to try again, and nothing is spooled here."""
    accepted, asked = [], []
    server, spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted,
                          holds_lease=lambda what: asked.append(what) and False)  # fmt: skip
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as refused:
            client.sendmail("kim@corp.example", ["a@example.com"], plain_mail())
    assert refused.value.smtp_code == 451
    assert b"no longer holds its state's lease" in refused.value.smtp_error
    assert asked == ["accepting mail"]
    assert accepted == []
    assert spool.ids() == []
    loop.call(server.stop())


def test_a_lease_lost_while_the_client_sends_its_data_is_451_at_data(loop, tmp_path):
    accepted = []
    server, spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted,
                          holds_lease=lambda what: what != "spooling mail")  # fmt: skip
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("kim@corp.example", ["a@example.com"], plain_mail())
    assert refused.value.smtp_code == 451
    assert accepted == []
    assert spool.ids() == []
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


def _notification(rcpt: str = "user@corp.example") -> bytes:
    """A notification as the inner agent builds it for an inbound mail."""
    (raw,) = build_notifications(
        checked(rcpt=(rcpt,)), NotifyOptions(from_address=OWN[0]), shrink=shrink_image, now=1.8e9
    )
    return raw


def test_a_notification_relayed_back_is_refused_at_mail_from(loop, tmp_path):
    """Issue 15.1, the loop: the internal server turned a notification's percent-hack recipient
    into an external one and relayed it here; its envelope sender is the bridge's own."""
    accepted = []
    server, _spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted)
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        with pytest.raises(smtplib.SMTPSenderRefused) as caught:
            client.sendmail(OWN[0], ["victim@gmail.com"], _notification())
        with pytest.raises(smtplib.SMTPSenderRefused) as approval:
            client.sendmail(OWN[1].upper(), ["victim@gmail.com"], plain_mail())
    assert caught.value.smtp_code == 550
    assert caught.value.smtp_error.startswith(b"5.7.1")
    assert b"own" in caught.value.smtp_error
    assert approval.value.smtp_code == 550
    assert accepted == []
    loop.call(server.stop())


@pytest.mark.parametrize(
    ("sender", "data"),
    [
        ("", None),  # a null sender (the internal server rewrote or bounced it): the marker
        ("srs0=ab=cd@corp.example", None),
        ("kim@corp.example", plain_mail(sender="maildiode-approval@corp.example")),  # From:
        ("kim@corp.example", plain_mail(sender="Maildiode <MAILDIODE@corp.example>")),
    ],
)
def test_mail_carrying_our_marker_or_our_from_is_refused_at_data(loop, tmp_path, sender, data):
    accepted = []
    server, spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted)
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        client.ehlo()
        assert client.mail(sender)[0] == 250
        assert client.rcpt("victim@gmail.com")[0] == 250
        code, text = client.data(data or _notification())
    assert code == 550
    assert text.startswith(b"5.7.1")
    assert accepted == []
    assert spool.ids() == []  # nothing was stored
    loop.call(server.stop())


def test_an_employee_forwarding_a_notification_as_an_attachment_is_not_refused(loop, tmp_path):
    """Only the mail's own headers count: a notification inside it is content."""
    accepted = []
    server, _spool = start(loop, tmp_path, ["127.0.0.0/8"], accepted)
    forward = EmailMessage()
    forward["From"] = "kim@corp.example"
    forward["To"] = "partner@example.com"
    forward["Subject"] = "Fwd: the quote"
    forward.set_content("see attached")
    forward.add_attachment(message_from_bytes(_notification(), policy=SMTP))  # message/rfc822
    with smtplib.SMTP("127.0.0.1", server.port) as client:
        assert (
            client.sendmail(
                "kim@corp.example", ["partner@example.com"], forward.as_bytes(policy=SMTP)
            )
            == {}
        )
    assert len(accepted) == 1
    loop.call(server.stop())
