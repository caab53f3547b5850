"""Done marks in groups: each committed before the next bundle is handled, synced to disk once
per ``done_group``, and no chunk file deleted before its mark is synced."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from protocol import ReceivedBundle
from protocol.errors import LocalError
from protocol.reader import LinkReader
from tests.protocol.conftest import Link

ROOT = Path(__file__).resolve().parents[2]


def bid(n: int) -> bytes:
    return n.to_bytes(16, "big")


def _publish(link: Link, count: int) -> dict[bytes, bytes]:
    """``count`` single-chunk bundles, carried to the receive folder."""
    link.chunk_size = 1 << 20
    link.sender.close()  # type: ignore[union-attr]
    link.open_sender()
    bundles = {bid(n): os.urandom(200) for n in range(1, count + 1)}
    for bundle_id, data in bundles.items():
        link.sender.publish(data, bundle_id)  # type: ignore[union-attr]
    link.carry()
    return bundles


def _regroup(link: Link, done_group: int) -> LinkReader:
    link.reader.close()  # type: ignore[union-attr]
    link.done_group = done_group
    return link.open_reader()


def test_marks_are_synced_once_per_group_and_files_go_only_after_the_sync(
    link: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    bundles = _publish(link, 10)
    reader = _regroup(link, 4)
    receiver = reader.receiver
    marks: list[bool] = []
    mark_done = receiver.mark_done

    def recording(bundle_id: bytes, *, durable: bool = True) -> list[Path]:
        marks.append(durable)
        return mark_done(bundle_id, durable=durable)

    monkeypatch.setattr(receiver, "mark_done", recording)
    in_work_folder: list[int] = []

    def handler(bundle: ReceivedBundle) -> None:
        in_work_folder.append(len(list((link.root / "work").iterdir())))
        link.delivered.append(bundle)

    assert reader.poll(handler) == 10
    assert marks == [False, False, False, True] * 2 + [False, False]
    # a group's files stay until its sync: 10 claimed, 4 gone after the first sync, 8 after
    # the second
    assert in_work_folder == [10, 10, 10, 10, 6, 6, 6, 6, 2, 2]
    assert {b.bundle_id: b.data for b in link.delivered} == bundles
    assert len(list((link.root / "work").iterdir())) == 2  # the last two: marked, not synced
    assert reader.poll(handler) == 0  # a pass with nothing to deliver syncs them
    assert list((link.root / "work").iterdir()) == []
    assert reader.status().counters["bundles_delivered"] == 10


def test_closing_the_reader_syncs_the_waiting_marks(link: Link) -> None:
    _publish(link, 3)
    reader = _regroup(link, 8)
    assert reader.poll(link.delivered.append) == 3
    assert len(list((link.root / "work").iterdir())) == 3
    reader.close()
    assert list((link.root / "work").iterdir()) == []
    link.open_reader()
    assert link.poll() == 0  # done, not handed over again


def test_a_look_at_the_work_folder_again_syncs_the_waiting_marks_first(
    link: Link, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Files of bundles marked but not yet synced are leftovers in the work folder; verified
    again they are duplicates and deleted, so their marks must be on disk before that."""
    _publish(link, 3)
    reader = _regroup(link, 8)
    assert reader.poll(link.delivered.append) == 3
    events: list[str] = []
    sync_done, discard = reader.receiver.sync_done, reader.intake.discard
    monkeypatch.setattr(reader.receiver, "sync_done", lambda: events.append("sync") or sync_done())
    monkeypatch.setattr(reader.intake, "discard", lambda path: events.append("discard")
                        or discard(path))  # fmt: skip
    reader.recover_again()
    reader.poll(link.delivered.append)
    assert events == ["sync", "discard", "discard", "discard"]
    assert len(link.delivered) == 3
    assert list((link.root / "work").iterdir()) == []


def test_a_failing_handler_leaves_its_bundle_and_the_marks_before_it_are_synced(
    link: Link,
) -> None:
    _publish(link, 3)
    reader = _regroup(link, 8)
    calls: list[bytes] = []

    def third_fails_once(bundle: ReceivedBundle) -> None:
        calls.append(bundle.bundle_id)
        if bundle.bundle_id == bid(3) and calls.count(bid(3)) == 1:
            raise OSError("disk full")

    assert reader.poll(third_fails_once) == 2
    assert reader.receiver.counters()["handler_errors"] == 1
    assert reader.poll(third_fails_once) == 1
    assert reader.poll(third_fails_once) == 0
    assert calls == [bid(1), bid(2), bid(3), bid(3)]
    assert list((link.root / "work").iterdir()) == []


def test_done_group_must_be_positive(link: Link) -> None:
    with pytest.raises(LocalError, match="done_group 0"):
        LinkReader(link.reader.intake, link.reader.receiver, done_group=0)  # type: ignore[union-attr]


# The reader in a process of its own, killed with SIGKILL while it hands over the fifth bundle
# of a group of eight (after the handler wrote it down: after the server's 250, say).
CHILD = textwrap.dedent(
    """
    import os, signal, sys
    from pathlib import Path
    from tests.protocol.conftest import FakeClock, Link
    from tests.protocol.golden import KEY_A

    root = Path(sys.argv[1])
    link = Link(root, FakeClock(), KEY_A, done_group=8)
    reader = link.open_reader()
    handled = []

    def handler(bundle):
        with open(root / "handled.log", "a") as log:
            log.write(bundle.bundle_id.hex() + "\\n")
            log.flush()
            os.fsync(log.fileno())
        handled.append(bundle.bundle_id)
        if len(handled) == 5:
            os.kill(os.getpid(), signal.SIGKILL)

    reader.poll(handler)
    """
)


def test_kill_9_mid_group_loses_nothing_and_hands_over_only_the_bundle_in_hand(
    link: Link,
) -> None:
    bundles = _publish(link, 12)
    link.reader.close()  # type: ignore[union-attr]
    child = subprocess.run([sys.executable, "-c", CHILD, str(link.root)], cwd=ROOT,
                           env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120,
                           capture_output=True, text=True)  # fmt: skip
    assert child.returncode == -signal.SIGKILL, child.stderr
    before = (link.root / "handled.log").read_text().split()
    assert len(before) == 5
    link.done_group = 8
    link.open_reader()
    assert link.poll() == 12 - 4  # the four marked before the kill are done, unsynced or not
    after = [b.bundle_id.hex() for b in link.delivered]
    counts = Counter(before + after)
    assert set(counts) == {b.hex() for b in bundles}  # nothing lost
    assert [h for h, n in counts.items() if n > 1] == [before[-1]]  # one duplicate: in hand
    assert list((link.root / "work").iterdir()) == []
