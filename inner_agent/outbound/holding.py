"""Holding a mail the policy sends for approval: who is asked, and the request that asks
them, with the preview of the mail (its pages, personal data painted over). Decides what
happened; ``Effects`` stores it."""

from __future__ import annotations

import secrets
from collections.abc import Callable

from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.lifecycle import NO_APPROVER_TEXT, Held, NoApprover, RequestFound
from inner_agent.outbound.preview import Previewer
from inner_agent.outbound.scanning import Scanned
from inner_agent.outbound.spool import SpooledMail
from inner_agent.outbound.state import OutboundState

__all__ = ["Holding"]

# 16 hex digits: unguessable enough for an id that is never a credential (tokens are).
REQUEST_ID_BYTES = 8


class Holding:
    def __init__(
        self,
        state: OutboundState,
        approvers: Approvers,
        clock: Callable[[], float],
        previewer: Previewer | None = None,
    ) -> None:
        self.state, self.approvers, self.clock = state, approvers, clock
        self.previewer = previewer or Previewer()

    def hold(
        self, mail: SpooledMail, scanned: Scanned, data: bytes
    ) -> Held | RequestFound | NoApprover:
        """``data``: the mail as spooled, which the preview draws."""
        if self.state.request_for_mail(mail.mail_id) is not None:
            return RequestFound()  # a crash after the request was stored: do not ask twice
        route = self.approvers.route(scanned.sender)
        if not route.approvers:
            return NoApprover(_nobody(route.note))
        request_id = secrets.token_hex(REQUEST_ID_BYTES)
        request = Request(request_id, mail.mail_id, State.HELD, route.approvers, self.clock())
        preview = self.previewer.preview(data, scanned)
        return Held(request, preview, scanned.result.decision.rule, route.note)


def _nobody(mismatch: str) -> str:
    """What the sender is told when nobody can approve the mail."""
    if not mismatch:
        return NO_APPROVER_TEXT
    nobody = "승인할 보안 담당자가 디렉터리에 없습니다 (no security officer in the directory)"
    return f"{nobody}; {mismatch}"
