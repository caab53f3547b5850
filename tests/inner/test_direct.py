"""The direct path (D16): a fresh notification sent from the link thread while nothing waits in
the queue, against a real (aiosmtpd) server that injects faults; everything it cannot deliver
at once goes through the queue."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from agentkit.audit import AuditLog
from inner_agent.bundle_check import ImagePolicy
from inner_agent.bundle_handler import BundleHandler
from inner_agent.direct import DirectInjection
from inner_agent.inject import InjectionQueue
from inner_agent.left_over import build_left_over
from inner_agent.notify import NotifyOptions
from inner_agent.smtpclient import Hop
from maildiode.trial.stack import free_port
from mailsafe.payload import encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import rendered
from tests.inner.smtpsink import FaultySink


def _bundle(n: int = 1, **kwargs: object) -> ReceivedBundle:
    data = encode_package(rendered(mail_id=f"{n:032x}", **kwargs))
    return ReceivedBundle("inbound", n, bytes([n]) * 16, Kind.DATA, data, 1_800_000_000_000, 1)


def _handler(tmp_path: Path, port: int) -> BundleHandler:
    queue = InjectionQueue(tmp_path / "q.db")
    return BundleHandler(
        queue, AuditLog(tmp_path / "audit.db"), NotifyOptions(our_domains=("corp.example",)),
        ImagePolicy(), tmp_path / "quarantine",
        direct=DirectInjection(queue, Hop("127.0.0.1", port, timeout_s=5)),
    )  # fmt: skip


def _steps(handler: BundleHandler) -> list[tuple[str, object]]:
    return [(e.step, e.details.get("direct")) for e in handler.audit.query()]


def test_a_fresh_notification_goes_straight_to_the_server_and_not_into_the_queue(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    server, port = sink
    handler = _handler(tmp_path, port)
    handler(_bundle())
    assert [(mail_from, rcpts) for mail_from, rcpts, _data in server.received] == [
        ("maildiode@corp.example", ["user@corp.example"])
    ]
    assert b"Subject:" in server.received[0][2]
    assert handler.queue.counts() == {}  # no copy written: the chunk file was the durable one
    assert _steps(handler) == [("received_inside", None), ("injected", True)]


def test_server_down_the_notification_waits_in_the_queue(tmp_path: Path) -> None:
    handler = _handler(tmp_path, free_port())  # nobody listens there
    handler(_bundle())
    assert handler.queue.counts() == {"queued": 1}
    assert _steps(handler) == [("received_inside", None)]


def test_nothing_overtakes_a_notification_waiting_in_the_queue(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    server, port = sink
    handler = _handler(tmp_path, port)
    handler.queue.add_bundle(b"w" * 16, "waiting", "maildiode@corp.example",
                             ["user@corp.example"], [b"Subject: older\r\n\r\nx\r\n"])  # fmt: skip
    handler(_bundle())
    assert server.received == []
    assert handler.queue.counts() == {"queued": 2}


@pytest.mark.parametrize(
    ("rcpt", "waiting"),
    [
        (("user@corp.example", "later@corp.example"), ("later@corp.example",)),  # 4xx: retried
        (("user@corp.example", "refuse@corp.example"), ("refuse@corp.example",)),  # 5xx: reported
    ],
)
def test_recipients_the_server_did_not_take_go_through_the_queue(
    tmp_path: Path, sink: tuple[FaultySink, int], rcpt: tuple[str, ...], waiting: tuple[str, ...]
) -> None:
    server, port = sink
    handler = _handler(tmp_path, port)
    handler(_bundle(rcpt=rcpt))
    assert [rcpts for _from, rcpts, _data in server.received] == [["user@corp.example"]]
    queued = handler.queue.next_due(set())
    assert queued is not None
    assert queued.rcpts == waiting
    (injected,) = handler.audit.query(step="injected")
    assert (injected.details["rcpt_count"], injected.details["direct"]) == (1, True)


def test_a_whole_transaction_refused_for_now_waits_in_the_queue(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    server, port = sink
    server.temporary = 1  # 451 to DATA
    handler = _handler(tmp_path, port)
    handler(_bundle())
    assert server.received == []
    assert handler.queue.counts() == {"queued": 1}


def test_bundles_an_earlier_version_stored_leave_through_the_queue(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    """Their raw row leaves in the queue's transaction; sent directly it would stay and be built
    again at every start."""
    server, port = sink
    handler = _handler(tmp_path, port)
    bundle = _bundle()
    handler.queue._db.execute(  # what an earlier version stored
        "INSERT INTO arrived VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (bundle.bundle_id, "inbound", bundle.seq, int(bundle.kind), bundle.created_ms,
         bundle.epoch, bundle.data, 0.0),
    )  # fmt: skip
    assert build_left_over(handler) == 1
    assert server.received == []
    assert handler.queue.counts() == {"queued": 1}
    assert handler.queue.arrived_count() == 0


def _fail_once(real: Callable[..., None]) -> Callable[..., None]:
    failures = iter([OSError("No space left on device")])

    def full_disk_once(*args: object, **kwargs: object) -> None:
        for failure in failures:
            raise failure
        real(*args, **kwargs)

    return full_disk_once


def test_a_step_failing_after_the_250_does_not_send_again(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    """A full disk after the server took the notification: the audit log cannot write, the
    reader hands the bundle over again (its done mark was not written either), and it is not
    sent again."""
    server, port = sink
    handler = _handler(tmp_path, port)
    handler.audit.record = _fail_once(handler.audit.record)  # type: ignore[method-assign]
    with pytest.raises(OSError, match="No space"):
        handler(_bundle())
    handler(_bundle())  # the reader's next passes
    handler(_bundle())
    assert len(server.received) == 1
    assert handler.queue.counts() == {}


def test_after_a_partial_250_only_the_rest_is_tried_again(
    tmp_path: Path, sink: tuple[FaultySink, int]
) -> None:
    """The server took one recipient; queueing the other failed on a full disk. Handed over
    again, the bundle goes to the other recipient only."""
    server, port = sink
    handler = _handler(tmp_path, port)
    handler.queue.add_bundle = _fail_once(handler.queue.add_bundle)  # type: ignore[method-assign]
    bundle = _bundle(rcpt=("user@corp.example", "later@corp.example"))
    with pytest.raises(OSError, match="No space"):
        handler(bundle)
    handler(bundle)
    handler(bundle)
    assert [rcpts for _from, rcpts, _data in server.received] == [["user@corp.example"]]
    queued = handler.queue.next_due(set())
    assert queued is not None
    assert queued.rcpts == ("later@corp.example",)
