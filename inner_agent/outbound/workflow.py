"""What happens to an accepted outbound mail, step by step. Synchronous and free of sockets:
the service calls it from worker threads, the web pages call ``decide``, tests drive it with a
fake clock, a fake publisher and no network.

Steps (each in the audit log):
``accepted_outbound`` -> ``scanned`` -> one of
  ``allowed`` / ``monitored`` -> ``sent_out``;
  ``blocked`` (+ ``sender_notified``);
  ``held`` + ``approval_requested`` -> (``reminded``) -> (``escalated``) ->
  ``approved`` -> ``sent_out``, or ``rejected``, or ``expired`` (+ ``sender_notified`` each).
Refused tokens are ``token_refused`` with a reason code.
"""

from __future__ import annotations

import logging
import secrets
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import default as default_policy
from typing import Any, Protocol

from agentkit.settings import SMTP_CLIENT_TIMEOUT_S, parse_host_port
from inner_agent.outbound.approval import Event, Request, State, Timing, apply, due_event
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.errors import InvalidTransition, SpoolCorrupt, TokenRefused
from inner_agent.outbound.notice_mail import (
    RequestMail,
    approval_request,
    request_link,
    sender_notice,
)
from inner_agent.outbound.preview import masked_view, render_png
from inner_agent.outbound.spool import Spool, SpooledMail
from inner_agent.outbound.state import MailRow, OutboundState
from inner_agent.outbound.tokens import TokenSigner
from mailsafe.extract import Found, extract_locations
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.mime import SUBJECT_SCAN_BYTES, ParsedMail, parse_message
from mailsafe.payload import OutboundMail
from mailsafe.pii import detect, mask_text
from mailsafe.policy import RuleSet, SenderInfo
from mailsafe.scan import ScanResult, scan_parsed

__all__ = ["Audit", "Publisher", "Workflow"]

log = logging.getLogger(__name__)

# Notice retries back off from notice.retry_s, doubling, to at most an hour.
MAX_NOTICE_BACKOFF_S = 3600.0
# A mail whose processing raises this many times in a row is quarantined: a transient error
# (a locked database) passes within three tries, a bug on hostile input does not.
MAX_SCAN_FAILURES = 3
# Spent nonces are kept a day longer than any token can live (clock steps, slow requests).
NONCE_KEEP_MARGIN_S = 86400.0
# A refused token is logged with at most this much of the presented text (never all of it).
TOKEN_LOG_CHARS = 12
# A mail in one of these states needs its spool copy no more.
FINISHED_STATES = frozenset({"sent", "blocked", "rejected", "expired"})


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class Publisher(Protocol):
    def publish(self, bundle: bytes, bundle_id: bytes) -> int: ...


@dataclass(frozen=True)
class Scanned:
    """A mail as the scan saw it: parsed once, its attachments read once (in the reader's
    child process), and the decision; the approver's preview is drawn from the same."""

    parsed: ParsedMail
    found: list[Found]
    result: ScanResult


@dataclass(frozen=True)
class Decided:
    request: Request
    mail: MailRow


