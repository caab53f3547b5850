"""Carries out the actions of a lifecycle edge (``lifecycle.transition``): stores the state,
writes the audit event, queues the notices and request mails, removes or quarantines the
spool file. The only code that acts on a mail's lifecycle; everything it does is an action
the pure transition named.

Two processes move mails (the agent's worker, and the web process for decisions: D-record
"The web listener in its own process"), so a state is stored only if the mail is still in
the state the edge starts from (a compare-and-set in the database). The loser of a race gets
``InvalidTransition`` before any later action of its edge: one audit event, one notice."""

from __future__ import annotations

import logging

from inner_agent.outbound.errors import InvalidTransition, SpoolCorrupt
from inner_agent.outbound.lifecycle import (
    Action,
    AskApprovers,
    MailState,
    Occurrence,
    OpenRequest,
    Quarantine,
    Record,
    RemoveSpool,
    SetState,
    TellApprovers,
    TellSender,
    transition,
)
from inner_agent.outbound.notices import Notices
from inner_agent.outbound.ports import Audit, Stores
from inner_agent.outbound.previews import Preview

__all__ = ["Effects"]

log = logging.getLogger(__name__)


class Effects:
    def __init__(self, stores: Stores, audit: Audit, notices: Notices) -> None:
        self.spool, self.state = stores.spool, stores.state
        self.audit, self.notices = audit, notices

    def advance(self, mail_id: str, event: Occurrence, *, now_in: MailState | None = None) -> None:
        """Move the mail on by ``event`` from its stored state (or ``now_in``) and carry out
        the edge's actions. InvalidTransition when the state does not take the event."""
        if now_in is None:
            row = self.state.mail(mail_id)
            if row is None:
                log.warning("outbound mail %s: %s for a mail not in the database", mail_id,
                            event.kind)  # fmt: skip
                return
            now_in = MailState(row.state)
        for action in transition(now_in, event).actions:
            self._carry_out(mail_id, action, now_in)

    def _carry_out(self, mail_id: str, action: Action, now_in: MailState) -> None:
        match action:
            case SetState(state, decided_by):
                self._set_state(mail_id, now_in, state, decided_by)
            case Record(step, fields):
                self.audit.record(mail_id, step, **fields)
            case TellSender(outcome, reason, decided_by):
                self._queue(self.notices.to_sender(mail_id, outcome, reason=reason,
                                                   decided_by=decided_by))  # fmt: skip
            case OpenRequest():
                self._open(mail_id, action, now_in)
            case AskApprovers(request, reminder):
                row = self.state.mail(mail_id)
                preview = self.stored_preview(request.request_id)
                if row is not None:
                    self._queue(self.notices.requests(request, row, preview, reminder=reminder))
            case TellApprovers(request, outcome):
                self._queue(self.notices.to_approvers(request, outcome))
            case RemoveSpool():
                self.spool.remove(mail_id)
            case Quarantine(detail):
                self._quarantine(mail_id, detail)

    def _set_state(
        self, mail_id: str, now_in: MailState, state: MailState, decided_by: str | None
    ) -> None:
        fields = {} if decided_by is None else {"decided_by": decided_by}
        if not self.state.set_mail(mail_id, str(state), expect=str(now_in), **fields):
            raise InvalidTransition(f"outbound mail {mail_id} left {now_in} meanwhile")

    def _queue(self, notices: list[tuple[str, str, str, bytes]]) -> None:
        for notice in notices:
            self.state.queue_notice(*notice)

    def _open(self, mail_id: str, action: OpenRequest, now_in: MailState) -> None:
        row = self.state.mail(mail_id)
        asks = self.notices.requests(action.request, row, action.preview) if row else []
        held = self.notices.to_sender(mail_id, "held", reason=action.note)
        preview = action.preview
        if not self.state.add_request(action.request, preview.first_picture(), asks + held,
                                      pages=preview.encode()):  # fmt: skip
            raise InvalidTransition(f"outbound mail {mail_id} left {now_in} meanwhile")

    def stored_preview(self, request_id: str) -> Preview:
        """The request's preview as stored (pages, or the one picture of an older version);
        an empty one when there is none or it cannot be read."""
        stored = self.state.preview_pages(request_id) or self.state.preview(request_id)
        if not stored:
            return Preview(())
        try:
            return Preview.decode(stored)
        except ValueError:
            log.exception("the preview of request %s cannot be read", request_id)
            return Preview(())

    def _quarantine(self, mail_id: str, detail: str) -> None:
        log.error("outbound mail %s quarantined: %s", mail_id, detail)
        try:
            self.spool.quarantine(mail_id, detail)
        except (OSError, SpoolCorrupt):
            log.exception("could not move %s to quarantine", mail_id)
