"""Two real inner agents on one state folder (issue 23.2): the second is refused while the first
holds the lease; as a standby it waits, and when the first is killed with SIGKILL it takes over
within the lease's time and delivers what was pending exactly once."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from maildiode.trial.stack import wait_for
from tests.support.ha import HaStack, wait_for_log
from tests.support.inbound import simple_mail

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

PENDING = 6
# Takeover: the lease's TTL, one look of the standby, and its start (opening the state).
TAKEOVER_LIMIT_S = 3.0 + 1.0 + 10.0


def test_a_second_inner_agent_is_refused_and_a_standby_takes_over_after_kill_9(
    tmp_path: Path,
) -> None:
    running = HaStack(tmp_path).start(standby=False)
    try:
        base = running.base
        base.postfix.stop()  # the internal server is down: the notifications wait in the queue
        tokens = [f"SB{n:02d}" for n in range(PENDING)]
        for token in tokens:
            base.send(simple_mail(token))
        wait_for(lambda: base.queue_stats().get("queued", 0) == PENDING, 60,
                 f"{PENDING} notifications waiting in the inner agent's queue")  # fmt: skip

        refused = subprocess.run(
            [sys.executable, "-m", "maildiode", "inner", "-c", str(tmp_path / "inner-b.toml")],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert refused.returncode == 2, refused.stderr
        lines = refused.stderr.strip().splitlines()
        assert len(lines) == 1, refused.stderr
        assert "refused to start: the state is held by inner-a" in lines[0]
        assert "--standby" in lines[0]

        running.start_standby()
        running.active.kill9()
        killed = time.monotonic()
        base.postfix.start()
        wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        took_s = time.monotonic() - killed
        counts = base.wait_tokens(tokens, "SB", 60)
        time.sleep(2)  # a duplicate, if any, would come in now
        counts = base.tokens("SB")
    finally:
        running.stop()
    print(f"standby: took over {took_s:.1f} s after the kill -9 (lease ttl 3 s)")
    assert {token: counts[token] for token in tokens} == dict.fromkeys(tokens, 1)
    assert took_s <= TAKEOVER_LIMIT_S
    events = query_read_only(
        tmp_path / "inner" / "audit.db",
        "SELECT details FROM events WHERE step = 'took_over'",
    )
    assert len(events) == 1, events
    assert "inner-a" in str(events[0][0]), events


def test_a_frozen_holder_that_wakes_after_the_takeover_writes_nothing_and_stops(
    tmp_path: Path,
) -> None:
    """A holder paused past its lease (SIGSTOP: a frozen VM, a stalled disk) finds on waking
    that the standby took over: its fence is closed, it injects nothing and exits with 4."""
    running = HaStack(tmp_path).start()
    try:
        base = running.base
        active = running.active.process
        assert active is not None
        active.send_signal(signal.SIGSTOP)
        wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        active.send_signal(signal.SIGCONT)  # both agents now race for the mail that comes
        tokens = [f"FZ{n:02d}" for n in range(4)]
        for token in tokens:
            base.send(simple_mail(token))
        assert active.wait(30) == 4
        base.wait_tokens(tokens, "FZ", 60)
        time.sleep(2)
        counts = base.tokens("FZ")
    finally:
        running.stop()
    assert {token: counts[token] for token in tokens} == dict.fromkeys(tokens, 1)
    log = (tmp_path / "inner.log").read_text(encoding="utf-8", errors="replace")
    assert "fencing: the lease (token 1)" in log
