"""A copy of each original, unchanged, for an internet-side archive mailbox (issue 17.6:
"원본 메일 전달"), by SMTP, with retries, never in the way of the inbound path.

Before the spool's copy of a mail from the internet goes (it is on the link, or held, or
blocked), the pipeline gives the file a second name in ``spool.dir/archive/queue/`` (a hard
link: no copy, one folder fsync). A thread of its own sends each queued original to
``[archive] smtp`` (to ``[archive] mailbox``, or to the original recipients), the bytes exactly
as received, and removes it after the archive's 250. Temporary failures wait
``retry_initial_s``, doubling up to ``retry_max_s``; a 5xx, or ``expire_s`` without success,
moves the copy to ``archive/failed/`` for an administrator (never deleted). Audit: ``archived``,
``archive_deferred``, ``archive_failed``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from agentkit.periodic import PeriodicPass
from outer_agent.errors import DeliveryDeferred, DeliveryRefused, SpoolCorrupt
from outer_agent.spool import Envelope, SpoolRecord
from protocol.atrest import CLEAR, AtRest
from protocol.durable import fsync_dir, move_durably, write_durably

__all__ = ["ArchiveForwarder", "ArchiveQueue"]

log = logging.getLogger(__name__)


class Hop(Protocol):
    def send(self, mail_from: str, rcpts: list[str], data: bytes) -> dict[str, tuple[int, str]]: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class ArchiveQueue:
    """``queue/`` (originals to send), ``state/`` (their attempts), ``failed/``, ``tmp/``."""

    def __init__(self, root: Path, *, at_rest: AtRest = CLEAR) -> None:
        self.root = root
        self.at_rest = at_rest  # the spool's: its files arrive here sealed by a hard link
        for name in ("queue", "state", "failed", "tmp"):
            (root / name).mkdir(parents=True, exist_ok=True)
            os.chmod(root / name, 0o700)  # originals from the internet, as in the spool

    def keep(self, claimed: Path, envelope: Envelope, shared: bytes | None = None) -> None:
        """The pipeline's hook: the original gets a name here before its spool name goes.
        ``shared``: the mail's stored record when its spool file is a segment it shares with
        other mails (D81); it is written as a file of its own, never the others with it."""
        target = self.root / "queue" / envelope.mail_id
        if shared is not None:
            if not target.exists():  # else kept before a crash
                write_durably(target, shared, staging=self.root / "tmp")
            return
        try:
            os.link(claimed, target)
        except FileExistsError:
            return  # kept before a crash
        fsync_dir(target.parent)

    def waiting(self) -> list[str]:
        return sorted(os.listdir(self.root / "queue"))

    def read(self, name: str) -> SpoolRecord:
        path = self.root / "queue" / name
        return SpoolRecord.decode(path.read_bytes(), str(path), self.at_rest)

    def state(self, name: str, now: float) -> dict[str, float]:
        try:
            data = json.loads((self.root / "state" / name).read_text())
            return {
                "attempts": float(data["attempts"]),
                "first": float(data["first"]),
                "next": float(data["next"]),
            }
        except (OSError, ValueError, KeyError, TypeError):
            return {"attempts": 0.0, "first": now, "next": now}

    def save_state(self, name: str, state: dict[str, float]) -> None:
        # Attempts only decide waiting times: written without fsync.
        write_durably(
            self.root / "state" / name,
            json.dumps(state).encode(),
            staging=self.root / "tmp",
            sync_file=False,
            sync_folder=False,
        )

    def sent(self, name: str) -> None:
        (self.root / "queue" / name).unlink(missing_ok=True)
        (self.root / "state" / name).unlink(missing_ok=True)

    def fail(self, name: str, reason: str) -> None:
        write_durably(
            self.root / "failed" / f"{name}.reason",
            reason.encode() + b"\n",
            staging=self.root / "tmp",
            sync_folder=False,
        )
        move_durably([(self.root / "queue" / name, self.root / "failed" / name)])
        (self.root / "state" / name).unlink(missing_ok=True)


class ArchiveForwarder:
    """Sends the queued originals, in a thread of its own (start/stop), or one pass at a time."""

    def __init__(
        self,
        queue: ArchiveQueue,
        hop: Hop,
        audit: Audit,
        *,
        where: str,
        mailbox: str | None,
        retry_initial_s: float,
        retry_max_s: float,
        expire_s: float,
        poll_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue, self.hop, self.audit = queue, hop, audit
        self.where, self.mailbox = where, mailbox
        self.retry_initial_s, self.retry_max_s, self.expire_s = (
            retry_initial_s,
            retry_max_s,
            expire_s,
        )
        self.poll_s, self.clock = poll_s, clock
        self._stopping = threading.Event()
        self._runner = PeriodicPass(
            "archive", self.run_due, lambda: self.poll_s, "archive pass failed", self._stopping
        )

    def run_due(self) -> int:
        """One pass: every due original tried once; returns how many the archive took."""
        taken = 0
        for name in self.queue.waiting():
            if self._stopping.is_set():
                break
            now = self.clock()
            state = self.queue.state(name, now)
            if state["next"] <= now:
                taken += self._send(name, state, now)
        return taken

    def _send(self, name: str, state: dict[str, float], now: float) -> int:
        try:
            record = self.queue.read(name)
        except (OSError, SpoolCorrupt) as exc:
            self._failed(name, f"unreadable: {exc}")
            return 0
        envelope = record.envelope
        rcpts = [self.mailbox] if self.mailbox else list(envelope.rcpt_to)
        try:
            refused = self.hop.send(envelope.mail_from, rcpts, record.payload)
        except DeliveryRefused as exc:
            self._failed(name, str(exc))
            return 0
        except DeliveryDeferred as exc:
            refused = dict.fromkeys(rcpts, (exc.code or 451, str(exc)))
        if not refused:
            self.queue.sent(name)
            self.audit.record(
                name,
                "archived",
                to=self.where,
                rcpt_count=len(rcpts),
                bytes=len(record.payload),
                attempts=int(state["attempts"]) + 1,
            )
            return 1
        if all(code >= 500 for code, _ in refused.values()):
            self._failed(name, "; ".join(f"{r}: {c} {t}" for r, (c, t) in refused.items()))
            return 0
        self._deferred(name, state, now, next(iter(refused.values())))
        return 0

    def _deferred(
        self, name: str, state: dict[str, float], now: float, answer: tuple[int, str]
    ) -> None:
        attempts = state["attempts"] + 1
        if now - state["first"] >= self.expire_s:
            self._failed(name, f"expired after {int(attempts)} attempts: {answer[0]} {answer[1]}")
            return
        wait = min(self.retry_initial_s * 2 ** (attempts - 1), self.retry_max_s)
        self.queue.save_state(
            name, {"attempts": attempts, "first": state["first"], "next": now + wait}
        )
        self.audit.record(
            name,
            "archive_deferred",
            to=self.where,
            attempts=int(attempts),
            error=f"{answer[0]} {answer[1]}"[:300],
            next_try=now + wait,
        )

    def _failed(self, name: str, reason: str) -> None:
        self.queue.fail(name, reason)
        self.audit.record(name, "archive_failed", to=self.where, reason=reason[:300])
        log.error(
            "the archive copy of %s failed for good: %s (kept in %s)",
            name,
            reason,
            self.queue.root / "failed",
        )

    def start(self) -> None:
        self._runner.start()

    def stop(self) -> None:
        self._runner.stop()
