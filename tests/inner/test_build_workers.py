"""ArrivalStore + BuildWorkers: the link thread stores raw bundles, build threads handle them."""

from __future__ import annotations

import threading
from pathlib import Path

from inner_agent.inject import InjectionQueue
from inner_agent.link import ArrivalStore, BuildWorkers, BundleHandler, ImagePolicy
from inner_agent.notify import NotifyOptions
from maildiode.audit import AuditLog
from maildiode.demo.stack import wait_for
from mailsafe.package import encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import rendered

WAIT_S = 20.0  # generous: the machine running the tests is shared


def _bundle(n: int, data: bytes | None = None, kind: Kind = Kind.DATA) -> ReceivedBundle:
    package = data if data is not None else encode_package(rendered(mail_id=f"mail-{n}"))
    return ReceivedBundle("inbound", n, bytes([n]) * 16, kind, package, 1_800_000_000_000, 1)


def _handler(tmp_path: Path) -> BundleHandler:
    return BundleHandler(
        InjectionQueue(tmp_path / "q.db"), AuditLog(tmp_path / "audit.db"),
        NotifyOptions(our_domains=("corp.example",)), ImagePolicy(max_pixels=1_000_000),
        tmp_path / "quarantine",
    )  # fmt: skip


def test_stored_bundle_survives_a_crash_and_is_built_once_on_restart(tmp_path: Path) -> None:
    first = _handler(tmp_path)
    store = ArrivalStore(first)
    store(_bundle(1))
    store(_bundle(1))  # the reader retried before mark_done
    assert first.queue.arrived_count() == 1
    assert first.queue.counts() == {}
    first.queue.close()  # "kill -9": nothing was built, the raw bundle is on disk

    second = _handler(tmp_path)
    workers = BuildWorkers(second, workers=2)
    workers.start()
    try:
        wait_for(lambda: second.queue.counts() == {"queued": 1}, WAIT_S, "the built bundle")
        wait_for(lambda: second.queue.arrived_count() == 0, WAIT_S, "the raw row to go")
    finally:
        workers.stop()
    ArrivalStore(second)(_bundle(1))  # a replay after it was built is not stored again
    assert second.queue.arrived_count() == 0
    assert len(second.audit.query(step="received_inside")) == 1


def test_many_bundles_are_built_in_parallel_each_exactly_once(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    workers = BuildWorkers(handler, workers=4)
    workers.start()
    try:
        store = ArrivalStore(handler)
        for n in range(1, 21):
            store(_bundle(n))
        store(_bundle(3))
        wait_for(lambda: handler.queue.counts() == {"queued": 20}, WAIT_S, "20 built bundles")
    finally:
        workers.stop()
    assert handler.queue.arrived_count() == 0
    assert len(handler.audit.query(step="received_inside")) == 20


def test_a_bad_stored_bundle_is_quarantined_by_the_workers(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    ArrivalStore(handler)(_bundle(7, data=b"\x93not a package"))
    ArrivalStore(handler)(_bundle(8, kind=Kind.CONTROL))  # refused in the link thread itself
    assert handler.queue.arrived_count() == 1
    workers = BuildWorkers(handler, workers=1)
    workers.start()
    try:
        wait_for(lambda: handler.queue.arrived_count() == 0, WAIT_S, "the quarantine")
    finally:
        workers.stop()
    reasons = sorted(p.name for p in handler.quarantine_dir.glob("*.reason.json"))
    assert len(reasons) == 2
    assert handler.queue.counts() == {}


def test_link_thread_waits_when_the_workers_fall_behind(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    store = ArrivalStore(handler, max_arrived=2)
    store(_bundle(1))
    store(_bundle(2))
    third = threading.Thread(target=store, args=(_bundle(3),))
    third.start()
    third.join(timeout=1.0)
    assert third.is_alive(), "the third bundle was stored past the bound"
    assert handler.queue.arrived_count() == 2
    workers = BuildWorkers(handler, workers=1)
    workers.start()
    try:
        third.join(timeout=WAIT_S)
        assert not third.is_alive()
        wait_for(lambda: handler.queue.counts() == {"queued": 3}, WAIT_S, "3 built bundles")
    finally:
        workers.stop()
