"""The web listener as the agent's child process, for real: it serves at a lower CPU
priority, is started again (after a back-off, logged) when it dies, stops with the service,
dies with the agent even when the agent is killed, reports why it could not start as the
agent's start-up error, logs where the agent logs, and wakes the worker after a decision."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from types import SimpleNamespace

import pytest

from agentkit.audit import AuditLog
from agentkit.settings import LogSection
from inner_agent.outbound.service import OutboundService
from inner_agent.webproc.errors import WebProcessFailed
from tests.e2e.test_outbound_whole_path import Browser, approve_over_http, field
from tests.support.outbound import (
    LoopThread,
    RecordingPublisher,
    approval_link,
    fill_directory,
    make_section,
    rrn_mail,
    start_outbound,
    wait_for,
)

REPO = Path(__file__).resolve().parents[3]


def alive(pid: int) -> bool:
    """Running, not a zombie waiting to be reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def nice_of(pid: int, thread: int | None = None) -> int:
    stat = Path(f"/proc/{pid}/task/{thread or pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[16])


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=30) as response:
        return response.status


@pytest.fixture
def running(tmp_path):
    running = start_outbound(tmp_path, publisher=RecordingPublisher())
    yield running
    running.stop()


def test_the_listener_runs_in_a_child_at_lower_priority(running) -> None:
    child = running.service.web_process.pid
    assert child != os.getpid()
    assert Path(f"/proc/{child}/stat").read_text().rpartition(")")[2].split()[1] == str(os.getpid())
    assert b"inner_agent.webproc" in Path(f"/proc/{child}/cmdline").read_bytes()
    browser = Browser()
    _url, form = browser.get(f"{running.web_url}/login")
    with pytest.raises(urllib.error.HTTPError) as refused:  # a password checked in the pool
        browser.post(f"{running.web_url}/login", {"csrf": field(form, "csrf"),
                     "email": "lee@corp.example", "password": "wrong"})  # fmt: skip
    assert refused.value.code == 401
    ours = nice_of(os.getpid(), running.loop.thread.native_id)
    assert nice_of(child) == min(ours + 10, 19)
    threads = {int(t): nice_of(child, int(t)) for t in os.listdir(f"/proc/{child}/task")}
    assert all(nice >= ours + 10 for nice in threads.values())
    assert min(ours + 20, 19) in threads.values()  # the password checker, lower still


def test_a_dead_web_process_is_started_again_after_a_back_off(running, caplog) -> None:
    first = running.service.web_process.pid
    os.kill(first, signal.SIGKILL)
    second = wait_for(lambda: (pid := running.service.web_process.pid) != first and pid,
                      what="a new web process")  # fmt: skip
    wait_for(lambda: running.service.web_process.restarts == 1 and alive(second), what="restart")
    assert get(f"{running.web_url}/login") == 200  # the same port, the same socket
    os.kill(second, signal.SIGKILL)
    wait_for(lambda: running.service.web_process.restarts == 2, what="the second restart")
    assert get(f"{running.web_url}/login") == 200
    said = [r.getMessage() for r in caplog.records if r.name.endswith("supervisor")]
    assert f"web process {first} was killed by SIGKILL; starting it again in 1 s" in said
    assert f"web process {second} was killed by SIGKILL; starting it again in 2 s" in said
    assert not alive(first)


def test_stopping_the_service_stops_the_web_process(tmp_path) -> None:
    running = start_outbound(tmp_path, publisher=RecordingPublisher())
    child = running.service.web_process.pid
    port = running.service.web_port
    running.stop()
    assert not alive(child)
    assert port_free(port)


