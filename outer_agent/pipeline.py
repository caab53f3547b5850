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
from outer_agent.filtering import Filtering, Outgoing, Plan
from outer_agent.handover import Handover
from outer_agent.holds import held_kind
from outer_agent.spool import GENERATED, Envelope, Spool, SpoolRecord, attempt_of, mail_id_of

__all__ = ["MAX_CRASH_ATTEMPTS", "PackageOutcome", "Packager", "Pipeline", "Publisher"]

log = logging.getLogger(__name__)

# A mail whose rendering was cut short this many times by a crash of the whole agent is not
# tried again: it is shown as not displayable (or quarantined), so one mail cannot crash-loop us.
MAX_CRASH_ATTEMPTS = 3
# How long the publisher waits for work before it checks whether a heartbeat is due.
IDLE_TICK_S = 0.5
# The splitter looks at incoming/ this often even without a nudge (belt and braces).
SPLIT_RESCAN_S = 1.0
# After a nudge the splitter waits this long for more segments, so that one pass (one listing
# and one sync of each folder) takes those both committers write at about the same moment.
SPLIT_LINGER_S = 0.02
# Render threads per render process: while one thread stores a finished package durably (an
# fsync), another already has the worker rendering the next mail, so workers never wait on disk.
THREADS_PER_WORKER = 2
# Wait after a failed publish (full or missing link folder) before trying the same bundle again.
PUBLISH_RETRY_S = 2.0
# Group commit of publishing: while other mails are being rendered, the publisher waits up to
# PUBLISH_LINGER_S after a package for more (at most PUBLISH_BATCH) and publishes them with one
# seq commit, one fsync of the pickup folder and one audit commit. Publishing one mail cost
# about 1.3 ms of CPU here, mostly those three syncs; the wait is at most one mail's rendering,
# and a lone mail (nothing else rendering) is published at once.
PUBLISH_LINGER_S = 0.05
PUBLISH_BATCH = 8
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
    """A mail's bundles on their way to the link (its package; with receive filters, a part's
    package, a notice or a held mail's preview each); the mail stays claimed until the link
    has them all. ``original``: the mail came from the internet (kept by the archive)."""

    mail_id: str
    claimed: Path
    envelope: Envelope
    outgoing: tuple[Outgoing, ...]
    original: bool = True


class _StopMark:
    """Queued after the last package when the pipeline stops."""


_STOP = _StopMark()


class Packager(Protocol):
    def package(self, raw: bytes, envelope: Envelope, auth: AuthVerdict) -> PackageOutcome: ...

    def not_displayable(
        self, raw: bytes, envelope: Envelope, auth: AuthVerdict, reason: str
    ) -> PackageOutcome: ...


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes) -> int: ...  # returns the sequence number

    def publish_many(self, bundles: list[tuple[bytes, bytes]]) -> list[int]: ...

    def heartbeat_if_due(self) -> None: ...


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...

    def record_many(self, events: list[tuple[str, str, dict[str, Any]]]) -> None: ...


