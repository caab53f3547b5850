"""The whole outer agent as a process: SMTP in, signed chunks out; SIGTERM; delivery out."""

from __future__ import annotations

import smtplib

import pytest

from tests.outer.agent_support import AgentProcess, InnerSide, make_agent_dir, wait_for

pytestmark = pytest.mark.e2e

MAIL = (
    b"From: Partner <p@ext.example>\r\nTo: u@corp.example\r\nSubject: =?utf-8?b?7JWI64WV?=\r\n"
    b"Message-ID: <m1@ext.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    + "안녕하세요\r\n".encode()
)


@pytest.fixture
def agent(tmp_path):
    directory = make_agent_dir(tmp_path)
    process = AgentProcess(directory)
    process.start()
    yield directory, process
    process.stop()


def test_mail_in_signed_package_out_with_envelope_and_audit(agent, tmp_path):
    directory, process = agent
    with smtplib.SMTP("127.0.0.1", directory.port, local_hostname="mx.ext.example") as client:
        client.sendmail("p@ext.example", ["u@corp.example"], MAIL)
    inner = InnerSide(directory, tmp_path / "inner")
    wait_for(lambda: inner.poll())
    [(bundle, package)] = inner.packages()
    manifest = package.manifest
    assert manifest.mail_id == bundle.bundle_id.hex()
    assert manifest.envelope.mail_from == "p@ext.example"
    assert manifest.envelope.rcpt_to == ("u@corp.example",)
    assert manifest.envelope.helo == "mx.ext.example"
    assert manifest.envelope.tls is False
    assert manifest.auth.spf == "not_checked"
    assert process.stop() == 0
    from agentkit.audit import AuditLog

    steps = [e.step for e in AuditLog(directory.audit_path).query(mail_id=manifest.mail_id)]
    assert steps == ["received", "rendered", "published"]
    spool = directory.root / "outer" / "spool" / "inbound"
    for state in ("incoming", "received", "rendering", "rendered"):
        assert list((spool / state).iterdir()) == [], state


def test_sigterm_stops_cleanly_and_a_restart_continues(agent):
    directory, process = agent
    assert process.stop() == 0
    assert "stopped cleanly" in process.log.read_text()
    process.start()
    with smtplib.SMTP("127.0.0.1", directory.port) as client:
        assert client.sendmail("p@ext.example", ["u@corp.example"], MAIL) == {}


def test_disk_floor_above_free_space_answers_452(tmp_path):
    directory = make_agent_dir(tmp_path)
    directory.edit("spool", "min_free_bytes", str(1 << 60))
    process = AgentProcess(directory)
    process.start()
    try:
        with smtplib.SMTP("127.0.0.1", directory.port) as client:
            client.ehlo()
            code, text = client.mail("p@ext.example")
        assert code == 452
        assert text.startswith(b"4.3.1")
    finally:
        process.stop()
    assert "ALARM" in process.log.read_text()


def test_heartbeats_flow_when_idle(tmp_path):
    directory = make_agent_dir(tmp_path)
    directory.edit("link", "heartbeat_s", "0.2")
    process = AgentProcess(directory)
    process.start()
    try:
        inner = InnerSide(directory, tmp_path / "inner")
        wait_for(lambda: inner.poll() is not None and inner.reader.status().last_heartbeat_ms)
    finally:
        process.stop()


def test_session_limits_hold_across_the_acceptor_processes(tmp_path):
    import socket

    directory = make_agent_dir(tmp_path)
    directory.edit("smtp", "max_sessions_per_ip", "3")
    directory.edit("smtp", "processes", "3")
    process = AgentProcess(directory)
    process.start()
    held = []
    try:
        wait_for(lambda: "started 2 extra SMTP acceptor" in process.log.read_text())

        def greeting() -> bytes:
            sock = socket.create_connection(("127.0.0.1", directory.port), timeout=10)
            held.append(sock)
            data = b""
            while not data.endswith(b"\r\n"):
                data += sock.recv(1024)
            return data

        # the kernel spreads these over three processes; the count is shared
        replies = [greeting() for _ in range(12)]
        assert [r[:3] for r in replies[:3]] == [b"220"] * 3
        assert all(r.startswith(b"421 4.7.0") for r in replies[3:])
    finally:
        for sock in held:
            sock.close()
        process.stop()


def test_a_failed_start_leaves_no_process_behind(tmp_path):
    import socket
    import subprocess
    import sys

    directory = make_agent_dir(tmp_path)
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", directory.port))
    blocker.listen()
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "maildiode", "outer", "-c", str(directory.config)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = proc.communicate(timeout=60)
    finally:
        blocker.close()
    assert proc.returncode != 0
    assert b"address already in use" in output.lower()
    leftovers = subprocess.run(
        ["pgrep", "-f", str(directory.config)], capture_output=True, text=True
    )
    assert leftovers.stdout.strip() == ""
