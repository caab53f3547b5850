"""No outbound mail is lost once the intake answered 250: the inner agent's outbound path is
killed with SIGKILL right after a burst of accepted mails, started again, and every mail
the client was told "queued as <id>" is scanned and published."""

from __future__ import annotations

import os
import re
import signal
import smtplib
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from agentkit.settings import LinkSection
from protocol import SigningKey
from tests.support.outbound import (
    MemoryAudit,
    fill_directory,
    make_section,
    plain_mail,
    wait_for,
)

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]

RUNNER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    from types import SimpleNamespace
    sys.path.insert(0, sys.argv[2])
    from inner_agent.outbound.service import OutboundService
    from agentkit.settings import LinkSection
    from tests.support.outbound import MemoryAudit, make_section
    import json

    async def main():
        tmp = Path(sys.argv[1])
        overrides = json.loads((tmp / "overrides.json").read_text())
        section = make_section(tmp, **overrides)
        config = SimpleNamespace(
            outbound=section, link=LinkSection(send_dir=tmp / "link/out/send", settle_s=0),
            keys=SimpleNamespace(signing_key=tmp / "inner.key", encrypt_to=None))
        service = OutboundService(config, MemoryAudit())
        await service.start()
        await asyncio.Event().wait()

    asyncio.run(main())
""")


def port_open(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def test_sigkill_after_250_loses_nothing(tmp_path):
    import json

    SigningKey.generate().save(tmp_path / "inner.key")
    section = make_section(tmp_path)
    fill_directory(section)
    overrides = {"listen": section.listen, "web": {"listen": section.web.listen}}
    (tmp_path / "overrides.json").write_text(json.dumps(overrides))
    port = int(section.listen.rpartition(":")[2])
    child = subprocess.Popen([sys.executable, "-c", RUNNER, str(tmp_path), str(REPO)])
    try:
        wait_for(lambda: port_open(port) or child.poll() is not None, what="outbound intake")
        assert child.poll() is None
        queued = []
        with smtplib.SMTP("127.0.0.1", port) as client:
            client.ehlo()
            for number in range(20):
                client.mail("kim@corp.example")
                client.rcpt(f"partner{number}@example.com")
                code, reply = client.data(plain_mail())
                assert code == 250
                queued.append(re.search(rb"queued as ([0-9a-f]{32})", reply).group(1).decode())
            os.kill(child.pid, signal.SIGKILL)  # right after the last 250
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(timeout=10)

    from types import SimpleNamespace

    from inner_agent.outbound.service import OutboundService
    from tests.support.outbound import LoopThread

    config = SimpleNamespace(
        outbound=section,
        link=LinkSection(send_dir=tmp_path / "link/out/send", settle_s=0),
        keys=SimpleNamespace(signing_key=tmp_path / "inner.key", encrypt_to=None),
    )
    audit = MemoryAudit()
    loop = LoopThread()
    service = OutboundService(config, audit)
    loop.call(service.start())
    try:
        state = service.workflow.state
        wait_for(
            lambda: all((row := state.mail(i)) is not None and row.state == "sent" for i in queued),
            what="every queued mail published",
        )
        # the spool copy is removed just after the state says "sent" (state first: a crash in
        # between leaves a file that the next start recognises as sent and removes)
        wait_for(lambda: service.workflow.spool.ids() == [], what="spool emptied")
    finally:
        loop.call(service.stop())
        loop.close()
