"""The SMTP intake against real clients (smtplib, swaks): relay refusal, limits, TLS, durability."""

from __future__ import annotations

import logging
import smtplib
import socket
import ssl
import subprocess

import pytest
import trustme

from outer_agent.spool import decode_segment
from tests.outer.conftest import start_intake

MAIL = b"From: a@ext.example\r\nTo: u@corp.example\r\nSubject: hi\r\n\r\nbody line\r\n.dot line\r\n"


def stored(intake):
    """Every mail durable in the spool (incoming segments, in order)."""
    folder = intake.spool.folder("incoming")
    return [
        r for name in sorted(folder.iterdir()) for r in decode_segment(name.read_bytes(), name.name)
    ]


def test_accepted_mail_is_in_the_spool_byte_for_byte_with_its_envelope(intake):
    with smtplib.SMTP("127.0.0.1", intake.port, local_hostname="client.ext.example") as client:
        refused = client.sendmail("a@ext.example", ["u@corp.example", "v@CORP.example"], MAIL)
    assert refused == {}
    [record] = stored(intake)
    assert record.payload == MAIL
    envelope = record.envelope
    assert envelope.mail_from == "a@ext.example"
    assert envelope.rcpt_to == ("u@corp.example", "v@CORP.example")
    assert envelope.helo == "client.ext.example"
    assert envelope.client_addr.startswith("127.0.0.1:")
    assert envelope.tls is False
    assert envelope.mail_id == envelope.bundle_id.hex()
    assert len(envelope.bundle_id) == 16
    assert intake.committed == [envelope]


def test_250_reply_names_the_mail_id(intake):
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        code, text = client.data(MAIL)
    assert code == 250
    assert text.decode().endswith(stored(intake)[0].envelope.mail_id)


@pytest.mark.parametrize(
    "rcpt", ["x@other.example", "u@corp.example.evil", "u@sub.corp.example", "postmaster"]
)
def test_no_open_relay(intake, rcpt):
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        code, text = client.rcpt(rcpt)
    assert code == 550
    assert text.startswith(b"5.7.1")
    assert stored(intake) == []


@pytest.mark.parametrize(
    "rcpt",
    [
        "victim%gmail.com@corp.example",  # the percent hack: Postfix makes it victim@gmail.com
        "gmail.com!victim@corp.example",  # a bang path: Postfix makes it victim@gmail.com
        '"victim@gmail.com"@corp.example',  # a quoted @: an address inside the local part
        '"victim%gmail.com"@corp.example',
        "VICTIM%GMAIL.COM@CORP.EXAMPLE",
    ],
)
def test_sender_specified_routing_is_refused_at_rcpt(intake, rcpt):
    """Issue 15.1: a local part that routes elsewhere would make the internal server relay the
    notification back to the internet; it is refused before DATA, whatever the domain."""
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        code, text = client.rcpt(f"<{rcpt}>")
        assert client.rcpt("u@corp.example")[0] == 250  # the session goes on
        assert client.data(MAIL)[0] == 250
    assert code == 550
    assert text.startswith(b"5.7.1")
    assert b"routing" in text
    [record] = stored(intake)
    assert record.envelope.rcpt_to == ("u@corp.example",)


def test_size_is_advertised_and_enforced(intake):
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        assert client.has_extn("size")
        assert int(client.esmtp_features["size"]) == 100_000
        assert client.has_extn("8bitmime")
        assert client.has_extn("smtputf8")
        code, _ = client.mail("a@ext.example", ["SIZE=200000"])
        assert code == 552
        client.rset()
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        code, _ = client.data(
            b"Subject: big\r\n\r\n" + b"x" * 120 + b"\r\n" * 1 + (b"y" * 998 + b"\r\n") * 120
        )
    assert code == 552
    assert stored(intake) == []


def test_recipient_count_is_capped(intake):
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        codes = [client.rcpt(f"u{i}@corp.example")[0] for i in range(6)]
    assert codes == [250] * 5 + [452]


def test_smtputf8_and_8bit_body_are_accepted(intake):
    body = "Subject: 안녕\r\n\r\n한국어 본문\r\n".encode()
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.sendmail(
            "보낸이@ext.example",
            ["받는이@corp.example"],
            body,
            mail_options=["SMTPUTF8", "BODY=8BITMIME"],
        )
    [record] = stored(intake)
    assert record.payload == body
    assert record.envelope.rcpt_to == ("받는이@corp.example",)


def _connect(port: int, source: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), source_address=(source, 0))
    sock.settimeout(5)
    return sock


