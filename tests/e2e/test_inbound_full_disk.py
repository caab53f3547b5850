"""The inner agent's disk fills up: nothing is lost, nothing is doubled, nothing is quarantined,
and mail flows again once space is freed. Real parts: the whole inbound path with a real
Postfix; the inner agent's state (link state, queue, audit) on a small tmpfs we fill.

Two ways to meet a full disk: mid-stream, with the receive folder on another file system (the
claim's copy fails), and at start-up with chunks already waiting in a receive folder on the same
file system (claims are renames; the SQLite commits fail with "database or disk is full")."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from maildiode.trial.carrier import Carrier
from maildiode.trial.stack import wait_for
from tests.support.inbound import InboundStack, simple_mail
from tests.support.smalldisk import fill, free
from tests.support.smalldisk import small_disk as mounted

pytestmark = pytest.mark.e2e

STATE_FS_BYTES = 16 << 20  # room for the agent's databases; the filler takes the rest


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A tmpfs for the inner agent's state folder."""
    with mounted(tmp_path / "stack" / "inner", STATE_FS_BYTES) as mount_point:
        yield mount_point


def _no_leftovers(folder: Path) -> None:
    work = folder / "link-work"
    wait_for(lambda: not any(work.iterdir()), 30, "the link work folder to empty")


def _survives_then_recovers(
    stack: InboundStack, small_disk: Path, recv: Path, tokens: list[str], prefix: str
) -> None:
    """The agent lives through the full disk; once space is freed every mail arrives once,
    nothing was quarantined and nothing is left half-written."""
    time.sleep(8)  # the agent meets the full disk at every step it tries
    assert stack.inner.process is not None
    assert stack.inner.process.poll() is None, "the inner agent must not die of a full disk"
    free(small_disk)
    counts = stack.wait_tokens(tokens, prefix, 90)
    wait_for(lambda: not any(recv.glob("*.mdc")), 30, "the receive folder to empty")
    _no_leftovers(small_disk)
    assert {t: counts[t] for t in tokens} == dict.fromkeys(tokens, 1)
    assert stack.link_quarantined() == 0, "no chunk may be quarantined for our own full disk"


def test_full_disk_on_the_inner_side_loses_nothing(small_disk: Path) -> None:
    stack = InboundStack(small_disk.parent)
    with stack:
        stack.send(simple_mail("disk-warmup"))  # the agent's databases exist before the fill
        stack.wait_tokens(["disk-warmup"], "disk-", 60)
        fill(small_disk)
        assert os.statvfs(small_disk).f_bavail == 0

        tokens = [f"disk-{n:02d}" for n in range(8)]
        for token in tokens:
            stack.send(simple_mail(token))
        _survives_then_recovers(stack, small_disk, stack.root / "link/in/recv", tokens, "disk-")


def _stack_receiving_on(small_disk: Path) -> tuple[InboundStack, Path]:
    """The inbound stack with the inner agent's receive folder on the small disk too."""
    root = small_disk.parent
    recv = small_disk / "recv"
    recv.mkdir()
    stack = InboundStack(root, carrier=Carrier(root / "link/in/send", recv),
                         inner={("link", "recv_dir"): f'"{recv}"'})  # fmt: skip
    return stack, recv


def test_disk_filling_while_chunks_arrive_loses_nothing(small_disk: Path) -> None:
    """Room for a few chunks but not for everything the agent writes after them: whichever
    step meets the full disk first (the carrier, a commit, the WAL growing) must hold."""
    stack, recv = _stack_receiving_on(small_disk)
    with stack:
        stack.send(simple_mail("fill-warmup"))
        stack.wait_tokens(["fill-warmup"], "fill-", 60)
        fill(small_disk, leave=400 << 10)
        tokens = [f"fill-{n:02d}" for n in range(10)]
        for token in tokens:
            stack.send(simple_mail(token))
        _survives_then_recovers(stack, small_disk, recv, tokens, "fill-")


def test_agent_starting_on_a_full_disk_with_chunks_waiting_loses_nothing(
    small_disk: Path,
) -> None:
    stack, recv = _stack_receiving_on(small_disk)
    with stack:
        stack.send(simple_mail("full-warmup"))
        stack.wait_tokens(["full-warmup"], "full-", 60)
        stack.inner.stop()
        tokens = [f"full-{n:02d}" for n in range(6)]
        for token in tokens:
            stack.send(simple_mail(token))
        wait_for(lambda: len(list(recv.glob("*.mdc"))) >= len(tokens), 60, "chunks to wait")
        fill(small_disk)
        stack.inner.start()  # it cannot even open its databases: it waits, saying why
        time.sleep(4)
        assert not any(t in stack.tokens("full-") for t in tokens)
        _survives_then_recovers(stack, small_disk, recv, tokens, "full-")
