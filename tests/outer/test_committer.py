"""SpoolCommitter: durable before the 250, one file per batch, a one-mail batch straight into
received/ when the main process takes it from there."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

from outer_agent.smtp import SpoolCommitter
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
    """The acceptor processes: the main process learns of their mail from the splitter."""
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
