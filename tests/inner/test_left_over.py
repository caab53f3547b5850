"""Raw bundles an earlier version stored in the queue (table ``arrived``) are built at start."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from inner_agent.bundle_handler import BundleHandler
from inner_agent.left_over import build_left_over
from mailsafe.payload import encode_package
from protocol import Kind, ReceivedBundle
from tests.inner.helpers import make_handler, rendered


def _bundle(n: int, data: bytes | None = None, kind: Kind = Kind.DATA) -> ReceivedBundle:
    package = data if data is not None else encode_package(rendered(mail_id=f"mail-{n}"))
    return ReceivedBundle("inbound", n, bytes([n]) * 16, kind, package, 1_800_000_000_000, 1)


def _handler(tmp_path: Path) -> BundleHandler:
    return make_handler(tmp_path)


def _store_as_an_earlier_version_did(path: Path, *bundles: ReceivedBundle) -> None:
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO arrived VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(b.bundle_id, b.stream, b.seq, int(b.kind), b.created_ms, b.epoch, b.data, 1.0)
             for b in bundles],
        )  # fmt: skip


def test_stored_bundles_are_built_once_and_a_replay_is_not(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    _store_as_an_earlier_version_did(tmp_path / "q.db", *(_bundle(n) for n in range(1, 6)))
    assert handler.queue.arrived_count() == 5
    assert build_left_over(handler) == 5
    assert handler.queue.arrived_count() == 0
    assert handler.queue.counts() == {"queued": 5}
    handler(_bundle(3))  # the link delivers one of them again
    assert handler.queue.counts() == {"queued": 5}
    assert len(handler.audit.query(step="received_inside")) == 5
    assert build_left_over(handler) == 0


def test_a_bad_stored_bundle_is_quarantined(tmp_path: Path) -> None:
    handler = _handler(tmp_path)
    _store_as_an_earlier_version_did(
        tmp_path / "q.db", _bundle(7, data=b"\x93not a package"), _bundle(8, kind=Kind.CONTROL)
    )
    assert build_left_over(handler) == 2
    assert handler.queue.arrived_count() == 0
    assert len(list(handler.quarantine_dir.glob("*.reason.json"))) == 2
    assert handler.queue.counts() == {}


def test_a_bundle_that_fails_by_our_bug_stays_for_the_next_start(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    handler = _handler(tmp_path)
    _store_as_an_earlier_version_did(tmp_path / "q.db", _bundle(1), _bundle(2))
    real = handler.prepare

    def flaky(bundle: ReceivedBundle):  # type: ignore[no-untyped-def]
        if bundle.seq == 1:
            raise RuntimeError("a bug")
        return real(bundle)

    monkeypatch.setattr(handler, "prepare", flaky)
    assert build_left_over(handler) == 2  # both tried, one failed
    assert handler.queue.arrived_count() == 1
    assert handler.queue.counts() == {"queued": 1}
    monkeypatch.setattr(handler, "prepare", real)
    assert build_left_over(handler) == 1
    assert handler.queue.counts() == {"queued": 2}
