"""`make ha-test` (issue 23.5): a steady stream of mail from two senders that retry like MTAs,
through the outer agent(s), the carrier and an active inner agent with a standby on the same
state, into a real Postfix; the active inner agent is killed with SIGKILL mid-stream and the
standby takes over. Counted: every mail that got a 250 is delivered, none is lost.

Exactly once, and the one window it cannot close: an agent killed between the internal server's
250 and its own commit sends that notification again after the takeover ("better to deliver
twice than to lose mail"; inner_agent/inject.py and direct.py). Such a second copy has the same
Message-ID, so the internal server's duplicate suppression (Exchange keeps one per Message-ID)
drops it. The test allows at most one per sending thread of the killed agent and requires
every other mail exactly once (docs/operations.md, "Standby inner agent").

With two outer agents (the Done line of 23.5) one of them is killed first, its port closed with
it: the senders' attempts there are refused and retried at the other MX. What it had answered
250 but not yet published waits in its spool until its host comes back; the test brings it
back once the survivor's mail is all delivered, and counts those mails.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from maildiode.trial.stack import wait_for
from tests.support.ha import HaStack, RetryingSenders, delivery_counts, wait_for_log

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

STREAM_S = 24.0  # the senders' steady stream
KILL_AT_S = 8.0  # the active inner agent dies this far into it
# The killed agent's sending threads: the link thread (direct path) and the injection workers.
IN_FLIGHT_AT_KILL = 1 + 4
TAKEOVER_LIMIT_S = 3.0 + 1.0 + 10.0  # TTL, one look of the standby, its start
# Two outer agents: mx2 dies this far into the stream, the active inner agent later.
KILL_OUTER_AT_S = 6.0
KILL_INNER_AT_S = 12.0
DRAIN_S = 60.0  # for the accepted mail to come through after the stream


def test_the_standby_takes_over_mid_stream_and_no_accepted_mail_is_lost(tmp_path: Path) -> None:
    stack = HaStack(tmp_path).start()
    senders = RetryingSenders(stack.mx_ports, senders=2, interval_s=0.6)
    try:
        started = time.monotonic()
        senders.start()
        time.sleep(KILL_AT_S)
        stack.active.kill9()
        took_s = wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        time.sleep(max(0.0, STREAM_S - (time.monotonic() - started)))
        counts = senders.stop()
        wait_for(lambda: not delivery_counts(stack, counts.accepted)[0], 60,
                 f"{len(counts.accepted)} accepted mails delivered")  # fmt: skip
        time.sleep(2)  # a second copy, if any, would come in now
        lost, delivered = delivery_counts(stack, counts.accepted)
    finally:
        senders.stop()
        stack.stop()
    twice = {token: n for token, n in delivered.items() if n > 1}
    print(f"ha-test: {len(counts.accepted)} accepted, {counts.retries} sender retries, "
          f"{len(counts.gave_up)} given up, takeover {took_s:.1f} s after the kill, "
          f"{len(lost)} lost, {len(twice)} delivered twice")  # fmt: skip
    assert len(counts.accepted) >= 20  # a steady stream, even on a busy machine
    assert counts.gave_up == []
    assert lost == []
    assert set(delivered) == set(counts.accepted)  # nothing delivered that was never accepted
    assert len(twice) <= IN_FLIGHT_AT_KILL, twice
    assert all(n == 2 for n in twice.values()), twice


def _sleep_until(started: float, at_s: float) -> None:
    time.sleep(max(0.0, at_s - (time.monotonic() - started)))


def test_two_outer_agents_one_outer_then_the_active_inner_killed_no_accepted_mail_is_lost(
    tmp_path: Path,
) -> None:
    stack = HaStack(tmp_path, outer_agents=2).start()
    assert stack.mx2 is not None
    senders = RetryingSenders(stack.mx_ports, senders=2, interval_s=0.6)
    try:
        started = time.monotonic()
        senders.start()
        _sleep_until(started, KILL_OUTER_AT_S)
        stack.mx2.kill9()  # its host is gone: nothing listens on its port any more
        _sleep_until(started, KILL_INNER_AT_S)
        stack.active.kill9()
        took_s = wait_for_log(tmp_path / "inner-b.log", "took_over", TAKEOVER_LIMIT_S)
        _sleep_until(started, STREAM_S)
        counts = senders.stop()
        by_mx2 = {t for t, port in counts.accepted_at.items() if port == stack.mx2_port}
        survivors = [t for t in counts.accepted if t not in by_mx2]
        wait_for(lambda: not delivery_counts(stack, survivors)[0], DRAIN_S,
                 f"{len(survivors)} mails accepted by the surviving outer agent delivered")  # fmt: skip
        in_dead_spool, _ = delivery_counts(stack, sorted(by_mx2))
        stack.start_mx2()  # its host comes back, its spool as it was
        wait_for(lambda: not delivery_counts(stack, counts.accepted)[0], DRAIN_S,
                 f"{len(counts.accepted)} accepted mails delivered")  # fmt: skip
        time.sleep(2)  # a second copy, if any, would come in now
        lost, delivered = delivery_counts(stack, counts.accepted)
    finally:
        senders.stop()
        stack.stop()
    twice = {token: n for token, n in delivered.items() if n > 1}
    print(f"ha-test, two outer agents: {len(counts.accepted)} accepted ({len(by_mx2)} by mx2 "
          f"before its kill), {counts.retries} sender retries, {len(counts.gave_up)} given up, "
          f"{len(in_dead_spool)} waited in mx2's spool for its return, takeover {took_s:.1f} s "
          f"after the inner kill, {len(lost)} lost, {len(twice)} delivered twice")  # fmt: skip
    assert len(counts.accepted) >= 20  # a steady stream, even on a busy machine
    assert len(by_mx2) >= 2  # the senders did spread over both MX
    assert counts.retries >= 1  # and met mx2's closed port
    assert counts.gave_up == []
    assert lost == []
    assert set(delivered) == set(counts.accepted)  # nothing delivered that was never accepted
    assert len(twice) <= IN_FLIGHT_AT_KILL, twice
    assert all(n == 2 for n in twice.values()), twice
