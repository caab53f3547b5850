"""Receiver and LinkReader: reassembly, de-duplication, gaps, heartbeats, limits, restarts."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    EncryptionKey,
    FolderTransport,
    Keyring,
    Kind,
    Reason,
    Receiver,
    Sender,
)
from protocol.bundle import BundleMeta, build_chunks
from protocol.chunk import ChunkHeader, encode_chunk
from protocol.names import new_name
from protocol.receiver import Accepted
from tests.protocol.conftest import Link
from tests.protocol.golden import KEY_A, KEY_B, VECTOR_DIR

RING = Keyring([KEY_A.verify_key])


def bid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def test_bundle_crosses_once_with_its_metadata(link: Link) -> None:
    data = os.urandom(1000)
    receipt = link.sender.publish(data, bid(1))  # type: ignore[union-attr]
    assert receipt.seq == 1
    assert receipt.chunks == 16
    link.carry()
    assert link.poll() == 1
    (got,) = link.delivered
    assert (got.data, got.seq, got.bundle_id, got.kind) == (data, 1, bid(1), Kind.DATA)
    assert got.stream == "inbound"
    assert got.epoch == receipt.epoch
    assert got.created_ms == receipt.created_ms
    assert link.poll() == 0
    assert list((link.root / "work").iterdir()) == []
    counters = link.reader.status().counters  # type: ignore[union-attr]
    assert counters["bundles_delivered"] == 1
    assert counters["chunks_accepted"] == 16


def test_control_bundles_are_delivered_with_their_kind(link: Link) -> None:
    link.sender.publish(b"rotate", bid(2), kind=Kind.CONTROL)  # type: ignore[union-attr]
    link.carry()
    link.poll()
    assert link.delivered[0].kind is Kind.CONTROL


def test_chunks_in_any_order_with_duplicates_deliver_once(link: Link) -> None:
    link.sender.publish(os.urandom(500), bid(1))  # type: ignore[union-attr]
    names = link.carry()
    for name in names[:3]:  # duplicates under other names
        shutil.copy(link.recv_dir / name, link.recv_dir / ("copy-" + name))
    assert link.poll() == 1
    assert len(link.delivered) == 1
    assert link.reader.status().counters["duplicates"] == 3  # type: ignore[union-attr]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    bundles=st.lists(st.binary(max_size=300), min_size=1, max_size=4),
    chunk_size=st.integers(1, 128),
    seed=st.integers(0, 2**32),
    duplicates=st.integers(0, 10),
)
def test_any_bundles_round_trip_through_any_order_duplication_interleaving(
    bundles: list[bytes], chunk_size: int, seed: int, duplicates: int
) -> None:
    rng = random.Random(seed)
    files = []
    for n, bundle in enumerate(bundles, start=1):
        meta = BundleMeta("inbound", 1, n, bid(n), 1_767_225_600_000, Kind.DATA)
        files += list(build_chunks(bundle, meta, chunk_size, KEY_A))
    files += [rng.choice(files) for _ in range(duplicates)]
    rng.shuffle(files)
    delivered: dict[bytes, bytes] = {}
    with tempfile.TemporaryDirectory() as tmp:
        receiver = Receiver(Path(tmp), "inbound", RING, clock=lambda: 1_767_225_600.0)
        for i, data in enumerate(files):
            path = Path(tmp) / f"{i}.chunk"
            path.write_bytes(data)
            if receiver.accept(path, data) is Accepted.COMPLETE:
                for bundle_id in receiver.complete():
                    got = receiver.assemble(bundle_id)
                    assert bundle_id not in delivered
                    delivered[bundle_id] = got.data
                    receiver.mark_done(bundle_id)
        receiver.close()
    assert delivered == {bid(n): b for n, b in enumerate(bundles, start=1)}


def test_restart_does_not_deliver_again_even_under_other_names(link: Link) -> None:
    link.sender.publish(b"x" * 300, bid(1))  # type: ignore[union-attr]
    names = link.carry()
    saved = {name: (link.recv_dir / name).read_bytes() for name in names}
    link.poll()
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader()
    for i, data in enumerate(saved.values()):
        (link.recv_dir / f"replay{i}.mdc").write_bytes(data)
    assert link.poll() == 0
    assert len(link.delivered) == 1
    status = link.reader.status()  # type: ignore[union-attr]
    assert status.counters["duplicates"] == len(saved)
    assert status.counters["bundles_delivered"] == 1  # counters persist


def test_republishing_a_bundle_id_keeps_its_seq_and_is_deduplicated(link: Link) -> None:
    first = link.sender.publish(b"same", bid(7))  # type: ignore[union-attr]
    again = link.sender.publish(b"same", bid(7))  # type: ignore[union-attr]
    assert (again.seq, again.republished) == (first.seq, True)
    assert set(first.file_names).isdisjoint(again.file_names)
    link.carry()
    link.poll()
    assert len(link.delivered) == 1


def test_files_claimed_before_a_crash_are_verified_at_start(link: Link) -> None:
    link.sender.publish(b"y" * 100, bid(1))  # type: ignore[union-attr]
    for name in link.carry():  # as if claimed, then the process died before recording them
        os.rename(link.recv_dir / name, link.root / "work" / new_name(os.urandom, ".chunk"))
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader()
    assert link.poll() == 1
    assert link.delivered[0].data == b"y" * 100


def test_gap_is_reported_after_gap_wait_and_cleared_by_resend(link: Link) -> None:
    sender = link.sender
    assert sender is not None
    lost = {}
    for n in (1, 2, 3):
        receipt = sender.publish(bytes([n]) * 10, bid(n))
        if n == 2:
            lost = {name: (link.send_dir / name) for name in receipt.file_names}
            for path in lost.values():
                path.unlink()
    link.carry()
    link.poll()
    reader = link.reader
    assert reader is not None
    assert reader.status().gaps == ()
    link.clock.advance(301)
    link.poll()
    assert reader.status().gaps == (2,)
    assert reader.status().counters["gaps"] == 1
    link.poll()
    assert reader.status().counters["gaps"] == 1  # reported once
    assert sender.resend(2, 2) == 1
    link.carry()
    link.poll()
    assert [b.seq for b in link.delivered] == [1, 3, 2]
    assert reader.status().gaps == ()


def test_heartbeat_reveals_loss_at_the_tail(link: Link) -> None:
    sender = link.sender
    assert sender is not None
    sender.publish(b"one", bid(1))
    receipt = sender.publish(b"two", bid(2))
    for name in receipt.file_names:
        (link.send_dir / name).unlink()
    link.clock.advance(31)
    assert sender.heartbeat_if_due()
    link.carry()
    link.poll()
    link.clock.advance(301)
    link.poll()
    status = link.reader.status()  # type: ignore[union-attr]
    assert status.gaps == (2,)
    assert status.highest_seq == 2
    assert status.last_heartbeat_ms == int(link.clock.now * 1000) - 301_000
    assert status.sender_epoch == sender.epoch
    assert status.counters["heartbeats"] == 1


def test_silent_link_alarm(link: Link) -> None:
    reader = link.reader
    assert reader is not None
    link.poll()
    assert not reader.status().silent
    link.clock.advance(181)
    link.poll()
    assert reader.status().silent
    assert reader.status().counters["silence_alarms"] == 1
    link.sender.heartbeat()  # type: ignore[union-attr]
    link.carry()
    link.poll()
    assert not reader.status().silent


def test_chunk_older_than_resend_window_is_expired(link: Link) -> None:
    link.sender.publish(b"old", bid(1))  # type: ignore[union-attr]
    link.clock.advance(7 * 86400 + 1)
    link.carry()
    link.poll()
    assert link.delivered == []
    assert link.quarantined() == [Reason.EXPIRED.value]


def test_chunk_of_another_stream_is_refused(tmp_path: Path, link: Link) -> None:
    other = Sender(tmp_path / "o", "outbound", KEY_A, FolderTransport(link.send_dir),
                   clock=link.clock)  # fmt: skip
    other.publish(b"reflected", bid(1))
    other.close()
    link.carry()
    link.poll()
    assert link.quarantined() == [Reason.WRONG_STREAM.value]


def test_chunks_that_disagree_about_their_bundle_are_inconsistent(
    tmp_path: Path, link: Link
) -> None:
    # Two senders (e.g. a restored state) publish different content under one bundle id.
    link.sender.publish(b"a" * 100, bid(1))  # type: ignore[union-attr]
    first = link.carry()
    (link.recv_dir / first[0]).unlink()  # keep the bundle partial
    other = Sender(tmp_path / "o", "inbound", KEY_A, FolderTransport(link.send_dir),
                   chunk_size=64, clock=link.clock)  # fmt: skip
    other.publish(b"b" * 100, bid(1))
    other.close()
    link.carry()
    link.poll()
    assert Reason.INCONSISTENT.value in link.quarantined()
    # whichever version completed first may be delivered, never a mix of both
    assert [b.data for b in link.delivered] in ([], [b"b" * 100])


def test_heartbeat_whose_body_disagrees_is_refused(link: Link) -> None:
    body = (5).to_bytes(8, "big") + (1).to_bytes(8, "big")
    header = ChunkHeader("inbound", 1, 6, bid(9), 0, 1, 16, 16, hashlib.sha256(body).digest(),
                         int(link.clock.now * 1000), Kind.HEARTBEAT)  # fmt: skip
    link.recv_dir.mkdir(exist_ok=True)
    (link.recv_dir / "hb.mdc").write_bytes(encode_chunk(header, body, KEY_A))
    link.poll()
    assert link.quarantined() == [Reason.INCONSISTENT.value]


def test_too_many_partial_bundles_is_capacity(tmp_path: Path, link: Link) -> None:
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader(max_bundles_in_flight=1)
    for n in (1, 2):
        receipt = link.sender.publish(bytes([n]) * 100, bid(n))  # type: ignore[union-attr]
        (link.send_dir / receipt.file_names[0]).unlink()  # each stays partial
    link.carry()
    link.poll()
    assert link.quarantined() == [Reason.CAPACITY.value]


def test_partial_bundle_past_its_ttl_is_incomplete(link: Link) -> None:
    receipt = link.sender.publish(b"z" * 200, bid(1))  # type: ignore[union-attr]
    (link.send_dir / receipt.file_names[1]).unlink()
    link.carry()
    link.poll()
    assert link.reader.status().in_flight == 1  # type: ignore[union-attr]
    link.clock.advance(86400 + 1)
    link.poll()
    assert link.quarantined() == [Reason.INCOMPLETE.value] * (receipt.chunks - 1)
    assert link.reader.status().in_flight == 0  # type: ignore[union-attr]


def test_bundle_not_matching_its_hash_is_quarantined(link: Link) -> None:
    link.recv_dir.mkdir(exist_ok=True)
    shutil.copy(VECTOR_DIR / "invalid" / "bad-hash.mdc", link.recv_dir / "x.mdc")
    link.poll()
    assert link.quarantined() == [Reason.BAD_HASH.value]
    assert link.delivered == []


@pytest.mark.parametrize("kept", [32 << 20, 150, 0])
def test_single_chunk_bundles_are_whole_whether_kept_in_memory_or_read_again(
    link: Link, monkeypatch: pytest.MonkeyPatch, kept: int
) -> None:
    """A verified single-chunk bundle keeps its payload while the bytes kept stay under the
    bound (no second read and hash); past it, it is read from its file again. Either way the
    bundle is delivered whole, and one whose payload does not match bsha is refused."""
    monkeypatch.setattr("protocol.receiver.MAX_WHOLE_BYTES_KEPT", kept)
    link.chunk_size = 1 << 20
    link.open_sender()
    bundles = {bid(n): os.urandom(100) for n in range(1, 4)}
    for bundle_id, data in bundles.items():
        link.sender.publish(data, bundle_id)  # type: ignore[union-attr]
    link.carry()
    shutil.copy(VECTOR_DIR / "invalid" / "bad-hash.mdc", link.recv_dir / "x.mdc")
    link.poll()
    assert {b.bundle_id: b.data for b in link.delivered} == bundles
    assert link.quarantined() == [Reason.BAD_HASH.value]
    assert link.reader.receiver._whole_bytes == 0  # type: ignore[union-attr]


def test_failing_handler_is_retried_and_nothing_is_lost(link: Link) -> None:
    link.sender.publish(b"retry me", bid(1))  # type: ignore[union-attr]
    link.carry()
    calls = []

    def flaky(bundle: object) -> None:
        calls.append(bundle)
        if len(calls) == 1:
            raise OSError("disk full")

    assert link.reader.poll(flaky) == 0  # type: ignore[union-attr]
    assert link.reader.poll(flaky) == 1  # type: ignore[union-attr]
    assert len(calls) == 2
    assert link.reader.status().counters["handler_errors"] == 1  # type: ignore[union-attr]


def test_encrypted_link_round_trip(tmp_path: Path, link: Link) -> None:
    recipient = EncryptionKey.generate()
    link.sender.close()  # type: ignore[union-attr]
    link.open_sender(encrypt_to=recipient.public_key)
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader(decrypt_key=recipient)
    data = os.urandom(700)
    link.sender.publish(data, bid(1))  # type: ignore[union-attr]
    link.carry()
    link.poll()
    assert link.delivered[0].data == data


@pytest.mark.parametrize("kept", [32 << 20, 0])
def test_encrypted_single_chunk_bundles_are_decrypted_once_while_kept(
    link: Link, monkeypatch: pytest.MonkeyPatch, kept: int
) -> None:
    """On an encrypted link a single-chunk bundle keeps its plaintext from verification to
    delivery (its file is not read, verified and decrypted a second time); past the bound it is
    read again. Either way it arrives whole."""
    monkeypatch.setattr("protocol.receiver.MAX_WHOLE_BYTES_KEPT", kept)
    recipient = EncryptionKey.generate()
    link.chunk_size = 1 << 20
    link.sender.close()  # type: ignore[union-attr]
    link.open_sender(encrypt_to=recipient.public_key)
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader(decrypt_key=recipient)
    bundles = {bid(n): os.urandom(300) for n in range(1, 4)}
    for bundle_id, data in bundles.items():
        link.sender.publish(data, bundle_id)  # type: ignore[union-attr]
    link.carry()
    receiver = link.reader.receiver  # type: ignore[union-attr]
    reads: list[Path] = []
    read_payload = receiver._read_payload
    monkeypatch.setattr(receiver, "_read_payload", lambda path, *rest: reads.append(path)
                        or read_payload(path, *rest))  # fmt: skip
    link.poll()
    assert {b.bundle_id: b.data for b in link.delivered} == bundles
    assert len(reads) == (0 if kept else 3)
    assert receiver._whole_bytes == 0


def test_rotation_accepts_both_keys(link: Link) -> None:
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader(Keyring([KEY_A.verify_key, KEY_B.verify_key]))
    link.sender.publish(b"old key", bid(1))  # type: ignore[union-attr]
    link.sender.close()  # type: ignore[union-attr]
    link.key = KEY_B
    link.open_sender()
    link.sender.publish(b"new key", bid(2))  # type: ignore[union-attr]
    link.carry()
    link.poll()
    assert sorted(b.data for b in link.delivered) == [b"new key", b"old key"]


def test_armoured_link_round_trip(link: Link) -> None:
    link.sender.transport = FolderTransport(link.send_dir, armor=True)  # type: ignore[union-attr]
    data = os.urandom(300)
    receipt = link.sender.publish(data, bid(1))  # type: ignore[union-attr]
    for name in receipt.file_names:  # a linkage product that rewrites line ends
        path = link.send_dir / name
        path.write_bytes(path.read_bytes().replace(b"\n", b"\r\n"))
    link.carry()
    link.poll()
    assert link.delivered[0].data == data


def test_garbage_files_never_stop_the_reader(link: Link) -> None:
    link.recv_dir.mkdir(exist_ok=True)
    for i in range(20):
        (link.recv_dir / f"junk{i}").write_bytes(os.urandom(i * 13))
    link.sender.publish(b"still works", bid(1))  # type: ignore[union-attr]
    link.carry()
    assert link.poll() == 1
    assert len(link.quarantined()) == 20


def test_done_ids_are_pruned_only_after_the_resend_window(link: Link) -> None:
    link.sender.publish(b"p", bid(1))  # type: ignore[union-attr]
    link.carry()
    link.poll()
    receiver = link.reader.receiver  # type: ignore[union-attr]
    assert receiver.prune() == 0
    link.clock.advance(7 * 86400 + 1)
    assert receiver.prune() == 1


def test_wrong_receiver_stream_name_is_a_local_error(tmp_path: Path) -> None:
    from protocol import LocalError

    with pytest.raises(LocalError):
        Receiver(tmp_path, "Bad/Name", RING)


def test_bytes_held_for_partial_bundles_are_capped(link: Link) -> None:
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader(max_bytes_held=150)
    for n in (1, 2):
        receipt = link.sender.publish(bytes([n]) * 100, bid(n))  # type: ignore[union-attr]
        (link.send_dir / receipt.file_names[0]).unlink()
    link.carry()
    link.poll()
    assert link.quarantined() == [Reason.CAPACITY.value]


def test_chunk_dated_far_in_the_future_is_expired(link: Link) -> None:
    link.sender.publish(b"future", bid(1))  # type: ignore[union-attr]
    link.clock.advance(-(86400 + 10))  # the receiver's clock is a day behind
    link.carry()
    link.poll()
    assert link.quarantined() == [Reason.EXPIRED.value]


def test_partial_bundle_survives_a_restart(link: Link) -> None:
    receipt = link.sender.publish(b"q" * 300, bid(1))  # type: ignore[union-attr]
    held_back = {name: (link.send_dir / name).read_bytes() for name in receipt.file_names[:2]}
    for name in held_back:
        (link.send_dir / name).unlink()
    link.carry()
    link.poll()
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader()
    assert link.reader.status().in_flight == 1  # type: ignore[union-attr]
    for name, data in held_back.items():
        (link.recv_dir / name).write_bytes(data)
    assert link.poll() == 1
    assert link.delivered[0].data == b"q" * 300


def test_crash_between_handler_and_mark_done_delivers_again_after_restart(link: Link) -> None:
    link.sender.publish(b"at least once", bid(1))  # type: ignore[union-attr]
    link.carry()

    def crash(bundle: object) -> None:
        raise SystemExit("power cut")

    with pytest.raises(SystemExit):
        link.reader.poll(crash)  # type: ignore[union-attr]
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader()
    assert link.poll() == 1  # the handler must be idempotent per bundle id
    assert link.delivered[0].bundle_id == bid(1)


def test_heartbeat_before_any_data_then_older_data_reports_what_is_missing(link: Link) -> None:
    sender = link.sender
    assert sender is not None
    for n in (1, 2, 3):
        receipt = sender.publish(bytes([n]), bid(n))
        if n != 1:
            for name in receipt.file_names:
                (link.send_dir / name).unlink()
    first = set(link.carry())
    (link.recv_dir / sorted(first)[0]).rename(link.root / "held-back")
    sender.heartbeat()  # last seq 3
    link.carry()
    link.poll()
    (link.root / "held-back").rename(link.recv_dir / "late.mdc")
    link.poll()
    link.clock.advance(301)
    link.poll()
    assert link.reader.status().gaps == (2, 3)  # type: ignore[union-attr]


def test_run_once_or_wait_returns_after_the_rescan_interval(link: Link) -> None:
    import time

    start = time.monotonic()
    assert link.reader.run_once_or_wait(link.delivered.append, 0.05) == 0  # type: ignore[union-attr]
    assert time.monotonic() - start >= 0.05


def test_a_backlog_larger_than_the_in_flight_limit_is_delivered_whole(link: Link) -> None:
    """Complete bundles leave as the reader goes, so a backlog (say, after the receiving agent
    was down) never fills the limit meant for partial bundles: nothing is refused for it."""
    limit = 8
    reader = link.open_reader(max_bundles_in_flight=limit)
    sender = link.sender
    assert sender is not None
    for number in range(5 * limit):
        sender.publish(b"backlog %d" % number, number.to_bytes(16, "big"))
    link.carry()
    reader.poll(link.delivered.append)
    assert sorted(b.data for b in link.delivered) == sorted(b"backlog %d" % n for n in range(40))
    assert link.quarantined() == []


def _rows(link: Link, table: str) -> int:
    import sqlite3

    with sqlite3.connect(link.root / "receiver-state" / "receiver-inbound.db") as db:
        return int(db.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def test_a_single_chunk_bundle_writes_nothing_until_done_and_survives_a_crash(
    link: Link,
) -> None:
    """One-chunk bundles (most mail) are complete when verified: held in memory, their seq,
    last-seen time and counters written in the one commit that marks them done. A crash before
    that loses nothing: the file is verified again at start."""
    sender = link.sender
    assert sender is not None
    assert sender.publish(b"one chunk", bid(1)).chunks == 1
    link.carry()
    handled = []

    def crash(bundle: object) -> None:
        handled.append(bundle)
        assert (_rows(link, "partial"), _rows(link, "held"), _rows(link, "done")) == (0, 0, 0)
        raise SystemExit("power cut")

    with pytest.raises(SystemExit):
        link.reader.poll(crash)  # type: ignore[union-attr]
    assert len(handled) == 1
    link.reader.close()  # type: ignore[union-attr]
    link.open_reader()
    assert link.poll() == 1
    assert link.delivered[0].data == b"one chunk"
    status = link.reader.status()  # type: ignore[union-attr]
    assert (status.highest_seq, status.last_seen_ms) == (1, int(link.clock.now * 1000))
    assert status.counters["chunks_accepted"] == 1
    assert status.counters["bundles_delivered"] == 1
    assert list((link.root / "work").iterdir()) == []
    sender.publish(b"one chunk", bid(1))  # a replay after done is a duplicate
    link.carry()
    assert link.poll() == 0
    assert link.reader.status().counters["duplicates"] == 1  # type: ignore[union-attr]


def test_single_chunk_bundles_waiting_on_a_failing_handler_take_no_partial_room(
    link: Link,
) -> None:
    """Complete bundles are not partial ones: while the handler fails (a full disk inside),
    more of them than max_bundles_in_flight wait, none refused, none reported as a gap."""
    limit = 4
    reader = link.open_reader(max_bundles_in_flight=limit)
    sender = link.sender
    assert sender is not None
    for number in range(3 * limit):
        sender.publish(b"waits %d" % number, number.to_bytes(16, "big"))
    link.carry()

    def disk_full(bundle: object) -> None:
        raise OSError("disk full")

    assert reader.poll(disk_full) == 0
    link.clock.advance(301)
    assert reader.poll(disk_full) == 0
    assert reader.status().gaps == ()
    assert link.quarantined() == []
    assert reader.poll(link.delivered.append) == 3 * limit
    assert [b.seq for b in link.delivered] == list(range(1, 3 * limit + 1))
    assert reader.status().gaps == ()