class Archive(Protocol):
    def keep(self, claimed: Path, envelope: Envelope, shared: bytes | None = None) -> None: ...


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
        filtering: Filtering | None = None,
        archive: Archive | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.spool = spool
        self.filtering = filtering
        self.archive = archive
        self.packager = packager
        self.publisher = publisher
        self.audit = audit
        self.workers = workers
        self.on_failure = on_failure
        self.authenticate = authenticate or (lambda _raw, _env: AuthVerdict.not_checked())
        self.clock = clock
        self._to_render: queue.Queue[str | None] = queue.Queue()
        self._to_publish: Handover[RenderedMail | _StopMark] = Handover(
            workers * THREADS_PER_WORKER * PUBLISH_QUEUE_PER_THREAD
        )
        self._stopping = threading.Event()
        self._incoming = threading.Event()
        self._threads: list[threading.Thread] = []
        self._stored: list[str] = []
        self._rendering = 0  # mails claimed by render threads and not yet handed over
        self._rendering_lock = threading.Lock()
        # Published mails whose archive copy could not be written (no space left): they stay
        # claimed and the copy is tried again (publisher thread only; D86).
        self._archive_waiting: list[RenderedMail] = []
        self._archive_retry_at = 0.0

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
        self._to_publish.put(_STOP)
        for thread in publisher:
            thread.join()
        self._threads.clear()

    def notify_incoming(self) -> None:
        """New mail is durable in incoming/ (called by the committer thread)."""
        self._incoming.set()

    def notify_received(self, envelope: Envelope, attempt: int = 0) -> None:
        """A new mail is durable in received/ as its own file (a released held mail: under
        the attempt number its release gave it)."""
        self._to_render.put(f"{envelope.mail_id}.{attempt}")

    def inject(self, envelope: Envelope, message: bytes) -> None:
        """Store a mail we generated (a bounce notice) as if it had arrived; idempotent per id."""
        if any(
            mail_id_of(n) == envelope.mail_id
            for n in self.spool.pending() + self.spool.claimed() + self.spool.rendered()
        ):
            return
        self.spool.write_received(envelope, message, kind=GENERATED)
        self.notify_received(envelope)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    # ----------------------------------------------------------------------------- split

    def _split_loop(self) -> None:
        requeue = False
        while not self._stopping.is_set():
            if self._incoming.wait(SPLIT_RESCAN_S):
                self._stopping.wait(SPLIT_LINGER_S)  # let the segments of this moment gather
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
            self._count_rendering(+1)
            try:
                self._render_one(claimed)
            except Exception:  # e.g. disk full: the mail goes back and is tried again later
                log.exception("render stage failed for %s; trying again later", claimed.name)
                if self.spool.unclaim(claimed):
                    self._stopping.wait(PUBLISH_RETRY_S)
                    self._to_render.put(name)
            finally:
                self._count_rendering(-1)

    def _count_rendering(self, change: int) -> None:
        with self._rendering_lock:
            self._rendering += change

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
        plan = self._plan(claimed, record, auth)
        if plan.quarantine is not None:
            self._quarantine(claimed, mail_id, plan.quarantine, "render policy")
            return
        render_ms = round((time.monotonic() - started) * 1000, 1)
        events = [(m, step, {**d, "render_ms": render_ms} if step == "rendered" else d)
                  for m, step, d in plan.events]  # fmt: skip
        if len(events) == 1:
            self.audit.record(events[0][0], events[0][1], **events[0][2])
        elif events:
            self.audit.record_many(events)  # one commit
        original = record.header.get("kind", "mail") == "mail"
        self._hand_over(RenderedMail(mail_id, claimed, envelope, tuple(plan.outgoing), original))

    def _plan(self, claimed: Path, record: SpoolRecord, auth: AuthVerdict) -> Plan:
        """What the mail becomes: through the receive filters when a policy is in force (or
        it is a held mail released), else rendered as it is."""
        envelope, raw = record.envelope, record.payload
        crashed = attempt_of(claimed.name) >= MAX_CRASH_ATTEMPTS
        filtering = self.filtering
        if filtering is not None and held_kind(record.header):
            return filtering.released(envelope, record.header, raw, auth, crashed=crashed)
        if filtering is not None and filtering.active and record.header.get("kind") == "mail":
            return filtering.plan(envelope, raw, auth, attempt=attempt_of(claimed.name),
                                  crashed=crashed)  # fmt: skip
        outcome = self._package(claimed, raw, envelope, auth)
        if outcome.status == "not_displayable" and self.on_failure == "quarantine":
            return Plan(quarantine=outcome.reason or "not_displayable")
        event = {"status": outcome.status, "reason": outcome.reason, "pages": outcome.pages,
                 "bytes": len(outcome.package)}  # fmt: skip
        return Plan([Outgoing(envelope.mail_id, envelope.bundle_id, outcome.package)],
                    [(envelope.mail_id, "rendered", event)])  # fmt: skip

    def _hand_over(self, rendered: RenderedMail) -> None:
        """Queue the package for the publisher; when stopping, give the mail back instead."""
        while not self._stopping.is_set():
            if self._to_publish.put(rendered, timeout_s=IDLE_TICK_S):
                return
            # the link is slow or failing: this mail waits, claimed
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

    def _quarantined_or_kept(self, path: Path, mail_id: str, detail: str) -> bool:
        """Quarantine a torn package in the publisher thread; False (tried again later, the
        file left where it is) when the disk refuses the reason file."""
        try:
            self._quarantine(path, mail_id, "spool_corrupt", detail)
        except OSError as exc:
            log.error("cannot quarantine %s (%s); trying again later", path, exc)
            return False
        return True

    # ----------------------------------------------------------------------------- publish

    def _publish_loop(self) -> None:
        for mail_id in self._stored:  # a stop leaves the rest in rendered/ for the next start
            self._publish_until_done(mail_id)
        # Runs until the stop mark, even when stopping: stop() puts the mark only after the
        # render threads are done, and every package queued before it must be published or
        # given back (a full queue would otherwise block stop() itself).
        while True:
            self._retry_archive()
            item = self._to_publish.take(IDLE_TICK_S)
            if item is None:
                self._heartbeat()
                continue
            if not isinstance(item, RenderedMail):
                self._give_back_unarchived()
                return  # the stop mark
            more = self._waiting_behind()
            if more and self._publish_batch([item, *more]):
                self._to_publish.drop(len(more))
            else:  # the others stay queued, in order, and come next
                self._publish_until_done(item)

    def _waiting_behind(self) -> list[RenderedMail]:
        """The packages queued behind the one in hand, to publish with it: waits up to
        PUBLISH_LINGER_S for more while other mails are being rendered (then more are coming
        within one mail's rendering); a lone mail does not wait."""
        deadline = time.monotonic() + PUBLISH_LINGER_S
        waiting = self._to_publish.look(PUBLISH_BATCH - 1, deadline, lambda: self._rendering > 0)
        batch = []
        for item in waiting:
            if not isinstance(item, RenderedMail):
                break  # the stop mark stays for the loop
            batch.append(item)
        return batch

    def _publish_batch(self, batch: list[RenderedMail]) -> bool:
        """Publish all with one group commit; False (nothing recorded) when that failed, for
        the caller to publish them one at a time (each is idempotent per bundle id)."""
        bundles = [(o.package, o.bundle_id) for r in batch for o in r.outgoing]
        try:
            seqs = self.publisher.publish_many(bundles) if bundles else []
        except Exception:  # the link failed, or a bundle id conflicts: one at a time, with retries
            log.warning("publishing %d mails together failed; one at a time", len(batch),
                        exc_info=True)  # fmt: skip
            return False
        sent = [(r, o) for r in batch for o in r.outgoing]
        self.audit.record_many([self._published_event(r, o, seq)
                                for (r, o), seq in zip(sent, seqs, strict=True)])  # fmt: skip
        for rendered in batch:
            self._finish(rendered)
        return True

    def _published_event(
        self, rendered: RenderedMail, outgoing: Outgoing, seq: int
    ) -> tuple[str, str, dict[str, Any]]:
        return (outgoing.mail_id, "published", {
            "bundle_id": outgoing.bundle_id.hex(), "seq": seq, "bytes": len(outgoing.package),
            "latency_ms": round((self.clock() - rendered.envelope.received_at) * 1000, 1),
        })  # fmt: skip

    def _finish(self, rendered: RenderedMail) -> None:
        """Everything of the mail is on the link: its spool copy goes (after the archive has
        its own copy of the file), then its stored verdict. An archive that cannot take its
        copy (no space left) leaves the mail claimed, to be tried again (D86)."""
        if not self._archived(rendered):
            self._archive_waiting.append(rendered)
            return
        self.spool.remove_published(rendered.claimed)
        if self.filtering is not None:
            self.filtering.done(rendered.mail_id)

    def _archived(self, rendered: RenderedMail) -> bool:
        """The archive holds its copy of the mail (or takes none of it); False when writing
        the copy failed (a disk error: logged, the caller keeps the mail)."""
        if self.archive is None or not rendered.original:
            return True
        try:
            self.archive.keep(rendered.claimed, rendered.envelope,
                              self.spool.own_record(rendered.claimed))  # fmt: skip
        except OSError as exc:
            log.error("mail %s is published but its archive copy cannot be written (%s); its "
                      "spool copy stays in %s and the archive copy is tried again every %.0f s",
                      rendered.mail_id, exc, rendered.claimed.parent,
                      PUBLISH_RETRY_S)  # fmt: skip
            return False
        return True

    def _retry_archive(self) -> None:
        """The archive copies that failed, tried again at most every PUBLISH_RETRY_S."""
        if not self._archive_waiting or time.monotonic() < self._archive_retry_at:
            return
        self._archive_retry_at = time.monotonic() + PUBLISH_RETRY_S
        waiting, self._archive_waiting = self._archive_waiting, []
        for rendered in waiting:
            self._finish(rendered)

    def _give_back_unarchived(self) -> None:
        """At stop: a published mail still without its archive copy goes back to received/;
        the next start renders and publishes it again under its bundle id (the link keeps the
        first version) and then archives it."""
        self._archive_retry_at = 0.0
        self._retry_archive()
        for rendered in self._archive_waiting:
            self.spool.unclaim(rendered.claimed)
        self._archive_waiting.clear()

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
            return self._publish(item)
        path = self.spool.folder("rendered") / item
        try:
            record = self.spool.read(path)
        except FileNotFoundError:
            return True
        except SpoolCorrupt as exc:
            return self._quarantined_or_kept(path, item, str(exc))
        envelope = record.envelope
        outgoing = (Outgoing(item, envelope.bundle_id, record.payload),)
        return self._publish(RenderedMail(item, path, envelope, outgoing, original=False))

    def _publish(self, rendered: RenderedMail) -> bool:
        """Hand a mail's bundles to the link; then the spool's copy of the mail goes."""
        events = []
        for outgoing in rendered.outgoing:
            try:
                # A bundle id the link already has with other content (a mail rendered again
                # after a crash, or a bounce notice made again) keeps its first version: the
                # publisher returns that version's seq (agentkit.links.LinkPublisher).
                seq = self.publisher.publish(outgoing.package, outgoing.bundle_id)
            except Exception:  # the mail stays in the spool until the link takes it
                log.exception("publishing %s failed; retrying in %.0f s", rendered.mail_id,
                              PUBLISH_RETRY_S)  # fmt: skip
                return False
            events.append(self._published_event(rendered, outgoing, seq))
        if len(events) == 1:
            self.audit.record(events[0][0], events[0][1], **events[0][2])
        elif events:
            self.audit.record_many(events)
        self._finish(rendered)
        return True

    def _heartbeat(self) -> None:
        try:
            self.publisher.heartbeat_if_due()
        except Exception:  # a missed heartbeat is an alarm on the other side, not here
            log.exception("heartbeat failed")
