"""The inbound pipeline: received → rendered → published, in threads beside the SMTP loop.

Render threads (two per worker process) claim ``received/`` files by rename, compute the
sender-authentication results and hand the raw mail to the packager (which renders in a worker
process with limits). The package goes to the publisher thread in memory, through a short
bounded queue, while the mail stays claimed in ``rendering/``. The publisher hands each package
to the protocol Sender under the bundle id assigned at intake, records the audit event, and only
then removes the claimed original; when idle it sends heartbeats.

A package is not written to disk between rendering and the link (decision D12): the link's
chunk is the only durable copy a rendering gets. A crash in between leaves the mail in
``rendering/``, and it is rendered again at the next start under the same bundle id (the Sender
keeps the first version if the link already had it). ``rendered/`` is still read at start, for
packages an earlier version stored there.

Nothing here answers SMTP: a slow or crashing renderer never slows intake down.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol

from outer_agent.authres import AuthVerdict
from outer_agent.errors import SpoolCorrupt
from outer_agent.spool import Envelope, Spool, attempt_of, mail_id_of

__all__ = ["MAX_CRASH_ATTEMPTS", "PackageOutcome", "Packager", "Pipeline", "Publisher"]

log = logging.getLogger(__name__)

# A mail whose rendering was cut short this many times by a crash of the whole agent is not
# tried again: it is shown as not displayable (or quarantined), so one mail cannot crash-loop us.
MAX_CRASH_ATTEMPTS = 3
# How long the publisher waits for work before it checks whether a heartbeat is due.
IDLE_TICK_S = 0.5
# The splitter looks at incoming/ this often even without a nudge (belt and braces).
SPLIT_RESCAN_S = 1.0
# Render threads per render process: while one thread stores a finished package durably (an
# fsync), another already has the worker rendering the next mail, so workers never wait on disk.
THREADS_PER_WORKER = 2
# Wait after a failed publish (full or missing link folder) before trying the same bundle again.
PUBLISH_RETRY_S = 2.0
# Rendered packages waiting for the publisher, per render thread. A render thread that finds the
# queue full waits (its mail stays claimed), so a stuck link holds at most this many packages
# in memory and the rest of the mail waits, unrendered, in received/.
PUBLISH_QUEUE_PER_THREAD = 1


@dataclass(frozen=True)
class PackageOutcome:
    """What the packager made of one mail: the bundle content and a summary for the audit."""

    package: bytes
    status: Literal["rendered", "not_displayable"]
    reason: str | None
    pages: int


@dataclass(frozen=True)
class RenderedMail:
    """A package on its way to the link; its mail stays claimed until the link has it."""

    mail_id: str
    claimed: Path
    envelope: Envelope
    package: bytes


# The publisher's work: a package in memory, the mail id of a package an earlier version stored
# in rendered/, or None to stop.
_PublishItem = RenderedMail | str | None


class Packager(Protocol):
    def package(self, raw: bytes, envelope: Envelope, auth: AuthVerdict) -> PackageOutcome: ...

    def not_displayable(
        self, raw: bytes, envelope: Envelope, auth: AuthVerdict, reason: str
    ) -> PackageOutcome: ...


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes) -> int: ...  # returns the sequence number

    def heartbeat_if_due(self) -> None: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class Pipeline:
    """Owns the render threads and the publisher thread; start() after Spool.recover()."""

    def __init__(
        self,
        spool: Spool,
        packager: Packager,
        publisher: Publisher,
        audit: Audit,
        *,
        workers: int,
        on_failure: Literal["not_displayable", "quarantine"] = "not_displayable",
        authenticate: Callable[[bytes, Envelope], AuthVerdict] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.packager = packager
        self.publisher = publisher
        self.audit = audit
        self.workers = workers
        self.on_failure = on_failure
        self.authenticate = authenticate or (lambda _raw, _env: AuthVerdict.not_checked())
        self.clock = clock
        self._to_render: queue.Queue[str | None] = queue.Queue()
        self._to_publish: queue.Queue[_PublishItem] = queue.Queue(
            maxsize=workers * THREADS_PER_WORKER * PUBLISH_QUEUE_PER_THREAD
        )
        self._stopping = threading.Event()
        self._incoming = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stored: list[str] = []

    # ----------------------------------------------------------------------------- control

    def start(self) -> None:
        self._stored = self.spool.rendered()  # left by an earlier version; published first
        for name in self.spool.pending():
            self._to_render.put(name)
        for index in range(self.workers * THREADS_PER_WORKER):
            self._spawn(self._render_loop, f"render-{index}")
        self._spawn(self._publish_loop, "publisher")
        self._spawn(self._split_loop, "splitter")

    def stop(self) -> None:
        """Finish the mail in hand, leave the rest in the spool for the next start.

        The render threads stop first, so every package they rendered is in the publish queue
        before the publisher's stop mark: it is published, or (if the link fails now) its mail
        goes back to received/ without counting as a crash.
        """
        self._stopping.set()
        self._incoming.set()
        for _ in range(self.workers * THREADS_PER_WORKER):
            self._to_render.put(None)
        publisher = [t for t in self._threads if t.name == "publisher"]
        for thread in self._threads:
            if thread not in publisher:
                thread.join()
        self._to_publish.put(None)
        for thread in publisher:
            thread.join()
        self._threads.clear()

    def notify_incoming(self) -> None:
        """New mail is durable in incoming/ (called by the committer thread)."""
        self._incoming.set()

    def notify_received(self, envelope: Envelope) -> None:
        """A new mail is durable in received/ as its own file."""
        self._to_render.put(f"{envelope.mail_id}.0")

    def inject(self, envelope: Envelope, message: bytes) -> None:
        """Store a mail we generated (a bounce notice) as if it had arrived; idempotent per id."""
        if any(
            mail_id_of(n) == envelope.mail_id
            for n in self.spool.pending() + self.spool.claimed() + self.spool.rendered()
        ):
            return
        self.spool.write_received(envelope, message)
        self.notify_received(envelope)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ----------------------------------------------------------------------------- split

    def _split_loop(self) -> None:
        requeue = False
        while not self._stopping.is_set():
            self._incoming.wait(SPLIT_RESCAN_S)
            self._incoming.clear()
            try:
                for envelope in self.spool.split_incoming():
                    self.notify_received(envelope)
                if requeue:  # mails split by a pass that then failed were never queued
                    requeue = False
                    for name in self.spool.pending():
                        self._to_render.put(name)
            except Exception:  # segments stay in incoming/ and are tried again
                log.exception("splitting incoming segments failed")
                requeue = True
                self._stopping.wait(PUBLISH_RETRY_S)

    # ----------------------------------------------------------------------------- render

    def _render_loop(self) -> None:
        while not self._stopping.is_set():
            name = self._to_render.get()
            if name is None:
                return
            claimed = self.spool.claim(name)
            if claimed is None:
                continue  # another thread took it, or recovery moved it
            try:
                self._render_one(claimed)
            except Exception:  # e.g. disk full: the mail goes back and is tried again later
                log.exception("render stage failed for %s; trying again later", claimed.name)
                if self.spool.unclaim(claimed):
                    self._stopping.wait(PUBLISH_RETRY_S)
                    self._to_render.put(name)

    def _render_one(self, claimed: Path) -> None:
        started = time.monotonic()
        mail_id = mail_id_of(claimed.name)
        try:
            record = self.spool.read(claimed)
        except SpoolCorrupt as exc:
            self._quarantine(claimed, mail_id, "spool_corrupt", str(exc))
            return
        envelope, raw = record.envelope, record.payload
        auth = self._auth(raw, envelope)
        outcome = self._package(claimed, raw, envelope, auth)
        if outcome.status == "not_displayable" and self.on_failure == "quarantine":
            self._quarantine(claimed, mail_id, outcome.reason or "not_displayable", "render policy")
            return
        render_ms = round((time.monotonic() - started) * 1000, 1)
        self.audit.record(
            mail_id,
            "rendered",
            status=outcome.status,
            reason=outcome.reason,
            pages=outcome.pages,
            bytes=len(outcome.package),
            render_ms=render_ms,
        )
        self._hand_over(RenderedMail(mail_id, claimed, envelope, outcome.package))

    def _hand_over(self, rendered: RenderedMail) -> None:
        """Queue the package for the publisher; when stopping, give the mail back instead."""
        while not self._stopping.is_set():
            try:
                self._to_publish.put(rendered, timeout=IDLE_TICK_S)
                return
            except queue.Full:
                continue  # the link is slow or failing: this mail waits, claimed
        self.spool.unclaim(rendered.claimed)

    def _auth(self, raw: bytes, envelope: Envelope) -> AuthVerdict:
        try:
            return self.authenticate(raw, envelope)
        except Exception:  # authentication results are data; their failure is too
            log.exception("sender authentication failed for %s", envelope.mail_id)
            return AuthVerdict.error()

    def _package(
        self, claimed: Path, raw: bytes, envelope: Envelope, auth: AuthVerdict
    ) -> PackageOutcome:
        if attempt_of(claimed.name) >= MAX_CRASH_ATTEMPTS:
            return self.packager.not_displayable(raw, envelope, auth, "agent_crash")
        try:
            return self.packager.package(raw, envelope, auth)
        except Exception:  # a render failure is a notice, never a lost mail
            log.exception("packaging failed for %s; sent as not displayable", envelope.mail_id)
            return self.packager.not_displayable(raw, envelope, auth, "render_error")

    def _quarantine(self, claimed: Path, mail_id: str, reason: str, detail: str) -> None:
        self.spool.quarantine(claimed, f"{reason}: {detail}")
        self.audit.record(mail_id, "quarantined", reason=reason, detail=detail)
        log.warning("mail %s quarantined: %s (%s)", mail_id, reason, detail)

    # ----------------------------------------------------------------------------- publish

    def _publish_loop(self) -> None:
        for mail_id in self._stored:  # a stop leaves the rest in rendered/ for the next start
            self._publish_until_done(mail_id)
        # Runs until the stop mark, even when stopping: stop() puts the mark only after the
        # render threads are done, and every package queued before it must be published or
        # given back (a full queue would otherwise block stop() itself).
        while True:
            try:
                item = self._to_publish.get(timeout=IDLE_TICK_S)
            except queue.Empty:
                self._heartbeat()
                continue
            if item is None:
                return
            self._publish_until_done(item)

    def _publish_until_done(self, item: RenderedMail | str) -> bool:
        """Publish, retrying while the link fails; False if stopped first (a mail in memory
        then goes back to received/, to be rendered again at the next start)."""
        while not self._publish_one(item):
            if self._stopping.wait(PUBLISH_RETRY_S):
                if isinstance(item, RenderedMail):
                    self.spool.unclaim(item.claimed)
                return False
        return True

    def _publish_one(self, item: RenderedMail | str) -> bool:
        """True when done (published, or nothing left to publish); False to try again later."""
        if isinstance(item, RenderedMail):
            return self._publish(item.mail_id, item.envelope, item.package, item.claimed)
        path = self.spool.folder("rendered") / item
        try:
            record = self.spool.read(path)
        except FileNotFoundError:
            return True
        except SpoolCorrupt as exc:
            self._quarantine(path, item, "spool_corrupt", str(exc))
            return True
        return self._publish(item, record.envelope, record.payload, path)

    def _publish(self, mail_id: str, envelope: Envelope, package: bytes, copy: Path) -> bool:
        """Hand one package to the link; then the spool's copy of the mail (``copy``) goes."""
        try:
            # A bundle id the link already has with other content (a mail rendered again after
            # a crash, or a bounce notice made again) keeps its first version: the publisher
            # returns that version's seq (agentkit.links.LinkPublisher).
            seq = self.publisher.publish(package, envelope.bundle_id)
        except Exception:  # the mail stays in the spool until the link takes it
            log.exception("publishing %s failed; retrying in %.0f s", mail_id, PUBLISH_RETRY_S)
            return False
        latency_ms = round((self.clock() - envelope.received_at) * 1000, 1)
        self.audit.record(
            mail_id,
            "published",
            bundle_id=envelope.bundle_id.hex(),
            seq=seq,
            bytes=len(package),
            latency_ms=latency_ms,
        )
        self.spool.remove_published(copy)
        return True

    def _heartbeat(self) -> None:
        try:
            self.publisher.heartbeat_if_due()
        except Exception:  # a missed heartbeat is an alarm on the other side, not here
            log.exception("heartbeat failed")
