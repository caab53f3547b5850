"""kill -9 at random moments during a burst: every mail that got 250 is published exactly once."""

from __future__ import annotations

import random
import smtplib
import threading
import time
from collections import Counter

import pytest

from tests.outer.agent_support import AgentProcess, InnerSide, make_agent_dir, wait_for

pytestmark = pytest.mark.e2e

MAILS = 500
CLIENTS = 5
KILLS = 4


def message(number: int, attempt: int) -> tuple[str, bytes]:
    """A mail identified by its subject (shown even when a mail is not displayable)."""
    subject = f"durability {number} attempt {attempt}"
    body = (
        f"From: p@ext.example\r\nTo: u@corp.example\r\nSubject: {subject}\r\n"
        f"Message-ID: <dur-{number}-a{attempt}@ext.example>\r\n\r\nmail {number}\r\n"
    ).encode()
    return subject, body


class Burst:
    """Clients that send until each of their mails got a 250, trying again after a failure."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.acked: list[str] = []
        self.failed_attempts = 0
        self.lock = threading.Lock()

    def client(self, numbers: range) -> None:
        for number in numbers:
            for attempt in range(1000):
                message_id, body = message(number, attempt)
                try:
                    with smtplib.SMTP("127.0.0.1", self.port, timeout=20) as smtp:
                        smtp.sendmail("p@ext.example", ["u@corp.example"], body)
                except (OSError, smtplib.SMTPException):
                    with self.lock:
                        self.failed_attempts += 1
                    time.sleep(0.05)  # the agent is down or restarting
                    continue
                with self.lock:
                    self.acked.append(message_id)
                break


def test_kill_9_during_a_burst_loses_nothing_and_publishes_nothing_twice(tmp_path):
    directory = make_agent_dir(tmp_path)
    process = AgentProcess(directory)
    process.start()
    burst = Burst(directory.port)
    per_client = MAILS // CLIENTS
    threads = [
        threading.Thread(target=burst.client, args=(range(i * per_client, (i + 1) * per_client),))
        for i in range(CLIENTS)
    ]
    for thread in threads:
        thread.start()
    rng = random.Random()
    kills = 0
    try:
        while kills < KILLS:  # during the burst, and after it while rendering and publishing
            time.sleep(rng.uniform(0.2, 1.5))
            process.kill9()
            kills += 1
            process.start()
        for thread in threads:
            thread.join(timeout=300)
        assert len(burst.acked) == MAILS
        inner = InnerSide(directory, tmp_path / "inner")

        def published_ids() -> Counter:
            inner.poll()
            return Counter(package.manifest.headers.subject for _, package in inner.packages())

        try:
            wait_for(lambda: set(burst.acked) <= set(published_ids()), timeout=240, interval=0.5)
        except AssertionError:
            pass  # the assertions below say what is missing
    finally:
        process.stop()
    counts = published_ids()
    bundle_ids = Counter(b.bundle_id for b in inner.bundles)
    seqs = Counter(b.seq for b in inner.bundles)
    lost = set(burst.acked) - set(counts)
    twice = {m: n for m, n in counts.items() if n > 1}
    print(
        f"kills={kills} acked={len(burst.acked)} failed attempts={burst.failed_attempts} "
        f"published={sum(counts.values())} lost={len(lost)} twice={len(twice)}"
    )
    assert kills == KILLS
    assert lost == set(), sorted(lost)[:20]
    assert twice == {}
    assert max(bundle_ids.values()) == 1
    assert max(seqs.values()) == 1
    # what was published without a 250 can only be an attempt whose reply the kill cut off
    assert len(set(counts) - set(burst.acked)) <= burst.failed_attempts


STUCK_MAILS = 30


def test_kill_9_while_the_link_is_stuck_loses_nothing_and_holds_few_packages(tmp_path):
    """The link fails (its folder is gone), so rendered packages wait in memory (D12) with
    their mails claimed; rendering stops after a handful. kill -9, the link comes back, the
    agent starts again: every mail is published exactly once."""
    from agentkit.readonly import query_read_only

    directory = make_agent_dir(tmp_path)
    process = AgentProcess(directory)
    process.start()
    send_dir, parked = directory.send_dir, directory.send_dir.with_name("send-parked")
    wait_for(send_dir.is_dir)  # made by the pipeline, which may start after the first 220
    time.sleep(0.5)
    send_dir.rename(parked)
    send_dir.write_bytes(b"not a folder")  # every publish now fails: ENOTDIR
    subjects = []
    try:
        for number in range(STUCK_MAILS):
            subject, body = message(number, 0)
            with smtplib.SMTP("127.0.0.1", directory.port, timeout=20) as smtp:
                smtp.sendmail("p@ext.example", ["u@corp.example"], body)
            subjects.append(subject)

        def steps(step: str) -> int:
            query = "SELECT COUNT(DISTINCT mail_id) FROM events WHERE step = ?"
            return int(query_read_only(directory.audit_path, query, (step,))[0][0])

        wait_for(lambda: steps("rendered") >= 9, timeout=60)
        time.sleep(2)  # rendering must stop: one package per render thread queued, a few in hand
        held = steps("rendered")
        print(f"rendered while the link was stuck: {held} of {STUCK_MAILS}")
        assert held <= 2 * 2 * 2 + 1  # 2 workers x 2 threads, each with one in hand and one queued
        assert steps("published") == 0
        process.kill9()
        send_dir.unlink()
        parked.rename(send_dir)
        process.start()
        inner = InnerSide(directory, tmp_path / "inner")

        def published() -> Counter:
            inner.poll()
            return Counter(package.manifest.headers.subject for _, package in inner.packages())

        wait_for(lambda: set(subjects) <= set(published()), timeout=120, interval=0.5)
    finally:
        process.stop()
    counts = published()
    assert set(counts) == set(subjects)
    assert max(counts.values()) == 1
    assert max(Counter(b.bundle_id for b in inner.bundles).values()) == 1
