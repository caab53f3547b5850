"""SpoolCommitter: durable before the 250; a small batch straight into received/ (one file per
mail) when rendering takes it from there, a large one (or any, without rendering) as a segment."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

from outer_agent.smtp import FILES_PER_BATCH, SpoolCommitter
from outer_agent.spool import Envelope, Spool
from tests.outer.test_spool import envelope


def _commit_all(committer: SpoolCommitter, mails: list[tuple[Envelope, bytes]]) -> None:
    """Every mail committed from concurrent sessions, as the SMTP loop does."""

    async def sessions() -> None:
        await asyncio.gather(*(committer.commit(env, raw) for env, raw in mails))

    asyncio.run(sessions())


def test_a_one_mail_batch_goes_straight_into_received(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    committed: list[str] = []
    queued: list[str] = []
    segments = threading.Event()
    committer = SpoolCommitter(
        spool, on_committed=lambda env, size: committed.append(env.mail_id),
        on_segment=segments.set, on_received=lambda env: queued.append(env.mail_id),
    )  # fmt: skip
    env = envelope(1)
    _commit_all(committer, [(env, b"one mail")])
    committer.close()
    assert committed == queued == [env.mail_id]
    assert not segments.is_set()
    assert os.listdir(tmp_path / "incoming") == []
    assert spool.pending() == [f"{env.mail_id}.0"]
    claimed = spool.claim(f"{env.mail_id}.0")
    assert claimed is not None
    assert spool.read(claimed).payload == b"one mail"


def test_without_on_received_every_batch_is_a_segment_for_the_splitter(tmp_path: Path) -> None:
    """Without a pipeline to queue mail files for (bench_intake): the splitter's segments."""
    spool = Spool(tmp_path)
    woken = threading.Event()
    committer = SpoolCommitter(spool, on_segment=woken.set)
    env = envelope(2)
    _commit_all(committer, [(env, b"via a segment")])
    committer.close()
    assert woken.is_set()
    assert spool.pending() == []
    assert [e.mail_id for e in spool.split_incoming()] == [env.mail_id]
    assert spool.pending() == [f"{env.mail_id}.0"]


def test_a_failing_hook_does_not_undo_the_commit(tmp_path: Path) -> None:
    spool = Spool(tmp_path)

    def broken(_env: Envelope) -> None:
        raise RuntimeError("render queue gone")

    committer = SpoolCommitter(spool, on_received=broken)
    env = envelope(3)
    _commit_all(committer, [(env, b"kept")])  # no exception reaches the session
    committer.close()
    assert spool.pending() == [f"{env.mail_id}.0"]


def _held_batch(spool: Spool, mails: int, **hooks: object) -> SpoolCommitter:
    """A committer whose first commit waits until ``mails - 1`` more sessions are queued, so
    they all make the second batch (see ``_one_then_the_rest``)."""
    check_space = spool.check_space
    committers: list[SpoolCommitter] = []

    def held(incoming_bytes: int = 0) -> None:
        if len(committers) == 1:  # the first batch: let the others queue up behind it
            waiting = committers.pop()._queue
            deadline = time.monotonic() + 5
            while waiting.qsize() < mails - 1 and time.monotonic() < deadline:
                time.sleep(0.005)
        check_space(incoming_bytes)

    spool.check_space = held  # type: ignore[method-assign]
    committers.append(SpoolCommitter(spool, **hooks))  # type: ignore[arg-type]
    return committers[0]


def _one_then_the_rest(committer: SpoolCommitter, mails: list[tuple[Envelope, bytes]]) -> None:
    async def sessions() -> None:
        first = asyncio.ensure_future(committer.commit(*mails[0]))
        await asyncio.sleep(0.05)  # the committer has taken it alone, and waits
        await asyncio.gather(first, *(committer.commit(env, raw) for env, raw in mails[1:]))

    asyncio.run(sessions())


def test_a_small_batch_becomes_one_file_per_mail_in_received(tmp_path: Path) -> None:
    """Up to FILES_PER_BATCH mails committed together: each its own file, queued at once; no
    segment for the splitter to write again."""
    spool = Spool(tmp_path)
    queued: list[str] = []
    segments = threading.Event()
    committer = _held_batch(spool, 1 + FILES_PER_BATCH, on_segment=segments.set,
                            on_received=lambda env: queued.append(env.mail_id))  # fmt: skip
    mails = [(envelope(10 + n), b"mail %d" % n) for n in range(1 + FILES_PER_BATCH)]
    _one_then_the_rest(committer, mails)
    committer.close()
    assert not segments.is_set()
    assert os.listdir(tmp_path / "incoming") == []
    assert sorted(queued) == sorted(env.mail_id for env, _ in mails)
    assert spool.pending() == sorted(f"{env.mail_id}.0" for env, _ in mails)


def test_a_large_batch_stays_a_segment(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    queued: list[str] = []
    segments = threading.Event()
    committer = _held_batch(spool, 2 + FILES_PER_BATCH, on_segment=segments.set,
                            on_received=lambda env: queued.append(env.mail_id))  # fmt: skip
    mails = [(envelope(20 + n), b"mail %d" % n) for n in range(2 + FILES_PER_BATCH)]
    _one_then_the_rest(committer, mails)
    committer.close()
    assert segments.is_set()
    assert len(queued) == 1  # the first mail, alone in its batch
    assert len(os.listdir(tmp_path / "incoming")) == 1
    split = spool.split_incoming()
    assert len(split) == 1 + FILES_PER_BATCH
