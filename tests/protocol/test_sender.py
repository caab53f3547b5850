"""Sender: seqs never reused, idempotent publish, epochs, heartbeats, resend, pruning."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from protocol import (
    BundleIdConflict,
    FolderTransport,
    Keyring,
    Kind,
    LocalError,
    Sender,
    decode_chunk,
)
from tests.protocol.conftest import FakeClock
from tests.protocol.golden import KEY_A

RING = Keyring([KEY_A.verify_key])


def make(tmp_path: Path, clock: FakeClock, **options: object) -> Sender:
    return Sender(tmp_path / "state", "inbound", KEY_A, FolderTransport(tmp_path / "send"),
                  chunk_size=64, clock=clock, **options)  # type: ignore[arg-type]  # fmt: skip


def published(tmp_path: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((tmp_path / "send").iterdir())]


def test_seqs_count_up_and_survive_restarts(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    assert [sender.publish(b"x", bytes([n]) * 16).seq for n in range(3)] == [1, 2, 3]
    sender.close()
    sender = make(tmp_path, clock)
    assert sender.publish(b"x", b"\x09" * 16).seq == 4
    assert sender.last_seq == 4
    sender.close()


def test_seq_is_committed_before_publishing(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    (tmp_path / "send").rename(tmp_path / "gone")  # the publish will fail
    with pytest.raises(LocalError):
        sender.publish(b"x", b"\x01" * 16)
    (tmp_path / "gone").rename(tmp_path / "send")
    sender.close()
    sender = make(tmp_path, clock)
    # the failed bundle keeps its seq when published again; a new bundle never reuses it
    assert sender.publish(b"x", b"\x01" * 16).seq == 1
    assert sender.publish(b"y", b"\x02" * 16).seq == 2
    sender.close()


def test_epoch_grows_at_every_start(tmp_path: Path, clock: FakeClock) -> None:
    epochs = []
    for _ in range(3):
        sender = make(tmp_path, clock)
        epochs.append(sender.epoch)
        sender.close()
    assert epochs == [1, 2, 3]
    tool = make(tmp_path, clock, new_epoch=False)
    assert tool.epoch == 3
    tool.close()


def test_republish_same_id_gives_same_seq_and_same_bytes(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    first = sender.publish(b"a" * 200, b"\x01" * 16)
    before = set(published(tmp_path))
    sender.close()
    clock.advance(100)
    sender = make(tmp_path, clock)  # new epoch: the bundle keeps its original epoch
    again = sender.publish(b"a" * 200, b"\x01" * 16)
    assert (again.seq, again.epoch, again.created_ms) == (first.seq, first.epoch, first.created_ms)
    assert again.republished
    assert set(published(tmp_path)) == before  # same chunk bytes, new file names
    assert len(list((tmp_path / "send").iterdir())) == 2 * first.chunks
    with pytest.raises(BundleIdConflict, match="other content"):
        sender.publish(b"b" * 200, b"\x01" * 16)
    # refused, and the first content sent once more from the kept copies
    assert len(list((tmp_path / "send").iterdir())) == 3 * first.chunks
    assert set(published(tmp_path)) == before
    sender.close()


@pytest.mark.parametrize("chunks_written", [0, 2])
def test_a_bundle_id_whose_first_content_never_reached_the_link_takes_the_new_one(
    tmp_path: Path, clock: FakeClock, chunks_written: int
) -> None:
    """Killed after the seq was committed and before (all) its chunks were written, then
    published again with other content (a mail rendered again as a notice): the new content
    goes out, under the same seq when nothing of the first was written, else under a new one."""
    sender = make(tmp_path, clock)
    first = sender.publish(b"a" * 200, b"\x01" * 16)  # 4 chunks of 64 bytes
    sender.publish(b"z" * 10, b"\x02" * 16)
    kept = sorted((tmp_path / "state" / "sent-inbound").rglob("*.mdc"))[: first.chunks]
    for path in kept[chunks_written:]:
        path.unlink()  # as if the sender had died before writing these chunks
    for path in (tmp_path / "send").iterdir():
        path.unlink()
    sender.close()

    sender = make(tmp_path, clock)
    again = sender.publish(b"b" * 300, b"\x01" * 16)
    assert again.seq == (first.seq if chunks_written == 0 else 3)
    names = {decode_chunk(p.read_bytes(), RING).header.seq for p in (tmp_path / "send").iterdir()}
    assert names == {again.seq}
    assert sender.publish(b"b" * 300, b"\x01" * 16).seq == again.seq  # the new one stays
    sender.close()


def test_publish_refuses_bad_arguments(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    with pytest.raises(LocalError):
        sender.publish(b"x", b"short")
    with pytest.raises(LocalError):
        sender.publish(b"x", b"\x01" * 16, kind=Kind.HEARTBEAT)
    with pytest.raises(LocalError):
        Sender(tmp_path / "s", "No Good", KEY_A, FolderTransport(tmp_path / "send"))
    sender.close()


def test_heartbeat_only_when_idle(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock, heartbeat_s=30)
    assert sender.heartbeat_if_due()  # at start: announces the epoch
    assert not sender.heartbeat_if_due()
    clock.advance(20)
    sender.publish(b"x", b"\x01" * 16)
    clock.advance(20)
    assert not sender.heartbeat_if_due()  # traffic 20 s ago
    clock.advance(11)
    assert sender.heartbeat_if_due()
    beats = [decode_chunk(d, RING) for d in published(tmp_path)]
    beats = [c for c in beats if c.header.kind is Kind.HEARTBEAT]
    assert sorted((c.header.seq, c.header.epoch) for c in beats) == [(0, 1), (1, 1)]
    assert sender.last_seq == 1  # heartbeats consume no seq
    sender.close()


def test_resend_publishes_kept_chunks_under_new_names(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    receipts = [sender.publish(bytes([n]) * 100, bytes([n]) * 16) for n in range(1, 4)]
    originals = published(tmp_path)
    for path in (tmp_path / "send").iterdir():
        path.unlink()  # the linkage took them
    assert sender.resend(2, 3) == 2
    again = published(tmp_path)
    assert len(again) == receipts[1].chunks + receipts[2].chunks
    assert set(again) <= set(originals)
    assert sender.resend(5, 9) == 0  # never sent: logged, nothing published
    with pytest.raises(LocalError):
        sender.resend(3, 2)
    sender.close()


def test_kept_copies_are_pruned_after_the_window(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock, resend_window_s=3600)
    sender.publish(b"x" * 100, b"\x01" * 16)
    assert sender.prune() == 0
    clock.advance(3601)
    assert sender.prune() == 1
    assert sender.resend(1, 1) == 0
    sender.close()


def test_scheduled_repeat_of_the_last_bundles(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock, repeat_last=2, repeat_every_s=600, heartbeat_s=3600)
    for n in range(1, 4):
        sender.publish(b"z" * 10, bytes([n]) * 16)
    for path in (tmp_path / "send").iterdir():
        path.unlink()
    clock.advance(601)
    sender.heartbeat_if_due()
    seqs = sorted(decode_chunk(d, RING).header.seq for d in published(tmp_path))
    assert seqs == [2, 3]
    sender.close()


def test_kept_copies_share_a_folder_per_thousand_seqs_and_old_layout_still_works(
    tmp_path: Path, clock: FakeClock
) -> None:
    sender = make(tmp_path, clock, resend_window_s=3600)
    chunks = sum(sender.publish(bytes([n]) * 100, bytes([n]) * 16).chunks for n in range(1, 4))
    kept = tmp_path / "state" / "sent-inbound"
    assert [p.name for p in kept.iterdir()] == ["g00000000000000000"]
    # a copy in the layout of earlier versions (one folder per seq) is re-sent and pruned too
    old = kept / f"{3:020d}"
    old.mkdir()
    for path in sorted((kept / "g00000000000000000").glob(f"{3:020d}.*")):
        path.rename(old / path.name.split(".", 1)[1])
    for path in (tmp_path / "send").iterdir():
        path.unlink()
    assert sender.resend(1, 3) == 3
    assert len(published(tmp_path)) == chunks
    clock.advance(3601)
    assert sender.prune() == 3
    assert list(kept.iterdir()) == []
    sender.close()


def test_kept_copies_are_hard_links_when_possible(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    receipt = sender.publish(os.urandom(100), b"\x01" * 16)
    path = tmp_path / "send" / receipt.file_names[0]
    assert os.stat(path).st_nlink == 2
    sender.close()


@pytest.mark.parametrize("size", [0, 1, 63, 64, 65, 1000])
def test_fast_folder_path_writes_exactly_the_encoded_chunks(
    tmp_path: Path, clock: FakeClock, size: int
) -> None:
    from protocol.bundle import BundleMeta, build_chunks

    sender = make(tmp_path, clock)
    data = os.urandom(size)
    receipt = sender.publish(data, b"\x05" * 16)
    meta = BundleMeta("inbound", receipt.epoch, receipt.seq, b"\x05" * 16, receipt.created_ms,
                      Kind.DATA)  # fmt: skip
    expected = sorted(build_chunks(data, meta, 64, KEY_A))
    assert sorted(published(tmp_path)) == expected
    sender.close()


def test_publish_many_writes_what_publish_would(tmp_path: Path, clock: FakeClock) -> None:
    """Group commit: several new bundles under consecutive seqs, each file exactly the chunks
    publish() would write for it, every chunk kept, in one call."""
    from protocol.bundle import BundleMeta, build_chunks

    sender = make(tmp_path, clock)
    sender.publish(b"before", b"\x00" * 16)
    bundles = [(os.urandom(size), bytes([n]) * 16) for n, size in ((1, 10), (2, 64), (3, 150))]
    receipts = sender.publish_many(bundles)
    assert [r.seq for r in receipts] == [2, 3, 4]
    assert [r.chunks for r in receipts] == [1, 1, 3]
    expected = []
    for (data, bundle_id), receipt in zip(bundles, receipts, strict=True):
        meta = BundleMeta("inbound", receipt.epoch, receipt.seq, bundle_id, receipt.created_ms,
                          Kind.DATA)  # fmt: skip
        expected += build_chunks(data, meta, 64, KEY_A)
        names = receipt.file_names
        assert sorted((tmp_path / "send" / n).read_bytes() for n in names) == sorted(
            build_chunks(data, meta, 64, KEY_A)
        )
        assert all(os.stat(tmp_path / "send" / n).st_nlink == 2 for n in names)  # kept
    assert sorted(expected) == sorted(
        b for b in published(tmp_path) if decode_chunk(b, RING).header.seq > 1
    )
    sender.close()
    sender = make(tmp_path, clock)  # the seqs and digests were committed
    assert sender.publish(bundles[1][0], bundles[1][1]).seq == 3
    assert sender.publish(b"next", b"\x09" * 16).seq == 5
    sender.close()


def test_publish_many_groups_on_an_encrypted_link(
    tmp_path: Path, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Group commit on an encrypted link too (what `maildiode init` writes, D56): consecutive
    seqs, one fsync of the pickup folder for the group, every chunk kept and sealed with a
    fresh ephemeral key of its own, opening to the bundle's bytes."""
    import protocol.transport
    from tests.protocol.golden import RECIPIENT

    synced: list[Path] = []
    real_fsync_dir = protocol.transport.fsync_dir
    monkeypatch.setattr(protocol.transport, "fsync_dir",
                        lambda path: (synced.append(path), real_fsync_dir(path))[1])  # fmt: skip
    sender = make(tmp_path, clock, encrypt_to=RECIPIENT.public_key)
    ephemerals: list[bytes] = []
    new_ephemeral = sender._new_ephemeral
    monkeypatch.setattr(sender, "_new_ephemeral",
                        lambda: (key := new_ephemeral(), ephemerals.append(key.public_key.raw))[0])  # fmt: skip
    synced.clear()
    bundles = [(os.urandom(size), bytes([n]) * 16) for n, size in ((1, 10), (2, 64), (3, 150))]
    receipts = sender.publish_many(bundles)
    assert [r.seq for r in receipts] == [1, 2, 3]
    assert synced == [tmp_path / "send"]  # one folder sync for the group, not one per bundle
    for (data, _bundle_id), receipt in zip(bundles, receipts, strict=True):
        files = [(tmp_path / "send" / name).read_bytes() for name in receipt.file_names]
        chunks = [decode_chunk(f, RING, decrypt_key=RECIPIENT) for f in files]
        assert all(c.header.seq == receipt.seq for c in chunks)
        assert b"".join(c.payload for c in sorted(chunks, key=lambda c: c.header.index)) == data
        assert all(os.stat(tmp_path / "send" / n).st_nlink == 2 for n in receipt.file_names)
    assert len(set(ephemerals)) == len(ephemerals) == sum(r.chunks for r in receipts)
    sender.close()
    sender = make(tmp_path, clock, encrypt_to=RECIPIENT.public_key)  # seqs and digests committed
    assert sender.publish(bundles[1][0], bundles[1][1]).seq == 2
    assert sender.publish(b"next", b"\x09" * 16).seq == 4
    sender.close()


def test_publish_many_takes_known_ids_one_at_a_time(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    first = sender.publish(b"a" * 10, b"\x01" * 16)
    receipts = sender.publish_many([(b"a" * 10, b"\x01" * 16), (b"b" * 10, b"\x02" * 16)])
    assert [(r.seq, r.republished) for r in receipts] == [(first.seq, True), (2, False)]
    sender.close()


def test_publish_many_commits_the_seqs_before_publishing(tmp_path: Path, clock: FakeClock) -> None:
    sender = make(tmp_path, clock)
    (tmp_path / "send").rename(tmp_path / "gone")  # the publish will fail
    with pytest.raises(LocalError):
        sender.publish_many([(b"x", b"\x01" * 16), (b"y", b"\x02" * 16)])
    (tmp_path / "gone").rename(tmp_path / "send")
    sender.close()
    sender = make(tmp_path, clock)
    # published again one by one, each keeps its seq; a new bundle never reuses one
    assert sender.publish(b"y", b"\x02" * 16).seq == 2
    assert sender.publish(b"x", b"\x01" * 16).seq == 1
    assert sender.publish(b"z", b"\x03" * 16).seq == 3
    sender.close()
