"""Inbound link intake: the protocol's LinkReader in a loop, and the handler for each bundle.

The LinkReader claims settled files (a periodic full rescan is the source of truth; watchdog
events only wake the loop early), verifies every chunk, reassembles, de-duplicates and detects
gaps. For each complete bundle it calls :class:`BundleHandler` in the link thread (decision
D14), and only after the handler returns does it mark the bundle done and delete its chunk
files. The handler:

1. refuses any kind but DATA, decodes the package under limits (``decode_package``), checks the
   mail id and the recipients, decodes every image again under a pixel cap and re-encodes it by
   policy (``inner_agent.images``, ``inner_agent.pngrewrite``);
2. builds the notification(s) (``inner_agent.notify``);
3. sends a single notification straight to the internal server when nothing waits in the
   injection queue (``inner_agent.direct``, D16), and otherwise, or for whatever the server did
   not take at once, stores them in the injection queue in one durable transaction.

Raw bundles that an earlier version stored in the queue's ``arrived`` table (and had not built
when it stopped) are built by :func:`build_left_over` at start, before the link thread runs.

A bundle that fails a check is written to the quarantine folder (``bundle-<id>.bin`` with a
``.reason.json`` beside it), recorded in the audit log and the queue (so a replay is not
processed again), and the handler returns normally. The handler is idempotent per bundle id.
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.audit import AuditLog
from agentkit.control import ControlRefused
from agentkit.links import audit_refusals
from agentkit.routing import routing_in_local_part
from inner_agent.direct import DirectInjection
from inner_agent.images import ImageRefused, check_image, shrink_image
from inner_agent.inject import InjectionQueue
from inner_agent.notify import (
    CheckedImage,
    CheckedMail,
    NotifyOptions,
    build_notifications,
    clean_header_text,
    valid_mail_id,
)
from inner_agent.smtpclient import Outcome
from mailsafe.payload import Manifest
from mailsafe.pii.detect import detect
from mailsafe.pii.mask import mask_text
from protocol import Kind
from protocol.durable import write_durably

__all__ = [
    "BundleHandler",
    "BundleRefused",
    "LinkService",
    "Prepared",
    "build_left_over",
    "build_reader",
    "check_package",
]

log = logging.getLogger(__name__)

# The mail id of a bundle whose package could not be decoded (it has no trustworthy id).
UNKNOWN_MAIL_ID = "unknown"
# How often the idle loop looks at the stop flag: SIGTERM is honoured within this.
STOP_CHECK_S = 0.5
# Longest value of a searchable audit field (subject, sender...); the mail itself is not logged.
AUDIT_FIELD_CHARS = 300
# Withheld attachments listed per mail in the audit event (the count is always exact).
AUDIT_MAX_WITHHELD = 50


class BundleRefused(Exception):
    """A bundle failed a check; ``code`` is the stable quarantine reason."""

    def __init__(self, code: str, detail: str, mail_id: str | None = None) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
        self.mail_id = mail_id  # known once the package decoded and its id was checked


@dataclass(frozen=True)
class Prepared:
    """A bundle that passed every check, with its notification(s) built."""

    mail: CheckedMail
    recipients: tuple[str, ...]
    messages: list[bytes]


@dataclass(frozen=True)
class ImagePolicy:
    max_pixels: int = 24_000_000
    reencode: bool = True


def check_package(
    untrusted: bytes, policy: ImagePolicy, our_domains: tuple[str, ...]
) -> tuple[CheckedMail, tuple[str, ...]]:
    """Decode and check one inbound package; (mail, recipients) or raises BundleRefused."""
    from mailsafe.payload import PackageRefused, decode_package

    try:
        rendered = decode_package(untrusted)
    except PackageRefused as exc:
        raise BundleRefused("bad_package", str(exc)) from None
    manifest = rendered.manifest
    if not valid_mail_id(manifest.mail_id):
        raise BundleRefused("bad_mail_id", f"mail id {manifest.mail_id[:80]!r} is not safe")
    recipients = _recipients(manifest.envelope.rcpt_to, our_domains)
    if not recipients:
        raise BundleRefused("no_recipients", "no recipient in our domains", manifest.mail_id)
    images: list[CheckedImage] = []
    for index, (data, page) in enumerate(zip(rendered.images, manifest.pages, strict=True)):
        try:
            images.append(
                check_image(
                    data, page.media_type, max_pixels=policy.max_pixels, reencode=policy.reencode
                )
            )
        except ImageRefused as exc:
            raise BundleRefused(
                exc.code, f"image {index}: {exc.detail}", manifest.mail_id
            ) from None
    return CheckedMail(manifest, tuple(images), rendered.text), recipients


def _recipients(untrusted: tuple[str, ...], our_domains: tuple[str, ...]) -> tuple[str, ...]:
    """Plain addresses in our domains; anything else is dropped (never relayed onwards).

    Plain excludes sender-specified routing (``%``, ``!`` or ``@`` in the local part): the
    outer agent refuses it at RCPT, and a compromised one must not get it injected, since the
    internal server would relay such a notification back to the internet (issue 15.1).
    """
    found: list[str] = []
    for value in untrusted:
        address = clean_header_text(value, 320)
        local, at, domain = address.rpartition("@")
        domain = domain.lower()
        plain = at and local and "." in domain and address.isascii()
        plain = plain and not any(c in address for c in ' <>()[],;:"\\')
        plain = plain and routing_in_local_part(address) is None
        ours = not our_domains or any(domain == d or domain.endswith("." + d) for d in our_domains)
        if plain and ours and address not in found:
            found.append(address)
    return tuple(found)


class BundleHandler:
    """Check, build, hand over durably (to the internal server or the queue), audit: one
    bundle, synchronously (``handler(bundle)``).

    The running agent calls it from the link thread for each complete bundle (the reader marks
    the bundle done only after it returns) and at start for bundles an earlier version stored
    (:func:`build_left_over`, through the queue only: their stored copy leaves in the queue's
    transaction); tests and tools may call it directly.
    """

    def __init__(
        self,
        queue: InjectionQueue,
        audit: AuditLog,
        options: NotifyOptions,
        policy: ImagePolicy,
        quarantine_dir: Path,
        *,
        direct: DirectInjection | None = None,
        control: Callable[[Any], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.audit = audit
        self.options = options
        self.policy = policy
        self.quarantine_dir = quarantine_dir
        self.direct = direct
        self.control = control  # CONTROL bundles (status reports); None: refused as unexpected
        self._clock = clock

    def __call__(self, bundle: Any, *, queue_only: bool = False) -> None:
        if self.queue.is_handled(bundle.bundle_id):
            return  # handled before a crash (or a replay); the reader now marks it done
        if self.control is not None and bundle.kind == Kind.CONTROL:
            self._handle_control(bundle, self.control)
            return
        started = self._clock()
        try:
            prepared = self.prepare(bundle)
        except BundleRefused as exc:
            self._quarantine(bundle, exc)
            return
        mail_id = prepared.mail.manifest.mail_id
        built = self._clock()
        recipients = prepared.recipients
        if self.direct is not None:
            recipients = self.direct.not_yet_delivered(bundle.bundle_id, recipients)
            if not recipients:
                return  # sent before a later step failed (full disk): not again; now marked done
        outcome = None if queue_only else self._send_directly(bundle, prepared, recipients)
        waiting = recipients if outcome is None else outcome.temporary + outcome.permanent
        if waiting:
            self.queue.add_bundle(
                bundle.bundle_id, mail_id, self.options.from_address, waiting, prepared.messages
            )
        self.audit.record(
            mail_id,
            "received_inside",
            bundle_id=bundle.bundle_id.hex(),
            seq=bundle.seq,
            status=prepared.mail.manifest.status,
            pages=len(prepared.mail.images),
            notifications=len(prepared.messages),
            rcpt_count=len(prepared.recipients),
            bytes=sum(len(m) for m in prepared.messages),
            link_s=round(started - bundle.created_ms / 1000, 3),
            build_s=round(built - started, 3),
            **searchable_fields(prepared.mail.manifest, prepared.recipients),
        )
        if outcome is not None and outcome.accepted:
            self.audit.record(mail_id, "injected", part=1, rcpt_count=len(outcome.accepted),
                              reply=outcome.reply, attempts=1, queued_s=0.0,
                              send_s=round(self._clock() - built, 3), direct=True)  # fmt: skip

    def _handle_control(self, bundle: Any, control: Callable[[Any], None]) -> None:
        """A control record: stored by ``control``, or quarantined when it does not decode;
        either way the reader marks the bundle done and goes on (mail is not held up)."""
        try:
            control(bundle)
        except ControlRefused as exc:
            self._quarantine(bundle, BundleRefused(f"control_{exc.code}", exc.detail))

    def _send_directly(
        self, bundle: Any, prepared: Prepared, recipients: tuple[str, ...]
    ) -> Outcome | None:
        """The server's answer to a one-message bundle sent straight away (D16); None when it
        goes through the queue instead (no direct path, several messages, or the server could
        not take it now)."""
        if self.direct is None or len(prepared.messages) != 1:
            return None
        return self.direct.send(bundle.bundle_id, self.options.from_address, recipients,
                                prepared.messages[0])  # fmt: skip

    def prepare(self, bundle: Any) -> Prepared:
        """Every check and the notification(s) for ``bundle``; raises BundleRefused."""
        if bundle.kind != Kind.DATA:
            raise BundleRefused("unexpected_kind", f"bundle kind {bundle.kind!r}")
        mail, recipients = check_package(bundle.data, self.policy, self.options.our_domains)
        try:
            messages = build_notifications(
                mail, self.options, shrink=shrink_image, now=self._clock()
            )
        except Exception as exc:
            log.exception("cannot build the notification for bundle %s", bundle.bundle_id.hex())
            detail = f"{type(exc).__name__}: {exc}"
            raise BundleRefused("build_failed", detail, mail.manifest.mail_id) from None
        return Prepared(mail, recipients, messages)

    def _quarantine(self, bundle: Any, exc: BundleRefused) -> None:
        bundle_hex = bundle.bundle_id.hex()
        self.quarantine_dir.mkdir(parents=True, exist_ok=True)
        path = self.quarantine_dir / f"bundle-{bundle_hex}.bin"
        mail_id = exc.mail_id or f"bundle-{bundle_hex}"
        # Evidence must survive a power cut: both files durable, the folder synced once after both.
        write_durably(path, bundle.data, sync_folder=False)
        reason = {
            "reason": exc.code,
            "detail": exc.detail,
            "bundle_id": bundle_hex,
            "mail_id": mail_id,
            "seq": bundle.seq,
            "time": self._clock(),
        }
        write_durably(path.with_suffix(".reason.json"), json.dumps(reason).encode())
        self.queue.record_quarantined(bundle.bundle_id, mail_id)
        self.audit.record(
            mail_id,
            "quarantined",
            reason=exc.code,
            detail=exc.detail,
            seq=bundle.seq,
            file=str(path),
        )
        log.error("quarantined bundle %s (seq %d): %s", bundle_hex, bundle.seq, exc)


def searchable_fields(manifest: Manifest, recipients: tuple[str, ...]) -> dict[str, Any]:
    """What an auditor searches the log by (the feature table's "mail search": sender,
    recipient, subject, date, sender IP, result, attachments), cleaned of control characters
    and cut to a sane length: every value came from the internet through the outer agent.
    Personal data in the subject and attachment names is masked, as everywhere in the log."""

    def clean(untrusted: str) -> str:
        return clean_header_text(untrusted, AUDIT_FIELD_CHARS)

    def masked(untrusted: str) -> str:
        """Free text keeps no personal data in the log (a registration number in a subject)."""
        text = clean(untrusted)
        return mask_text(text, detect(text))

    headers, envelope = manifest.headers, manifest.envelope
    return {
        "from": clean(headers.from_),
        "subject": masked(headers.subject),
        "message_id": clean(headers.message_id),
        "date": clean(headers.date),
        "mail_from": clean(envelope.mail_from),
        "client": clean(envelope.client_addr),
        "rcpts": list(recipients),
        "auth": clean(manifest.auth.summary),
        "withheld": [
            {
                "name": masked(w.filename),
                "type": clean(w.content_type),
                "size": w.size,
                "reason": clean(w.reason),
            }
            for w in manifest.withheld[:AUDIT_MAX_WITHHELD]
        ],
        "withheld_count": len(manifest.withheld),
    }


def build_left_over(handler: BundleHandler) -> int:
    """Build the raw bundles an earlier version stored (table ``arrived``) and had not built
    when it stopped; returns how many. A bundle that keeps failing stays for the next start."""
    done: set[bytes] = set()
    while (bundle := handler.queue.next_arrived(done)) is not None:
        done.add(bundle.bundle_id)
        try:
            handler(bundle, queue_only=True)
        except Exception:  # a bug of ours: the raw row stays, nothing is lost
            log.exception("building stored bundle %s failed", bundle.bundle_id.hex())
    return len(done)


def build_reader(config: Any, state_dir: Path) -> Any:
    """The inbound LinkReader from ``[link]`` and ``[keys]`` (folder or TCP transport)."""
    from agentkit.links import build_reader as build

    return build(
        config.link,
        config.keys,
        state_dir,
        "inbound",
        work_dir=state_dir / "link-work",
        quarantine_dir=state_dir / "link-quarantine",
        tcp_spool_dir=state_dir / "link-tcp",
    )


class LinkService:
    """The reader's poll loop in a thread; stops within ``rescan_s`` of ``stop()``."""

    def __init__(
        self,
        reader: Any,
        handler: Callable[[Any], None],
        rescan_s: float,
        audit: AuditLog | None = None,
    ) -> None:
        self.reader = reader
        self.audit = audit  # where the reader's summed-up refusals go
        self.handler = handler
        self.rescan_s = rescan_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="link-inbound", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                delivered = self.reader.poll(self.handler)
                if self.audit is not None:
                    audit_refusals(self.reader.refusal_summaries(), self.audit)
            except (OSError, sqlite3.OperationalError) as exc:  # a full or failing disk: say
                # what, without a traceback every second
                log.error("inbound link poll failed (%s); the files stay in the receive folder, "
                          "retrying in %.1f s", exc, self.rescan_s)  # fmt: skip
                self._stop.wait(self.rescan_s)
                continue
            except Exception:
                log.exception("inbound link poll failed; retrying in %.1f s", self.rescan_s)
                self._stop.wait(self.rescan_s)
                continue
            if delivered == 0:
                self._idle()

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
