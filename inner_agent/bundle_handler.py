"""The handler the inbound link calls for each complete bundle: check, build, hand over, audit.

The LinkReader (:mod:`inner_agent.link_service`) calls :class:`BundleHandler` in the link
thread (decision D14), and only after the handler returns does it mark the bundle done and
delete its chunk files. The handler:

1. hands a CONTROL bundle (the outer agent's status report) to its ``control`` handler
   (:mod:`inner_agent.reports`), refuses any other kind but DATA, and checks the package
   (:mod:`inner_agent.bundle_check`);
2. builds the notification(s) (``inner_agent.notify``);
3. sends a single notification straight to the internal server when nothing waits in the
   injection queue (``inner_agent.direct``, D16), and otherwise, or for whatever the server did
   not take at once, stores them in the injection queue in one durable transaction;
4. records what an auditor searches by (:mod:`inner_agent.audit_fields`).

With several inbound streams (D74) a checked mail whose identity arrived first on another
stream (:mod:`inner_agent.duplicates`) is recorded as ``duplicate_dropped`` instead of step 2-3.

A bundle that fails a check is written to the quarantine folder
(:mod:`inner_agent.bundle_quarantine`), recorded in the audit log and the queue (so a replay is
not processed again), and the handler returns normally. The handler is idempotent per bundle id.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from agentkit.audit import AuditLog
from agentkit.control import ControlRefused
from agentkit.streams import PAIR_INBOUND
from inner_agent.audit_fields import searchable_fields
from inner_agent.bundle_check import BundleRefused, ImagePolicy, check_package
from inner_agent.bundle_quarantine import quarantine_files
from inner_agent.direct import DirectInjection
from inner_agent.duplicates import DuplicateBook, mail_identity
from inner_agent.images import shrink_image
from inner_agent.inbound.arrivals import HeldArrivals
from inner_agent.inject import InjectionQueue
from inner_agent.notify import CheckedMail, NotifyOptions, build_notifications
from inner_agent.smtpclient import Outcome
from protocol import Kind, ReceivedBundle

__all__ = ["BundleHandler", "Prepared", "RuleNotices"]

# An inbound rule's notices for a checked mail and its recipients: (address, message) each.
RuleNotices = Callable[[CheckedMail, tuple[str, ...]], list[tuple[str, bytes]]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prepared:
    """A bundle that passed every check, with its notification(s) built."""

    mail: CheckedMail
    recipients: tuple[str, ...]  # whom the notification goes to
    messages: list[bytes]
    addressed: tuple[str, ...] = ()  # the mail's recipients, when others get the notification

    @property
    def mail_recipients(self) -> tuple[str, ...]:
        return self.addressed or self.recipients


class BundleHandler:
    """Check, build, hand over durably (to the internal server or the queue), audit: one
    bundle, synchronously (``handler(bundle)``).

    The running agent calls it from the link thread for each complete bundle (the reader marks
    the bundle done only after it returns) and at start for bundles an earlier version stored
    (:func:`inner_agent.left_over.build_left_over`, through the queue only: their stored copy
    leaves in the queue's transaction); tests and tools may call it directly.
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
        control: Callable[[ReceivedBundle], None] | None = None,
        held: HeldArrivals | None = None,
        rule_notices: RuleNotices | None = None,
        duplicates: DuplicateBook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.queue = queue
        self.audit = audit
        self.options = options
        self.policy = policy
        self.quarantine_dir = quarantine_dir
        self.direct = direct
        self.control = control  # CONTROL bundles (status reports); None: refused as unexpected
        self.held = held  # marked packages of the receive filters ([inbound]); None: no holds
        self.rule_notices = rule_notices  # an inbound rule's notify ([inbound]); None: none
        self.duplicates = duplicates  # several inbound streams (D74); None: one stream
        self._clock = clock

    def __call__(self, bundle: ReceivedBundle, *, queue_only: bool = False) -> None:
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
        if self._dropped_as_duplicate(bundle, prepared):
            return
        told = self._queue_rule_notices(bundle, prepared)
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
        received = {
            "bundle_id": bundle.bundle_id.hex(),
            "seq": bundle.seq,
            # the further outer agents' streams only (D74): the pair's events stay as they were
            **({"stream": bundle.stream} if bundle.stream != PAIR_INBOUND else {}),
            "status": prepared.mail.manifest.status,
            "pages": len(prepared.mail.images),
            "notifications": len(prepared.messages),
            "rcpt_count": len(prepared.mail_recipients),
            "bytes": sum(len(m) for m in prepared.messages),
            "link_s": round(started - bundle.created_ms / 1000, 3),
            "build_s": round(built - started, 3),
            **searchable_fields(prepared.mail.manifest, prepared.mail_recipients),
            **_filter_fields(prepared),
            **({"rule_notices": told} if told else {}),
        }
        events = [(mail_id, "received_inside", received)]
        if outcome is not None and outcome.accepted:
            events.append((mail_id, "injected", {
                "part": 1, "rcpt_count": len(outcome.accepted), "reply": outcome.reply,
                "attempts": 1, "queued_s": 0.0, "send_s": round(self._clock() - built, 3),
                "direct": True,
            }))  # fmt: skip
        self.audit.record_many(events)  # one commit for both

    def _queue_rule_notices(self, bundle: ReceivedBundle, prepared: Prepared) -> int:
        """The deciding inbound rule's notices, queued (before the notification: a bundle
        handed over again finds them stored and adds nothing); how many. A notice that cannot
        be built is logged and left out: it never holds the mail up."""
        if self.rule_notices is None:
            return 0
        try:
            notices = self.rule_notices(prepared.mail, prepared.mail_recipients)
        except Exception:
            log.exception("cannot build the rule notices of bundle %s", bundle.bundle_id.hex())
            return 0
        if notices:
            self.queue.add_rule_notices(bundle.bundle_id, prepared.mail.manifest.mail_id,
                                        self.options.from_address, notices)  # fmt: skip
        return len(notices)

    def _dropped_as_duplicate(self, bundle: ReceivedBundle, prepared: Prepared) -> bool:
        """Whether this mail arrived first on another stream: then audited, not delivered."""
        identity = mail_identity(prepared.mail) if self.duplicates is not None else None
        if identity is None or self.duplicates is None:
            return False
        mail_id = prepared.mail.manifest.mail_id
        first = self.duplicates.first_elsewhere(identity, bundle.stream, bundle.bundle_id, mail_id)
        if first is None:
            return False
        self.audit.record(
            mail_id, "duplicate_dropped", stream=bundle.stream, seq=bundle.seq,
            bundle_id=bundle.bundle_id.hex(), first_stream=first.stream,
            first_bundle_id=first.bundle_id.hex(), first_mail_id=first.mail_id,
            message_id=prepared.mail.manifest.headers.message_id[:200],
        )  # fmt: skip
        log.info("bundle %s (stream %s, seq %d) is mail %s again, first on stream %s: not "
                 "delivered twice", bundle.bundle_id.hex(), bundle.stream, bundle.seq,
                 first.mail_id, first.stream)  # fmt: skip
        return True

    def _handle_control(
        self, bundle: ReceivedBundle, control: Callable[[ReceivedBundle], None]
    ) -> None:
        """A control record: stored by ``control``, or quarantined when it does not decode;
        either way the reader marks the bundle done and goes on (mail is not held up)."""
        try:
            control(bundle)
        except ControlRefused as exc:
            self._quarantine(bundle, BundleRefused(f"control_{exc.code}", exc.detail))

    def _send_directly(
        self, bundle: ReceivedBundle, prepared: Prepared, recipients: tuple[str, ...]
    ) -> Outcome | None:
        """The server's answer to a one-message bundle sent straight away (D16); None when it
        goes through the queue instead (no direct path, several messages, or the server could
        not take it now)."""
        if self.direct is None or len(prepared.messages) != 1:
            return None
        return self.direct.send(bundle.bundle_id, self.options.from_address, recipients,
                                prepared.messages[0])  # fmt: skip

    def prepare(self, bundle: ReceivedBundle) -> Prepared:
        """Every check and the notification(s) for ``bundle``; raises BundleRefused."""
        if bundle.kind != Kind.DATA:
            raise BundleRefused("unexpected_kind", f"bundle kind {bundle.kind!r}")
        mail, addressed = check_package(bundle.data, self.policy, self.options.our_domains)
        recipients = self._route(mail, addressed)
        held = recipients != addressed
        try:
            messages = build_notifications(
                mail, self.options, shrink=shrink_image, now=self._clock(),
                to=recipients if held else (),
            ) if recipients else []  # fmt: skip
        except Exception as exc:
            log.exception("cannot build the notification for bundle %s", bundle.bundle_id.hex())
            detail = f"{type(exc).__name__}: {exc}"
            raise BundleRefused("build_failed", detail, mail.manifest.mail_id) from None
        return Prepared(mail, recipients, messages, addressed if held else ())

    def _route(self, mail: CheckedMail, recipients: tuple[str, ...]) -> tuple[str, ...]:
        """Whom the notification goes to: the recipients, or a held mail's approvers."""
        mark = mail.manifest.inbound
        if mark is not None and mark.action == "hold" and self.held is None:
            why = "a held mail's preview arrived, and no [inbound] section says who approves"
            raise BundleRefused("hold_without_approvers", why, mail.manifest.mail_id)
        if self.held is None:
            return recipients
        return self.held.route(mail, recipients)[1]

    def _quarantine(self, bundle: ReceivedBundle, exc: BundleRefused) -> None:
        bundle_hex = bundle.bundle_id.hex()
        mail_id = exc.mail_id or f"bundle-{bundle_hex}"
        path = quarantine_files(
            self.quarantine_dir, bundle, exc, mail_id, self._clock(), at_rest=self.queue.at_rest
        )
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


def _filter_fields(prepared: Prepared) -> dict[str, object]:
    """What the receive filters made of the mail, for the audit (and the index's rule)."""
    mark = prepared.mail.manifest.inbound
    if mark is None:
        return {}
    fields: dict[str, object] = {"inbound_action": mark.action}
    fields["policy_version"] = mark.policy_version
    if mark.rule:
        fields["rule"] = mark.rule
    if prepared.addressed:
        fields["approvers"] = list(prepared.recipients)
    return fields
