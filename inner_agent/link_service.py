"""The inbound link as a running service: the protocol's LinkReader, built from ``[link]`` and
``[keys]``, polled in a thread that hands each complete bundle to the handler.

The LinkReader claims settled files (a periodic full rescan is the source of truth; inotify
events only wake the loop early), verifies every chunk, reassembles, de-duplicates and detects
gaps. For each complete bundle it calls the handler (:class:`inner_agent.bundle_handler.
BundleHandler`) and only after the handler returns does it mark the bundle done.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.leasekeeper import FenceClosed
from agentkit.links import audit_refusals
from agentkit.links import build_reader as build
from agentkit.streams import PAIR_INBOUND
from inner_agent.config import InnerConfig
from protocol import LinkReader, ReceivedBundle

__all__ = ["LinkService", "OneAtATime", "build_reader", "build_readers"]

log = logging.getLogger(__name__)

# How often the idle loop looks at the stop flag: SIGTERM is honoured within this.
STOP_CHECK_S = 0.5
# How often the work folder is looked at again for files claimed but not handled: another
# agent on the same state may have claimed them and lost its lease in the middle (D70).
LEFTOVER_RESCAN_S = 30.0
# Bundles handled in one pass that share one durable done mark (decision "Inbound done marks
# in groups"): one FULL commit and sync per group instead of per mail. After a crash the
# bundles handled since the last mark are handled again, so a notification sent straight to
# the internal server (D16) may arrive twice: at most this many per crash. As many as the
# outer publisher puts in one group (D31's PUBLISH_BATCH).
DONE_GROUP = 8


def build_reader(config: InnerConfig, state_dir: Path) -> LinkReader:
    """The inbound LinkReader from ``[link]`` and ``[keys]`` (folder or TCP transport)."""
    return build(
        config.link,
        config.keys,
        state_dir,
        "inbound",
        work_dir=state_dir / "link-work",
        quarantine_dir=state_dir / "link-quarantine",
        tcp_spool_dir=state_dir / "link-tcp",
        done_group=DONE_GROUP,
    )


def build_readers(config: InnerConfig, state_dir: Path) -> dict[str, LinkReader]:
    """Every inbound stream's LinkReader by stream id: the pair's ``inbound`` first, then one
    per ``[[streams.outer]]`` with its own channel, keys and state (D74)."""
    readers = {PAIR_INBOUND: build_reader(config, state_dir)}
    streams = config.streams.outer if config.streams is not None else ()
    with contextlib.ExitStack() as opened:  # closes what was opened if a later one fails
        opened.callback(readers[PAIR_INBOUND].close)
        for stream in streams:
            keys = config.keys.model_copy(update={"peer_keys": stream.peer_keys})
            reader = build(
                stream.receive_link(config.link), keys, state_dir, stream.id,
                work_dir=state_dir / f"link-work-{stream.id}",
                quarantine_dir=state_dir / f"link-quarantine-{stream.id}",
                tcp_spool_dir=state_dir / f"link-tcp-{stream.id}", done_group=DONE_GROUP,
            )  # fmt: skip
            opened.callback(reader.close)
            readers[stream.id] = reader
        opened.pop_all()
    return readers


class OneAtATime:
    """The bundle handler shared by the link threads of several streams (D74), entered by one
    thread at a time: it owns one direct SMTP session (D16) and a connection to the hold book,
    each made for one thread. Handling stays as serial as with one stream; the streams only
    read, verify and reassemble in parallel."""

    def __init__(self, handler: Callable[[ReceivedBundle], None]) -> None:
        self.handler = handler
        self._lock = threading.Lock()

    def __call__(self, bundle: ReceivedBundle) -> None:
        with self._lock:
            self.handler(bundle)


class LinkService:
    """The reader's poll loop in a thread; stops within ``rescan_s`` of ``stop()``."""

    def __init__(
        self,
        reader: LinkReader,
        handler: Callable[[ReceivedBundle], None],
        rescan_s: float,
        audit: AuditLog | None = None,
        *,
        fence: Callable[[], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``fence``: raises (agentkit.leasekeeper.FenceClosed) when this agent no longer holds
        the state's lease; checked before each pass, so no file is claimed after that."""
        self.reader = reader
        self.audit = audit  # where the reader's summed-up refusals go
        self.handler = handler
        self.rescan_s = rescan_s
        self.fence = fence
        self._clock = clock
        self._leftovers_at = clock() + LEFTOVER_RESCAN_S
        self._stop = threading.Event()
        name = f"link-{reader.receiver.stream}"
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self._pass()
                if self.audit is not None:
                    audit_refusals(self.reader.refusal_summaries(), self.audit)
            except FenceClosed:  # the lease is gone and the agent is stopping: claim nothing
                self._stop.wait(self.rescan_s)
                continue
            except (OSError, sqlite3.OperationalError) as exc:  # a full or failing disk: say
                # what, without a traceback every second
                log.error("inbound link %s poll failed (%s); the files stay in the receive "
                          "folder, retrying in %.1f s", self.reader.receiver.stream, exc,
                          self.rescan_s)  # fmt: skip
                self._stop.wait(self.rescan_s)
                continue
            except Exception:
                log.exception("inbound link poll failed; retrying in %.1f s", self.rescan_s)
                self._stop.wait(self.rescan_s)
                continue
            if delivered == 0:
                self._idle()

    def _pass(self) -> int:
        if self.fence is not None:
            self.fence()
        if self._clock() >= self._leftovers_at:
            self._leftovers_at = self._clock() + LEFTOVER_RESCAN_S
            self.reader.recover_again()
        return self.reader.poll(self.handler)

    def _idle(self) -> None:
        """Wait for a file event or the next rescan, checking for stop twice a second."""
        deadline = time.monotonic() + self.rescan_s
        while not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.reader.intake.wait(min(remaining, STOP_CHECK_S)):
                return

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.reader.close()
