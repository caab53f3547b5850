"""The outbound side behind the fencing lease (issue 23.2, its defects left open): two real inner
agents with the outbound path on one state folder and the same addresses, as on one host. The
standby starts (its start-up checks let the holder's addresses pass), listens on nothing and
sends nothing while the first holds the lease; after the first is killed with SIGKILL it takes
over, listens on the outbound intake and sends what it accepts, and nothing is sent twice."""

from __future__ import annotations

import re
import signal
import smtplib
import threading
import time
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from maildiode.trial.stack import port_open, wait_for
from tests.e2e.test_signin_flood import fill_directory
from tests.support.ha import HaStack, wait_for_log
from tests.support.outbound import plain_mail

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

# Takeover: the lease's TTL, one look of the standby, and its start (opening the state).
TAKEOVER_LIMIT_S = 3.0 + 1.0 + 10.0
# The outbound path's start after the takeover: the scanner's and the web process's start.
OUTBOUND_START_S = 60.0


def send_outbound(port: int) -> str:
    """One plain mail through the outbound intake; the mail id of its 250."""
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.ehlo()
        for code, reply in (client.mail("kim@corp.example"), client.rcpt("partner@example.com")):
            if code != 250:
                raise smtplib.SMTPResponseException(code, reply)
        code, reply = client.data(plain_mail())
    assert code == 250, reply
    found = re.search(r"queued as (\S+)", reply.decode())
    assert found is not None, reply
    return found.group(1)


def sent_out(root: Path) -> list[str]:
    """The mail id of every ``sent_out`` event (one per mail put on the out link)."""
    rows = query_read_only(root / "inner" / "audit.db",
                           "SELECT mail_id FROM events WHERE step = 'sent_out'")  # fmt: skip
    return [str(row[0]) for row in rows]


def test_the_standby_listens_on_and_sends_nothing_until_it_takes_over(tmp_path: Path) -> None:
    running = HaStack(tmp_path, outbound=True)
    fill_directory(tmp_path / "inner" / "directory.db")
    running.start()  # the standby is waiting (its log says so) or this fails
    try:
        port = running.base.ports.outbound
        wait_for(lambda: port_open(port), OUTBOUND_START_S, "the active agent's outbound intake")
        first = send_outbound(port)
        wait_for(lambda: first in sent_out(tmp_path), 60, f"{first} sent out by inner-a")
        standby_log = (tmp_path / "inner-b.log").read_text(encoding="utf-8", errors="replace")
        assert "outbound" not in standby_log.lower(), standby_log
        assert running.standby.process is not None
        assert running.standby.process.poll() is None, standby_log

        running.active.kill9()
        assert not port_open(port)  # the standby does not listen before it takes over
        wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        wait_for(lambda: port_open(port), OUTBOUND_START_S, "the standby's outbound intake")
        second = send_outbound(port)
        wait_for(lambda: second in sent_out(tmp_path), 60, f"{second} sent out by inner-b")
    finally:
        running.stop()
    assert sorted(sent_out(tmp_path)) == sorted([first, second])


class RetryingClient:
    """The internal mail server's retries, in a thread: one mail offered to the outbound intake
    until a 250 (a 4xx, a dropped or refused connection: again after a pause)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.refusals: list[str] = []
        self.mail_id: str | None = None
        self._thread = threading.Thread(target=self._offer, name="internal-server")

    def start(self) -> RetryingClient:
        self._thread.start()
        return self

    def join(self) -> None:
        self._thread.join(RETRY_FOR_S + 30)

    def _offer(self) -> None:
        deadline = time.monotonic() + RETRY_FOR_S
        while time.monotonic() < deadline:
            try:
                self.mail_id = send_outbound(self.port)
                return
            except (OSError, smtplib.SMTPException, AssertionError) as refused:
                self.refusals.append(f"{type(refused).__name__}: {refused}")
            time.sleep(0.5)


RETRY_FOR_S = 90.0


def test_a_frozen_holder_that_wakes_after_the_takeover_takes_no_outbound_mail(
    tmp_path: Path,
) -> None:
    """A holder paused past its lease (SIGSTOP) still owns its listening sockets: the standby
    takes the lease and waits for them; a mail offered meanwhile waits in the frozen holder's
    backlog. On waking, the holder's fence is closed: it accepts nothing (451, or the
    connection drops as it stops), exits 4, and the mail, offered again, is taken by the new
    holder and sent out once."""
    running = HaStack(tmp_path, outbound=True)
    fill_directory(tmp_path / "inner" / "directory.db")
    running.start()
    try:
        port = running.base.ports.outbound
        wait_for(lambda: port_open(port), OUTBOUND_START_S, "the active agent's outbound intake")
        active = running.active.process
        assert active is not None
        active.send_signal(signal.SIGSTOP)
        wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        wait_for_log(tmp_path / "inner-b.log", "waiting for the old holder to let go", 10)
        client = RetryingClient(port).start()
        time.sleep(1)  # the client is connected, in the frozen holder's backlog
        active.send_signal(signal.SIGCONT)
        assert active.wait(30) == 4
        client.join()
        assert client.mail_id is not None, client.refusals
        mail_id = client.mail_id
        wait_for(lambda: mail_id in sent_out(tmp_path), 60, f"{mail_id} sent out by inner-b")
        time.sleep(2)  # a second sending, if any, would come now
    finally:
        running.stop()
    print(f"frozen holder: the mail was refused first: {client.refusals}")
    assert client.refusals, "the frozen holder's intake must not take the mail"
    assert sent_out(tmp_path) == [mail_id]
