"""What the link thread does with a package the receive filters marked (``Manifest.inbound``):

* ``hold``: the masked preview of a held mail. Recorded in the hold book, and its notification
  goes to the approvers (``approvers_for``), never to the recipients; audit ``hold_requested``.
* ``expired``: the outer agent dropped a held mail undecided; the hold book says so, and the
  notice goes to the recipients like any notification.
* everything else (carried, blocked notices, released mail): to the recipients as it is.

Without ``[inbound]`` here, a held mail's preview has nobody to go to: it is refused (the
bundle is quarantined, ``hold_without_approvers``) and the mail waits in the DMZ until it
expires there, with the notice to its recipients.
"""

from __future__ import annotations

from typing import Any, Protocol

from inner_agent.inbound.approvers import Directory, approvers_for
from inner_agent.inbound.holds import HoldBook
from inner_agent.notify import CheckedMail, shown_header_text
from mailsafe.payload import InboundMark

__all__ = ["HeldArrivals"]


class Audit(Protocol):
    def record(self, mail_id: str, step: str, **fields: Any) -> None: ...


class HeldArrivals:
    def __init__(
        self, book: HoldBook, directory: Directory, audit: Audit, *, fallback: str | None
    ) -> None:
        self.book, self.directory, self.audit, self.fallback = book, directory, audit, fallback

    def route(
        self, mail: CheckedMail, recipients: tuple[str, ...]
    ) -> tuple[CheckedMail, tuple[str, ...]]:
        """The mail and whom its notification goes to."""
        mark = mail.manifest.inbound
        if mark is None:
            return mail, recipients
        if mark.action == "expired":
            self.book.expired(mail.manifest.mail_id)
            return mail, recipients
        if mark.action != "hold":
            return mail, recipients
        return mail, self._hold(mail, mark, recipients)

    def _hold(
        self, mail: CheckedMail, mark: InboundMark, recipients: tuple[str, ...]
    ) -> tuple[str, ...]:
        manifest = mail.manifest
        approvers = approvers_for(self.directory, recipients, mark.approver, self.fallback)
        headers = manifest.headers
        new = self.book.add(
            manifest.mail_id,
            rule=mark.rule,
            recipients=recipients,
            approvers=approvers,
            approver_kind=mark.approver or "department_head",
            policy_version=mark.policy_version,
            held_until=mark.held_until,
            sender=shown_header_text(manifest.envelope.mail_from or headers.from_, 320),
            subject=shown_header_text(headers.subject, 300),
        )
        if new:
            self.audit.record(
                manifest.mail_id,
                "hold_requested",
                rule=mark.rule,
                rcpts=list(recipients),
                approvers=list(approvers),
                approver_kind=mark.approver,
                held_until=mark.held_until,
                policy_version=mark.policy_version,
            )
        return approvers