RUNNER = textwrap.dedent("""
    import asyncio, json, sys
    from pathlib import Path
    from types import SimpleNamespace
    sys.path.insert(0, sys.argv[2])
    from agentkit.audit import AuditLog
    from inner_agent.outbound.service import OutboundService
    from tests.support.outbound import RecordingPublisher, make_section

    async def main():
        tmp = Path(sys.argv[1])
        overrides = json.loads((tmp / "overrides.json").read_text())
        section = make_section(tmp, **overrides)
        service = OutboundService(SimpleNamespace(outbound=section),
                                  AuditLog(tmp / "audit.db", agent="inner"),
                                  publisher=RecordingPublisher())
        await service.start()
        print(service.web_process.pid, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def test_the_web_process_dies_with_the_agent(tmp_path) -> None:
    """kill -9 of the agent: the kernel kills the child (PR_SET_PDEATHSIG); the port is free
    for the next start, which would otherwise find it taken by an orphan."""
    import json

    section = make_section(tmp_path)
    fill_directory(section)
    overrides = {"listen": section.listen, "web": {"listen": section.web.listen}}
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))
    agent = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path), str(REPO)],
                             stdout=subprocess.PIPE, text=True)  # fmt: skip
    try:
        child = int(agent.stdout.readline())
        assert alive(child)
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(timeout=10)
        wait_for(lambda: not alive(child), timeout=10, what="the orphaned web process to die")
        port = int(section.web.listen.rpartition(":")[2])
        wait_for(lambda: port_free(port), timeout=10, what="the web port")
    finally:
        if agent.poll() is None:
            agent.kill()
        agent.wait(timeout=10)


def test_a_web_process_that_cannot_start_is_the_agent_start_up_error(tmp_path) -> None:
    (tmp_path / "not-a-folder").write_text("")
    section = make_section(tmp_path, web={"signin": {"db": "not-a-folder/signin.db"}})
    fill_directory(section)
    service = OutboundService(SimpleNamespace(outbound=section),
                              AuditLog(tmp_path / "audit.db", agent="inner"),
                              publisher=RecordingPublisher())  # fmt: skip
    loop = LoopThread()
    try:
        with pytest.raises(WebProcessFailed) as failed:
            loop.call(service.start(), timeout=90)
        assert isinstance(failed.value, OSError)
        message = str(failed.value)
        assert message.startswith(f"the web listener on {section.web.listen} did not start: ")
        assert "not-a-folder" in message
        assert not alive(service.web_process.pid)
        assert port_free(int(section.web.listen.rpartition(":")[2]))
        assert port_free(int(section.listen.rpartition(":")[2]))  # the SMTP intake stopped
    finally:
        loop.close()


def test_the_web_process_logs_where_the_agent_logs_in_its_format(tmp_path) -> None:
    log_file = tmp_path / "inner.log"
    config = SimpleNamespace(log=LogSection(file=log_file))
    running = start_outbound(tmp_path, config=config, publisher=RecordingPublisher())
    try:
        child = running.service.web_process.pid
        request = urllib.request.Request(f"{running.web_url}/login", data=b"email=x&password=y")
        with pytest.raises(urllib.error.HTTPError):  # no CSRF token: refused, and logged
            urllib.request.urlopen(request, timeout=30)
    finally:
        running.stop()
    lines = log_file.read_text().splitlines()
    stamp = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} maildiode-inner"
    assert any(re.fullmatch(rf"{stamp} INFO inner_agent\.webproc\.child: web process {child} "
                            r"serving \(nice \d+\)", line) for line in lines)  # fmt: skip
    assert any(re.fullmatch(rf"{stamp} INFO inner_agent\.webproc\.child: web process stopped",
                            line) for line in lines)  # fmt: skip


def test_a_decision_wakes_the_worker(tmp_path) -> None:
    """The worker's pass runs when the web process says a decision was stored, not at the
    next poll: with ``poll_s = 30`` the approved mail is on the link within seconds (before,
    decisions made in the web pages waited for the poll)."""
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher, poll_s=30)
    try:
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail("kim@corp.example", ["partner@example.com"], rrn_mail())
        state = running.service.workflow.state
        request = wait_for(state.pending_requests, what="held mail")[0]
        mail = wait_for(lambda: running.internal.to("lee@corp.example"), what="request mail")
        approve_over_http(running, request, approval_link(mail[0].data))
        decided = time.monotonic()
        wait_for(lambda: publisher.published, timeout=25, what="publication")
        assert time.monotonic() - decided < 5
        assert state.mail(request.mail_id).state == "sent"
    finally:
        running.stop()
