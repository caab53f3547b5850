"""The mails the outbound path writes to people inside, as outbox entries: the approval
request to each approver (with a fresh token in its links) and the notice of each outcome to
the envelope sender. Composing only; ``outbox.Outbox`` sends them."""

from __future__ import annotations

from collections.abc import Callable

from inner_agent.outbound.approval import Request
from inner_agent.outbound.config import OutboundSection
from inner_agent.outbound.notice_mail import (
    RequestMail,
    approval_request,
    approver_notice,
    request_link,
    sender_notice,
)
from inner_agent.outbound.previews import Preview
from inner_agent.outbound.senders import stored_check
from inner_agent.outbound.state import MailRow, OutboundState
from inner_agent.outbound.token_gate import TokenGate
from inner_agent.outbound.wording import held_because
from mailsafe.pii import detect, mask_text

__all__ = ["Notices", "QueuedNotice"]

# (mail id, kind, recipient, message): one outbox entry, as OutboundState stores it.
QueuedNotice = tuple[str, str, str, bytes]


class Notices:
    def __init__(
        self,
        section: OutboundSection,
        state: OutboundState,
        gate: TokenGate,
        clock: Callable[[], float],
    ) -> None:
        self.public_url, self.from_address = section.web.public_url, section.notice.from_address
        self.state, self.gate, self.clock = state, gate, clock

    def requests(
        self, request: Request, mail: MailRow, preview: Preview, *, reminder: bool = False
    ) -> list[QueuedNotice]:
        """The request mail (or its reminder) to each approver of ``request``."""
        kind = "reminder" if reminder else "request"
        found = []
        for approver in request.approvers:
            body = self._request_mail(request, mail, preview, approver, reminder)
            found.append((mail.mail_id, kind, approver, body))
        return found

    def _request_mail(
        self, request: Request, mail: MailRow, preview: Preview, approver: str, reminder: bool
    ) -> bytes:
        token = self.gate.issue(request, approver)
        return approval_request(
            RequestMail(
                request_id=request.request_id,
                mail_id=mail.mail_id,
                approver=approver,
                sender=mail.mail_from,
                recipients=mail.rcpt_to,
                subject=mail.subject,
                explanation=held_because(mail.decision, mail.findings),
                findings=tuple((f["type"], f["masked"], f["where"]) for f in mail.findings),
                preview=preview,
                link=request_link(self.public_url, request.request_id, token),
                reminder=reminder,
                sender_mismatch=stored_check(mail.decision, mail.mail_from)[1],
            ),
            from_address=self.from_address,
            now=self.clock(),
        )

    def to_approvers(self, request: Request, outcome: str) -> list[QueuedNotice]:
        """The notice of ``outcome`` to each approver of ``request`` (its request closed)."""
        row = self.state.mail(request.mail_id)
        if row is None:
            return []
        return [
            (request.mail_id, f"approver:{outcome}", approver, approver_notice(
                outcome, approver=approver, sender=row.mail_from, subject=row.subject,
                request_id=request.request_id, from_address=self.from_address,
                now=self.clock()))
            for approver in request.approvers
        ]  # fmt: skip

    def to_sender(
        self, mail_id: str, outcome: str, *, reason: str = "", decided_by: str = ""
    ) -> list[QueuedNotice]:
        """The notice of ``outcome``; none for a bounce (a null sender is never answered)."""
        row = self.state.mail(mail_id)
        if row is None or not row.mail_from:
            return []
        body = sender_notice(
            outcome,
            sender=row.mail_from,
            subject=row.subject,
            recipients=row.rcpt_to,
            mail_id=mail_id,
            from_address=self.from_address,
            now=self.clock(),
            reason=mask_text(reason, detect(reason)),
            decided_by=decided_by,
        )
        return [(mail_id, f"notice:{outcome}", row.mail_from, body)]