class Workflow:
    def __init__(
        self,
        section: OutboundSection,
        *,
        spool: Spool,
        state: OutboundState,
        directory: Directory,
        rules: RuleSet,
        signer: TokenSigner,
        audit: Audit,
        publisher: Publisher,
        encode: Callable[[OutboundMail], bytes],
        clock: Callable[[], float] = time.time,
        reader: AttachmentReader | None = None,
    ) -> None:
        self.section = section
        # Attachments are read in a child process under limits (the agent passes one); without
        # a reader they are read in this process, as unit tests do.
        self.reader = reader
        self.spool, self.state, self.directory = spool, state, directory
        self.rules, self.signer, self.audit = rules, signer, audit
        self.publisher, self.encode, self.clock = publisher, encode, clock
        approval = section.approval
        self._scan_failures: dict[str, int] = {}
        self.timing = Timing(approval.remind_after_s, approval.expire_after_s, approval.on_expiry)

    # ------------------------------------------------------------------------------- intake

    def accepted(self, mail: SpooledMail) -> None:
        if self.state.add_mail(mail.mail_id, mail.mail_from, mail.rcpt_to, mail.received_at):
            self.audit.record(
                mail.mail_id,
                "accepted_outbound",
                mail_from=mail.mail_from,
                rcpts=list(mail.rcpt_to),
                rcpt_count=len(mail.rcpt_to),
                client=mail.client_addr,
            )

    def recover(self) -> int:
        """Spool files the database does not know (a crash right after 250) are taken in;
        files of mails already finished (a crash before their removal) are removed."""
        found = 0
        for mail_id in self.spool.ids():
            known = self.state.mail(mail_id)
            if known is not None and known.state in FINISHED_STATES:
                self.spool.remove(mail_id)  # a crash between the final state and the removal
                continue
            if known is None:
                try:
                    mail, _data = self.spool.load(mail_id)
                except SpoolCorrupt as exc:
                    self._quarantine(mail_id, str(exc))
                    continue
                self.accepted(mail)
                found += 1
        return found

    def process_received(self) -> int:
        """Scan and decide every accepted mail. A mail whose scan fails MAX_SCAN_FAILURES
        times in a row (a bug met by hostile input) is quarantined, not retried forever."""
        done = 0
        for mail_id in self.state.mails_in("received"):
            try:
                self.process(mail_id)
            except Exception as exc:
                failures = self._scan_failures.get(mail_id, 0) + 1
                self._scan_failures[mail_id] = failures
                log.exception("outbound mail %s: processing failed (%d/%d)", mail_id, failures,
                              MAX_SCAN_FAILURES)  # fmt: skip
                if failures >= MAX_SCAN_FAILURES:
                    self._quarantine(mail_id, f"processing failed {failures} times: {exc!r}")
                    self._scan_failures.pop(mail_id, None)
                continue
            self._scan_failures.pop(mail_id, None)
            done += 1
        return done

    def process(self, mail_id: str) -> None:
        try:
            mail, data = self.spool.load(mail_id)
        except (SpoolCorrupt, FileNotFoundError) as exc:
            self._quarantine(mail_id, str(exc))
            return
        user = self.directory.user(mail.mail_from) if mail.mail_from else None
        department = user.department if user else None
        started = time.monotonic()
        parsed = parse_message(data)
        found = self.reader.read(parsed) if self.reader is not None else extract_locations(parsed)
        result = scan_parsed(
            parsed, self.rules, SenderInfo(mail.mail_from, department),
            recipients=mail.rcpt_to, found=found,
        )  # fmt: skip
        findings = [
            {"type": lf.finding.type, "masked": lf.finding.masked, "where": lf.where}
            for lf in result.findings
        ]
        decision = {
            "action": result.decision.action,
            "rule": result.decision.rule,
            "explanation": result.decision.explanation,
        }
        subject = _masked_subject(data)
        self.state.set_mail(
            mail_id, "received", subject=subject, decision=decision, findings=findings
        )
        self.audit.record(
            mail_id,
            "scanned",
            subject=subject,  # masked: searchable without holding personal data
            action=result.decision.action,
            rule=result.decision.rule,
            findings=len(findings),
            counts=_nonzero(result),
            department=department,
            unreadable=[u.reason for u in result.unreadable],
            ms=round((time.monotonic() - started) * 1000, 1),
        )
        self._act(mail, Scanned(parsed, found, result))

    def _act(self, mail: SpooledMail, scanned: Scanned) -> None:
        result = scanned.result
        action, rule = result.decision.action, result.decision.rule
        if action in ("allow", "monitor"):
            self.state.set_mail(mail.mail_id, "sending", decided_by=f"policy:{rule or 'default'}")
            self.audit.record(
                mail.mail_id, "allowed" if action == "allow" else "monitored", rule=rule
            )
        elif action == "block":
            self.state.set_mail(mail.mail_id, "blocked", decided_by=f"policy:{rule or 'default'}")
            self.audit.record(
                mail.mail_id, "blocked", rule=rule, explanation=result.decision.explanation
            )
            self._tell_sender(mail.mail_id, "blocked", reason=result.decision.explanation)
            self.spool.remove(mail.mail_id)
        else:
            self._hold(mail, scanned)

    # ------------------------------------------------------------------------------- holding

    def _hold(self, mail: SpooledMail, scanned: Scanned) -> None:
        existing = self.state.request_for_mail(mail.mail_id)
        if existing is not None:  # a crash after the request was stored: do not ask twice
            self.state.set_mail(mail.mail_id, "held")
            return
        approvers = self._approvers(mail.mail_from)
        if not approvers:
            reason = "승인할 부서장이 디렉터리에 없습니다 (no approver in the directory)"
            self.state.set_mail(mail.mail_id, "rejected", decided_by="system")
            self.audit.record(mail.mail_id, "rejected", reason="no-approver", by="system")
            self._tell_sender(mail.mail_id, "rejected", reason=reason)
            self.spool.remove(mail.mail_id)
            return
        request = Request(secrets.token_hex(8), mail.mail_id, State.HELD, approvers, self.clock())
        preview = render_png(masked_view(scanned.parsed, scanned.found))
        row = self.state.mail(mail.mail_id)
        notices = self._request_mails(request, row, preview) if row else []
        notices += self._sender_notice(mail.mail_id, "held")
        # request, held state and every mail about it are stored together: a crash can
        # neither leave a held mail nobody is asked about nor ask twice
        self.state.add_request(request, preview, notices)
        self.audit.record(
            mail.mail_id, "held", request_id=request.request_id, rule=scanned.result.decision.rule
        )
        self.audit.record(
            mail.mail_id,
            "approval_requested",
            request_id=request.request_id,
            approvers=list(approvers),
        )

    def _approvers(self, sender: str) -> tuple[str, ...]:
        user = self.directory.user(sender) if sender else None
        found: tuple[str, ...] = ()
        if user is not None:
            found = self.directory.approvers_of(user.department, exclude=sender)
            found = found or self.directory.approvers_above(user.department, exclude=sender)
        fallback = self.section.approval.fallback_approver
        return found or ((fallback,) if fallback and fallback != sender.lower() else ())

    def _ask(self, request: Request, *, reminder: bool = False) -> None:
        mail = self.state.mail(request.mail_id)
        preview = self.state.preview(request.request_id) or b""
        if mail is None:
            return
        for notice in self._request_mails(request, mail, preview, reminder=reminder):
            self.state.queue_notice(*notice)
        step = "reminded" if reminder else "approval_requested"
        self.audit.record(
            request.mail_id, step, request_id=request.request_id, approvers=list(request.approvers)
        )

    def _request_mails(
        self, request: Request, mail: MailRow, preview: bytes, *, reminder: bool = False
    ) -> list[tuple[str, str, str, bytes]]:
        """(mail id, kind, approver, message) of the request mail to each approver."""
        found = []
        for approver in request.approvers:
            token = self.issue_token(request, approver)
            body = approval_request(
                RequestMail(
                    request_id=request.request_id,
                    mail_id=mail.mail_id,
                    approver=approver,
                    sender=mail.mail_from,
                    recipients=mail.rcpt_to,
                    subject=mail.subject,
                    explanation=str(mail.decision.get("explanation", "")),
                    findings=tuple((f["type"], f["masked"], f["where"]) for f in mail.findings),
                    preview_png=preview,
                    link=request_link(self.section.web.public_url, request.request_id, token),
                    reminder=reminder,
                ),
                from_address=self.section.notice.from_address,
                now=self.clock(),
            )
            found.append((mail.mail_id, "reminder" if reminder else "request", approver, body))
        return found

    def issue_token(self, request: Request, approver: str) -> str:
        """A token valid until the request's deadline (at least one minute)."""
        deadline = request.since + self.timing.expire_after_s
        return self.signer.issue(
            request.request_id, approver, now=self.clock(), ttl_s=max(deadline - self.clock(), 60.0)
        )

    # ------------------------------------------------------------------------------- decisions

    def decide(
        self, request_id: str, actor: str, event: Event, untrusted_token: str, reason: str = ""
    ) -> Decided:
        """An approver's decision through the web. Raises TokenRefused (logged and audited)
        or InvalidTransition (already decided, or not an approver)."""
        request = self.state.request(request_id)
        mail_id = request.mail_id if request else "-"
        try:
            claims = self.signer.verify(
                untrusted_token, now=self.clock(), approver=actor, request_id=request_id
            )
            if request is None or actor not in request.approvers:
                raise TokenRefused("wrong-approver", f"{actor} may not decide request {request_id}")
            if self.state.nonce_spent(claims.nonce):
                raise TokenRefused("reused", "token was used before")
        except TokenRefused as refused:
            self.token_refused(mail_id, request_id, actor, refused, untrusted_token)
            raise
        decided = apply(request, event, now=self.clock(), actor=actor, reason=reason)
        if not self.state.spend_nonce(claims.nonce):
            raced = TokenRefused("reused", "token was used at the same moment")
            self.token_refused(mail_id, request_id, actor, raced, untrusted_token)
            raise raced
        if not self.state.save_request(decided, expect=request.state):
            raise InvalidTransition(f"request {request_id} was decided at the same moment")
        self._after_decision(decided)
        row = self.state.mail(decided.mail_id)
        if row is None:
            raise InvalidTransition(f"request {request_id} refers to an unknown mail")
        return Decided(decided, row)

    def token_refused(
        self, mail_id: str, request_id: str, actor: str, refused: TokenRefused, untrusted_token: str
    ) -> None:
        shown = untrusted_token[:TOKEN_LOG_CHARS]
        log.warning(
            "approval token refused (%s) for %s on request %s: %s",
            refused.reason,
            actor,
            request_id,
            refused,
        )
        self.audit.record(
            mail_id,
            "token_refused",
            reason=refused.reason,
            actor=actor,
            request_id=request_id,
            token_prefix=shown,
        )

    def _after_decision(self, request: Request) -> None:
        mail_id = request.mail_id
        if request.state is State.APPROVED:
            self.state.set_mail(mail_id, "sending", decided_by=request.decided_by or "")
            self.audit.record(
                mail_id, "approved", by=request.decided_by, request_id=request.request_id
            )
            self._tell_sender(mail_id, "approved", decided_by=request.decided_by or "")
        elif request.state is State.REJECTED:
            self.state.set_mail(mail_id, "rejected", decided_by=request.decided_by or "")
            self.audit.record(
                mail_id,
                "rejected",
                by=request.decided_by,
                reason=request.reason,
                request_id=request.request_id,
            )
            self._tell_sender(
                mail_id, "rejected", reason=request.reason, decided_by=request.decided_by or ""
            )
            self.spool.remove(mail_id)

    # ------------------------------------------------------------------------------- timers

    def tick(self) -> int:
        """Reminders, escalations and expiries that are due now; returns how many."""
        # A token lives at most expire_after_s; its nonce is not needed after that.
        self.state.prune(self.clock() - self.timing.expire_after_s - NONCE_KEEP_MARGIN_S)
        acted = 0
        for request in self.state.pending_requests():
            event = due_event(request, self.timing, self.clock())
            if event is Event.REMIND:
                updated = apply(request, event, now=self.clock())
                if self.state.save_request(updated, expect=request.state):
                    self._ask(updated, reminder=True)
                    acted += 1
            elif event is Event.TIMEOUT:
                acted += self._timeout(request)
        return acted

    def _timeout(self, request: Request) -> int:
        above: tuple[str, ...] = ()
        mail = self.state.mail(request.mail_id)
        if self.timing.on_expiry == "escalate" and mail is not None:
            user = self.directory.user(mail.mail_from)
            if user is not None:
                above = self._escalation_target(user.department, request, mail.mail_from)
        updated = apply(request, Event.TIMEOUT, now=self.clock(), escalate_to=above)
        if not self.state.save_request(updated, expect=request.state):
            return 0
        if updated.state is State.ESCALATED:
            self.audit.record(
                request.mail_id,
                "escalated",
                request_id=request.request_id,
                to=list(updated.approvers),
                level=updated.escalations,
            )
            self._ask(updated)
            self._tell_sender(request.mail_id, "escalated")
        else:
            self.state.set_mail(request.mail_id, "expired", decided_by="system")
            self.audit.record(request.mail_id, "expired", request_id=request.request_id)
            self._tell_sender(request.mail_id, "expired")
            self.spool.remove(request.mail_id)
        return 1

    def _escalation_target(self, department: str, request: Request, sender: str) -> tuple[str, ...]:
        """The approvers of the department ``escalations + 1`` levels above the sender's."""
        current: str | None = department
        for _ in range(request.escalations + 1):
            dept = self.directory.department(current) if current else None
            current = dept.parent if dept else None
        while current is not None:
            found = self.directory.approvers_of(current, exclude=sender)
            if found and set(found) != set(request.approvers):
                return found
            dept = self.directory.department(current)
            current = dept.parent if dept else None
        return ()

    # ------------------------------------------------------------------------------- out link

    def publish_pending(self) -> int:
        sent = 0
        for mail_id in self.state.mails_in("sending"):
            mail, data = self.spool.load(mail_id)
            row = self.state.mail(mail_id)
            decided_by = row.decided_by if row else ""
            # The moment the mail was released, as stored: a bundle published again after a
            # crash must be byte for byte the same, or the sender refuses its id as a conflict.
            decided_at = self.state.state_since(mail_id) or self.clock()
            bundle = self.encode(
                OutboundMail(
                    mail_id=mail_id,
                    mail_from=mail.mail_from,
                    rcpt_to=mail.rcpt_to,
                    data=data,
                    decided_by=decided_by,
                    decided_at=datetime.fromtimestamp(decided_at, UTC).isoformat(
                        timespec="seconds"
                    ),
                )
            )
            seq = self.publisher.publish(bundle, bytes.fromhex(mail_id))
            self.state.set_mail(mail_id, "sent")
            self.audit.record(mail_id, "sent_out", seq=seq, bytes=len(data), decided_by=decided_by)
            self.spool.remove(mail_id)
            sent += 1
        return sent

    # ------------------------------------------------------------------------------- notices

    def _tell_sender(
        self, mail_id: str, outcome: str, *, reason: str = "", decided_by: str = ""
    ) -> None:
        for notice in self._sender_notice(mail_id, outcome, reason=reason, decided_by=decided_by):
            self.state.queue_notice(*notice)

    def _sender_notice(
        self, mail_id: str, outcome: str, *, reason: str = "", decided_by: str = ""
    ) -> list[tuple[str, str, str, bytes]]:
        row = self.state.mail(mail_id)
        if row is None or not row.mail_from:
            return []  # a bounce (null sender) is never answered
        body = sender_notice(
            outcome,
            sender=row.mail_from,
            subject=row.subject,
            recipients=row.rcpt_to,
            mail_id=mail_id,
            from_address=self.section.notice.from_address,
            now=self.clock(),
            reason=_masked(reason),
            decided_by=decided_by,
        )
        return [(mail_id, f"notice:{outcome}", row.mail_from, body)]

    def send_notices(self) -> int:
        host, port = parse_host_port(self.section.notice.internal_smtp)
        sent = 0
        for notice in self.state.due_notices():
            try:
                with smtplib.SMTP(
                    host, port, local_hostname=self.section.hostname, timeout=SMTP_CLIENT_TIMEOUT_S
                ) as smtp:
                    smtp.sendmail(self.section.notice.from_address, [notice.rcpt], notice.data)
            except (OSError, smtplib.SMTPException) as exc:
                wait = min(self.section.notice.retry_s * 2**notice.attempts, MAX_NOTICE_BACKOFF_S)
                self.state.notice_deferred(notice.id, self.clock() + wait, str(exc)[:300])
                log.warning("notice %s to %s deferred: %s", notice.kind, notice.rcpt, exc)
                continue
            self.state.notice_sent(notice.id)
            if notice.kind.startswith("notice:"):
                self.audit.record(notice.mail_id, "sender_notified", outcome=notice.kind[7:])
            sent += 1
        return sent

    # ------------------------------------------------------------------------------- misc

    def _quarantine(self, mail_id: str, reason: str) -> None:
        log.error("outbound mail %s quarantined: %s", mail_id, reason)
        try:
            self.spool.quarantine(mail_id, reason)
        except (OSError, SpoolCorrupt):
            log.exception("could not move %s to quarantine", mail_id)
        if self.state.mail(mail_id) is not None:
            self.state.set_mail(mail_id, "quarantined")
        self.audit.record(mail_id, "quarantined", reason="outbound_spool_unreadable", detail=reason)


def _masked(text: str) -> str:
    return mask_text(text, detect(text))


def _masked_subject(data: bytes) -> str:
    try:
        headers = BytesHeaderParser(policy=default_policy).parsebytes(data[:SUBJECT_SCAN_BYTES])
        subject = " ".join(str(headers.get("Subject", "")).split())
    except (ValueError, TypeError, IndexError):
        subject = ""
    return _masked(subject[:300])


def _nonzero(result: ScanResult) -> dict[str, int]:
    return {kind: count for kind, count in result.counts().items() if count}
