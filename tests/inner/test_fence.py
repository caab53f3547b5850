"""The writes that matter pass the lease's fence: no message reaches the internal server and no
bundle reaches the queue once this agent no longer holds the state's lease."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from agentkit.leasekeeper import FenceClosed
from inner_agent.smtpclient import Hop, Session, TemporaryFailure
from inner_agent.standby import fenced
from protocol import Kind, ReceivedBundle
from tests.inner.smtpsink import FaultySink

BODY = b"From: a@corp.example\r\nTo: u@corp.example\r\nSubject: s\r\n\r\nhello\r\n"


class Switch:
    def __init__(self) -> None:
        self.open = True

    def __call__(self) -> None:
        if not self.open:
            raise FenceClosed("the lease (token 1) is now held by inner-b (token 2)")


def test_a_closed_fence_stops_the_message_before_its_bytes_and_the_transaction_is_abandoned(
    sink: tuple[FaultySink, int],
) -> None:
    handler, port = sink
    fence = Switch()
    session = Session(Hop("127.0.0.1", port, timeout_s=5, fence=fence))
    assert session.send("a@corp.example", ["u@corp.example"], BODY).accepted
    fence.open = False
    started = time.monotonic()
    with pytest.raises(TemporaryFailure, match="fencing: .*inner-b"):
        session.send("a@corp.example", ["u@corp.example"], BODY)
    assert time.monotonic() - started < 2  # no QUIT waited on in the middle of DATA
    time.sleep(0.3)
    assert len(handler.received) == 1  # the fenced message was never delivered, not even empty
    fence.open = True
    assert (
        Session(Hop("127.0.0.1", port, timeout_s=5, fence=fence))
        .send("a@corp.example", ["u@corp.example"], BODY)
        .accepted
    )
    assert len(handler.received) == 2


def test_a_fenced_handler_refuses_bundles_so_the_reader_keeps_them(tmp_path: Path) -> None:
    handled: list[ReceivedBundle] = []
    fence = Switch()
    handle = fenced(handled.append, fence)
    bundle = ReceivedBundle("inbound", 1, b"\x01" * 16, Kind.DATA, b"x", 1_800_000_000_000, 1)
    handle(bundle)
    fence.open = False
    with pytest.raises(FenceClosed):
        handle(bundle)
    assert handled == [bundle]