def _greeting(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\r\n"):
        data += sock.recv(1024)
    return data


def test_sessions_per_client_address_are_capped(intake):
    held = [_connect(intake.port, "127.0.0.1") for _ in range(5)]
    try:
        assert all(_greeting(s).startswith(b"220") for s in held)
        extra = _connect(intake.port, "127.0.0.1")
        assert _greeting(extra).startswith(b"421 4.7.0")
        assert extra.recv(1024) == b""  # and the server hung up
        other = _connect(intake.port, "127.0.0.2")
        assert _greeting(other).startswith(b"220")  # other addresses still get in
        other.close()
    finally:
        for s in held:
            s.close()


def test_sessions_overall_are_capped_and_freed_on_close(tmp_path):
    running, stop = start_intake(tmp_path, max_sessions=3, max_sessions_per_ip=3)
    try:
        held = [_connect(running.port, f"127.0.0.{i}") for i in (2, 3, 4)]
        assert all(_greeting(s).startswith(b"220") for s in held)
        assert _greeting(_connect(running.port, "127.0.0.5")).startswith(b"421")
        held.pop().close()
        for _ in range(100):  # the server notices the close asynchronously
            probe = _connect(running.port, "127.0.0.5")
            if _greeting(probe).startswith(b"220"):
                break
            probe.close()
        else:
            pytest.fail("a closed session was never freed")
    finally:
        stop()


def test_spool_below_free_space_floor_answers_452_and_alarms(tmp_path, caplog):
    running, stop = start_intake(tmp_path, min_free_bytes=1 << 62)
    try:
        with caplog.at_level(logging.ERROR), smtplib.SMTP("127.0.0.1", running.port) as client:
            client.ehlo()
            code, text = client.mail("a@ext.example")
        assert code == 452
        assert text.startswith(b"4.3.1")
        assert stored(running) == []
        assert any(
            "ALARM" in r.getMessage() and "min_free_bytes" in r.getMessage() for r in caplog.records
        )
    finally:
        stop()


def test_space_running_out_during_data_answers_452_not_250(tmp_path):
    running, stop = start_intake(tmp_path)
    try:
        with smtplib.SMTP("127.0.0.1", running.port) as client:
            client.ehlo()
            client.mail("a@ext.example")
            client.rcpt("u@corp.example")
            running.spool.min_free_bytes = 1 << 62
            running.spool._free_checked_at = 0.0
            code, _ = client.data(MAIL)
        assert code == 452
        assert stored(running) == []
    finally:
        stop()


def test_a_write_error_never_gets_250(intake, monkeypatch):
    def broken(*args, **kwargs):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(intake.spool, "write_segment", broken)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        code, text = client.data(MAIL)
    assert code == 451
    assert text.startswith(b"4.3.0")


def test_a_folder_sync_error_never_gets_250(intake, monkeypatch):
    def broken(path):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr("protocol.durable.fsync_dir", broken)
    with smtplib.SMTP("127.0.0.1", intake.port) as client:
        client.ehlo()
        client.mail("a@ext.example")
        client.rcpt("u@corp.example")
        code, _ = client.data(MAIL)
    assert code == 451
    assert intake.committed == []


@pytest.fixture
def tls_pair(tmp_path):
    ca = trustme.CA()
    cert = ca.issue_cert("outer.test", "127.0.0.1")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(server)
    client = ssl.create_default_context()
    ca.configure_trust(client)
    return server, client


def test_starttls_is_offered_and_recorded(tmp_path, tls_pair):
    server_ctx, client_ctx = tls_pair
    running, stop = start_intake(tmp_path, tls=server_ctx)
    try:
        for _ in range(3):  # the first session and the cloned protocol objects after it
            with smtplib.SMTP("127.0.0.1", running.port) as client:
                client.ehlo()
                assert client.has_extn("starttls")
                client.starttls(context=client_ctx)
                client.sendmail("a@ext.example", ["u@corp.example"], MAIL)
        with smtplib.SMTP("127.0.0.1", running.port) as client:
            client.sendmail("a@ext.example", ["u@corp.example"], MAIL)
        assert [r.envelope.tls for r in stored(running)] == [True, True, True, False]
    finally:
        stop()


def test_auth_is_neither_advertised_nor_accepted_after_starttls(tmp_path, tls_pair):
    """Issue 15.8: the intake has no accounts, so EHLO after STARTTLS lists no AUTH and an AUTH
    command is refused as not enabled (no password-guessing target)."""
    server_ctx, client_ctx = tls_pair
    running, stop = start_intake(tmp_path, tls=server_ctx)
    try:
        for _ in range(2):  # the first session and a cloned protocol object
            with smtplib.SMTP(
                "127.0.0.1", running.port, local_hostname="client.ext.example"
            ) as client:
                client.ehlo()
                assert not client.has_extn("auth")
                client.starttls(context=client_ctx)
                code, _ = client.ehlo()
                assert code == 250
                assert client.has_extn("starttls") is False
                assert not client.has_extn("auth")
                assert client.has_extn("size")
                code, text = client.docmd("AUTH", "PLAIN AGZvbwBiYXI=")
                assert (code, text) == (503, b"5.5.1 Error: authentication not enabled")
                assert client.sendmail("a@ext.example", ["u@corp.example"], MAIL) == {}
        # EHLO still records the client's name (the envelope carries it)
        assert [r.envelope.helo for r in stored(running)] == ["client.ext.example"] * 2
    finally:
        stop()


def test_concurrent_sessions_keep_their_own_envelopes(intake):
    clients = [smtplib.SMTP("127.0.0.1", intake.port) for _ in range(4)]
    try:
        for i, client in enumerate(clients):
            client.ehlo(f"client{i}.ext.example")
            client.mail(f"s{i}@ext.example")
            client.rcpt(f"u{i}@corp.example")
        for i, client in reversed(list(enumerate(clients))):
            assert client.data(b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i))[0] == 250
    finally:
        for client in clients:
            client.quit()
    seen = {
        (r.envelope.helo, r.envelope.mail_from, r.envelope.rcpt_to, r.payload)
        for r in stored(intake)
    }
    assert seen == {
        (
            f"client{i}.ext.example",
            f"s{i}@ext.example",
            (f"u{i}@corp.example",),
            b"Subject: %d\r\n\r\nbody %d\r\n" % (i, i),
        )
        for i in range(4)
    }


