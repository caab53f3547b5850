"""``ConsoleData``: the mail index kept up to date — by each answer until the agent starts
the follower thread, by the thread after — and the host's figures sampled with a CPU window."""

from __future__ import annotations

import time

from agentkit.audit import AuditLog
from agentkit.mailindex import MailQuery
from inner_agent.console.data import ConsoleData
from inner_agent.console.places import ConsolePlaces
from inner_agent.web.config import ConsoleSection
from tests.support.console import Mails

ZONE = ConsoleSection().zone


def test_mail_written_a_moment_ago_is_in_the_answer_with_and_without_the_thread(tmp_path):
    path = tmp_path / "audit.db"
    AuditLog(path, agent="inner").close()
    data = ConsoleData(ConsolePlaces(audit_path=path), zone=ZONE, language="ko")
    mails = Mails(path, time.time())
    mails.inbound("1" * 32)
    index = data.index()
    assert index is not None
    assert index.search(MailQuery(), ZONE)["total"] == 1  # caught up by the answer itself
    data.start()
    try:
        mails.inbound("2" * 32)
        deadline = time.monotonic() + 10
        while index.search(MailQuery(), ZONE)["total"] < 2:  # the thread, not the answer
            assert data.index() is index
            assert time.monotonic() < deadline, "the follower did not catch up"
            time.sleep(0.05)
    finally:
        data.close()


def test_without_an_audit_store_there_is_nothing_to_read(tmp_path):
    data = ConsoleData(ConsolePlaces(), zone=ZONE, language="ko")
    assert data.readable is False
    assert data.index() is None
    status = data.status("en")
    assert status["mail"] is None
    assert status["inner"]["link"] is None
    assert status["outer"]["state"] == "missing"
    assert status["inner"]["host"]["cpu_percent"] is not None  # two samples a moment apart
    data.close()


def test_the_dashboard_shows_the_last_verification_of_the_audit_chain(tmp_path):
    """Issue 21.1: never verified, then verified (holds), then broken with sqlite3: the status
    says each, and the broken one is an alarm naming the event."""
    import sqlite3

    from protocol.keys import SigningKey

    path, key = tmp_path / "audit.db", SigningKey.generate()
    log = AuditLog(path, agent="inner")
    for n in range(3):
        log.record(f"m{n}", "injected", rcpt="kim@corp.example")
    log.checkpoint(key)
    data = ConsoleData(ConsolePlaces(audit_path=path), zone=ZONE, language="ko")
    assert data.status("ko")["audit"] is None
    log.record_verification(log.verify([key.verify_key]))
    shown = data.status("ko")["audit"]
    assert shown["ok"] is True
    assert (shown["checked"], shown["checkpoints"]) == (3, 1)
    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET details = '{}' WHERE id = 2")
    log.record_verification(log.verify([key.verify_key]))
    status = data.status("ko")
    assert status["audit"]["ok"] is False
    assert status["audit"]["event"] == 2
    assert "audit_broken" in [a["code"] for a in status["alarms"]]
    data.close()
    log.close()
