"""Two outer agents, one inner agent, real processes on loopback (issue 23.1, D75): approved
mail is shared between the outer agents; one is killed with SIGKILL while mail of its share
waits for it, and every approved mail still reaches the relay exactly once."""

from __future__ import annotations

import email
import email.policy
import time
from collections import Counter
from pathlib import Path

import pytest

from maildiode.trial.stack import wait_for
from tests.support.documents import make_mail
from tests.support.inbound import DOMAIN, simple_mail
from tests.support.outbound import MailSink
from tests.support.postfix import PostfixInstance
from tests.support.streams import MX2, TwoOuterStack

pytestmark = pytest.mark.e2e


def _mail(token: str) -> bytes:
    return make_mail(subject=f"{token} 회의 일정", text="다음 주 화요일 10시에 뵙겠습니다.",
                     sender="kim@corp.example", to="partner@example.com")  # fmt: skip


def _tokens(relay: MailSink) -> Counter[str]:
    subjects = (
        str(email.message_from_bytes(m.data, policy=email.policy.default)["Subject"])
        for m in relay.received
    )
    return Counter(s.split()[0] for s in subjects)


def test_killing_one_outer_agent_delivers_every_approved_mail_exactly_once(tmp_path: Path) -> None:
    relay = MailSink()
    stack = TwoOuterStack(tmp_path / "stack", relay.port, takeover_after_s=3)
    first = [f"a{n:02d}" for n in range(10)]
    second = [f"b{n:02d}" for n in range(12)]  # all 12 on one stream: 1 in 4096
    try:
        with stack:
            stack.wait_both_fresh()
            for token in first:
                stack.send_out(_mail(token), "partner@example.com")
            wait_for(lambda: set(_tokens(relay)) >= set(first), 120, "the first mails delivered")
            # both outer agents carried a share, and the inner agent heard of every delivery
            wait_for(lambda: stack.shares() == [], 60, "the deliveries reported inside")
            delivered_by = {agent for agent, _ in stack.inner_events("delivered")}
            assert delivered_by == {"outer", f"outer-{MX2}"}

            # mx2's channel stops carrying (its host is going down); mail keeps coming
            stack.carriers[f"{MX2}/out"].stop()
            for token in second:
                stack.send_out(_mail(token), "partner@example.com")
            everything = first + second
            wait_for(lambda: len(stack.inner_events("sent_out")) == len(everything), 60,
                     "the second mails on the link")  # fmt: skip
            stranded = [m for m, s in stack.shares() if s == MX2]
            assert stranded, "no mail of the second batch went to mx2"
            stack.mx2.kill9()
            wait_for(lambda: set(_tokens(relay)) >= set(everything), 120,
                     "every approved mail delivered")  # fmt: skip
            time.sleep(3)  # a late duplicate would arrive now
            assert _tokens(relay) == Counter(dict.fromkeys(everything, 1))
            moved = {m for _, m in stack.inner_events("stream_takeover")}
            assert moved == set(stranded)
            wait_for(lambda: stack.shares() == [], 30, "the moved mails reported delivered")
            # maildiode status lists both streams: the pair's alive, mx2's report stale
            code, status = stack.status()
            rows = {row["stream"]: row for row in status["streams"]}
            assert (rows["inbound"]["report"], rows[MX2]["report"]) == ("fresh", "stale")
            assert rows["inbound"]["link"] == "alive"
            assert rows[MX2]["host"]
            assert rows[MX2]["bundles_received"] > 0
            assert rows[MX2]["outbound_stream"] == "mx2-out"
            assert code == 1  # a stale outer agent is an alarm
    finally:
        relay.stop()


def _arrivals(stack: TwoOuterStack) -> int:
    """Inbound bundles of mail the inner agent handled: delivered, or dropped as a copy."""
    return len(stack.inner_events("received_inside")) + len(stack.inner_events("duplicate_dropped"))


def test_a_mail_taken_by_both_outer_agents_is_delivered_once(tmp_path: Path) -> None:
    """A sender timed out at the first MX after it had stored the mail and retried at the
    second: the same message reaches the inner agent on both streams; one notification."""
    relay = MailSink()
    stack = TwoOuterStack(tmp_path / "stack", relay.port, internal=PostfixInstance(domain=DOMAIN))
    try:
        with stack:
            twice = simple_mail("twice-01")
            stack.send_in(twice, stack.ports.smtp)
            stack.send_in(twice, stack.mx2_port)  # the retry, at the second MX
            stack.send_in(simple_mail("only-mx1"), stack.ports.smtp)
            stack.send_in(simple_mail("only-mx2"), stack.mx2_port)
            expected = ("twice-01", "only-mx1", "only-mx2")
            wait_for(lambda: all(any(t in s for s in stack.subjects()) for t in expected), 120,
                     "the notifications")  # fmt: skip
            wait_for(lambda: _arrivals(stack) == 4, 60, "all four arrivals handled inside")
            time.sleep(3)  # a late second notification would arrive now
            counts = Counter(t for s in stack.subjects() for t in expected if t in s)
            assert counts == Counter(dict.fromkeys(expected, 1))
            assert len(stack.inner_events("duplicate_dropped")) == 1
    finally:
        relay.stop()


def test_an_outer_agent_added_with_init_starts_and_passes_a_mail(tmp_path: Path) -> None:
    """Issue 23: ``maildiode init DIR --add-outer mx2`` (how TwoOuterStack makes its second
    outer agent) on the pair ``init`` made; started as its next steps say, the new agent takes
    a mail at its own port and the inner agent delivers its notification."""
    stack = TwoOuterStack(tmp_path / "stack", relay_port=1, outbound=False,
                          internal=PostfixInstance(domain=DOMAIN))  # fmt: skip
    assert (stack.root / f"outer-{MX2}.toml").is_file()
    with stack:
        stack.send_in(simple_mail("added-01"), stack.mx2_port)
        wait_for(lambda: any("added-01" in s for s in stack.subjects()), 120,
                 "the notification of the mail the added outer agent took")  # fmt: skip
        wait_for(lambda: bool(stack.inner_events("received")), 60,
                 "the added outer agent's events carried inward")  # fmt: skip
        assert {agent for agent, _ in stack.inner_events("received")} == {f"outer-{MX2}"}