def test_require_tls_refuses_mail_in_clear(tmp_path, tls_pair):
    server_ctx, client_ctx = tls_pair
    running, stop = start_intake(tmp_path, tls=server_ctx, require_tls=True)
    try:
        with smtplib.SMTP("127.0.0.1", running.port) as client:
            client.ehlo()
            code, _ = client.mail("a@ext.example")
            assert code == 530
            client.starttls(context=client_ctx)
            client.ehlo()
            assert client.mail("a@ext.example")[0] == 250
    finally:
        stop()


def test_swaks_delivers_and_is_refused_for_foreign_domains(intake):
    ok = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{intake.port}",
            "--from",
            "a@ext.example",
            "--to",
            "u@corp.example",
            "--body",
            "hello from swaks",
            "--hide-all",
        ],
        capture_output=True,
        timeout=30,
    )
    assert ok.returncode == 0, ok.stderr
    refused = subprocess.run(
        [
            "swaks",
            "--server",
            f"127.0.0.1:{intake.port}",
            "--from",
            "a@ext.example",
            "--to",
            "x@other.example",
            "--quit-after",
            "RCPT",
        ],
        capture_output=True,
        timeout=30,
        text=True,
    )
    assert refused.returncode != 0
    assert "550 5.7.1" in refused.stdout
    [record] = stored(intake)
    assert b"hello from swaks" in record.payload


@pytest.mark.parametrize(
    "arg",
    ["", "<>", "<a@corp.example>", "<a@corp.example> SIZE=100 BODY=8BITMIME", "a@corp.example",
     "  <a@corp.example>", "<a@b@c>", "<@route:a@corp.example>", "<\"q u\"@corp.example>",
     "<bad", "<>>", "<a@corp.example", "x" * 70 + "@corp.example", "<" + "x" * 70 + "@c.example>",
     "<한글@corp.example>", "<a@[127.0.0.1]>", "(comment) a@corp.example", "<a@corp.example>\t"],
)  # fmt: skip
@pytest.mark.parametrize("limit", [0, 64])
def test_address_parsing_matches_aiosmtpd(arg: str, limit: int) -> None:
    """LimitedSMTP._getaddr is aiosmtpd's without a class created per call: same answers."""
    from aiosmtpd.smtp import SMTP

    from outer_agent.smtp import LimitedSMTP

    ours, theirs = LimitedSMTP.__new__(LimitedSMTP), SMTP.__new__(SMTP)
    ours.local_part_limit = theirs.local_part_limit = limit
    expected = theirs._getaddr(arg)
    assert ours._getaddr(arg) == (
        expected if expected[0] is None else (str(expected[0]), str(expected[1]))
    )
