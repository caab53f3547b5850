"""Open approvals follow the directory: after an import or a sync, a request still waiting at
its first level whose approvers the directory would now choose differently (the sender's
manager changed, the head left or was disabled) is moved to the new approvers.

The move is a compare-and-set (``OutboundState.save_request``): a decision taken in the web
process meanwhile wins, and the move is skipped. The moved request's clock starts again
(``since``): the new approver gets the whole time to decide, and a fresh reminder. A request
the directory now finds nobody for keeps its approvers (better asked of the old ones than
of nobody; ``maildiode check`` warns of the department). An escalated request keeps its
approvers too: they were chosen by the timeout, above the sender's department.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

from inner_agent.outbound.approvers import Approvers
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.senders import SenderCheck, comparable, stored_check, stored_sender
from inner_agent.outbound.state import MailRow, OutboundState

__all__ = ["Moved", "move_open_requests", "move_requests_in"]


@dataclass(frozen=True)
class Moved:
    request_id: str
    mail_id: str
    before: tuple[str, ...]
    after: tuple[str, ...]

    def detail(self) -> str:
        return f"request {self.request_id}: approvers {','.join(self.before)} → " + ",".join(
            self.after
        )


def move_open_requests(
    state: OutboundState, approvers: Approvers, directory: Directory, now: float
) -> list[Moved]:
    """Move every first-level pending request the directory now routes elsewhere."""
    moved = []
    for request in state.pending_requests():
        mail = state.mail(request.mail_id)
        if request.escalations or mail is None:
            continue
        route = approvers.route(_stored_check(mail, directory))
        if not route.approvers or set(route.approvers) == set(request.approvers):
            continue
        after = dataclasses.replace(request, approvers=route.approvers, since=now, reminded=False)
        if state.save_request(after, expect=request):
            moved.append(
                Moved(request.request_id, request.mail_id, request.approvers, after.approvers)
            )
    return moved


def move_requests_in(
    state_db: Path | None, directory: Directory, fallback: str | None, now: float
) -> list[Moved]:
    """``move_open_requests`` on the outbound state at ``state_db``, when the agent has made it
    (never created here: a directory kept where no outbound path runs has nothing to move)."""
    if state_db is None or not state_db.is_file():
        return []
    state = OutboundState(state_db)
    try:
        return move_open_requests(state, Approvers(directory, fallback), directory, now)
    finally:
        state.close()


def _stored_check(mail: MailRow, directory: Directory) -> SenderCheck:
    """The sender check as the scan stored it, with the sender looked up in today's directory."""
    shown, mismatch = stored_check(mail.decision, mail.mail_from)
    sender = stored_sender(mail.decision, mail.mail_from)
    user = directory.user(sender) if sender else None
    return SenderCheck(comparable(mail.mail_from), tuple(sorted(shown)), user, mismatch)
