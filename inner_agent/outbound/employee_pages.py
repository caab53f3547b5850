"""The employee's own pages ("내 메일"): the mails they sent out with where each stands, a
button to withdraw one still waiting for approval, and the inbound mails addressed to them
that a receive filter holds.

Who "they" are: the signed-in account. A sent mail is theirs when its envelope sender is
that address (the internal mail server sets it for the signed-in mail user; docs/console.md
"내 메일"). Sign-in is the web listener's: a directory account's password, or, when the
directory helper configures it, an LDAP bind behind the same ``AccountStore.check_password``
(that is the hook: these pages only ever see the signed-in address).

Statuses, in the employee's words: 검사 중, 승인 대기 (and whom it waits for), 승인됨 (발송
중), 반려 (with the reason), 기한 만료, 발송 취소, 차단, 발송됨 (passed to the outer agent),
배달됨 (the outer agent's status report says the receiving server took it: its
``delivered`` event, imported into the audit store), 격리.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agentkit.readonly import query_read_only
from inner_agent.inbound.holds import HoldBook
from inner_agent.outbound.approval import Request as ApprovalRequest
from inner_agent.outbound.desk import ApprovalDesk
from inner_agent.outbound.errors import InvalidTransition, WithdrawRefused
from inner_agent.outbound.page_kit import PageKit
from inner_agent.outbound.state import MailRow
from inner_agent.web.app import Listener
from inner_agent.web.roles import Role, require

__all__ = ["EmployeePages", "OwnMail", "status_of"]

# The employee's own inbound holds on their page (newest first); older ones are in the console.
MAX_HOLDS_READ = 1000

_STATUS = {
    "received": "검사 중",
    "held": "승인 대기",
    "sending": "승인됨 — 발송 중",
    "sent": "발송됨",
    "blocked": "차단됨 (발송 안 됨)",
    "rejected": "반려됨 (발송 안 됨)",
    "expired": "승인 기한 만료 (발송 안 됨)",
    "withdrawn": "발송 취소 (발송 안 됨)",
    "quarantined": "격리됨 (발송 안 됨)",
}
_NOT_WITHDRAWABLE = "본인이 보낸, 승인을 기다리는 메일만 취소할 수 있습니다."
_HOLD_STATUS = {"waiting": "보류 — 승인 대기", "released": "전달 승인됨", "dropped": "삭제됨",
                "expired": "보류 기한 만료 (삭제됨)"}  # fmt: skip


@dataclass(frozen=True)
class OwnMail:
    mail: MailRow
    status: str  # in Korean
    waiting_for: tuple[str, ...]  # who decides, while it is held
    reason: str  # the rejection's reason
    withdrawable: bool


def status_of(mail: MailRow, request: ApprovalRequest | None, delivered: bool) -> OwnMail:
    """Where one sent mail stands, for its sender."""
    status = _STATUS.get(mail.state, mail.state)
    if mail.state == "sent" and delivered:
        status = "배달됨"
    if mail.state == "sending" and mail.decided_by.startswith("policy:"):
        status = "발송 중"  # allowed by the policy, nobody had to approve
    held = mail.state == "held" and request is not None and request.state.pending
    waiting = request.approvers if held and request is not None else ()
    reason = request.reason if request is not None and mail.state == "rejected" else ""
    return OwnMail(mail, status, waiting, reason, held)


class EmployeePages(PageKit):
    def __init__(self, desk: ApprovalDesk, listener: Listener) -> None:
        super().__init__(desk, listener)
        places = listener.console_data().places
        self.audit_path = places.audit_path
        self.holds_path = (
            None if places.state_dir is None else places.state_dir / "inbound-holds.db"
        )

    def routes(self) -> list[Route]:
        return [
            Route("/my/sent", self.sent, methods=["GET"]),
            Route("/my/sent/{mail_id}/withdraw", self.withdraw, methods=["POST"]),
            Route("/my/held", self.held_inbound, methods=["GET"]),
        ]

    @require(Role.EMPLOYEE)
    async def sent(self, request: Request) -> Response:
        sid, user = self._who(request)
        mails = await run_in_threadpool(self._own, user)
        said = {"withdrawn": "메일 발송을 취소했습니다. 이 메일은 발송되지 않습니다."}
        return self._page("my_sent.html", sid, user=user, mails=mails, when=self._when,
                          done=said.get(request.query_params.get("done", "")))  # fmt: skip

    def _own(self, user: str) -> list[OwnMail]:
        listed = self.desk.sent_by(user)
        delivered = self._delivered([row.mail_id for row, _ in listed if row.state == "sent"])
        return [status_of(row, req, row.mail_id in delivered) for row, req in listed]

    def _delivered(self, mail_ids: list[str]) -> set[str]:
        if not mail_ids or self.audit_path is None:
            return set()
        marks = ",".join("?" * len(mail_ids))
        sql = (
            f"SELECT DISTINCT mail_id FROM events WHERE step = 'delivered' AND mail_id IN ({marks})"  # noqa: S608 - placeholders only
        )
        rows = query_read_only(self.audit_path, sql, tuple(mail_ids))
        return {str(row[0]) for row in rows}

    @require(Role.EMPLOYEE)
    async def withdraw(self, request: Request) -> Response:
        sid, user = self._who(request)
        form = await self.signin.form(request)
        refused = self._csrf_refused("withdraw", request, sid, user, form.get("csrf", ""))
        if refused is not None:
            return refused
        try:
            await run_in_threadpool(self.desk.withdraw, request.path_params["mail_id"], user)
        except WithdrawRefused:
            return self._message(sid, user, 409, "취소할 수 없습니다", _NOT_WITHDRAWABLE)
        except InvalidTransition:
            return self._message(sid, user, 409, "이미 결정됨",
                                 "그 사이 승인자가 결정하여 취소할 수 없습니다.")  # fmt: skip
        return self._finish(RedirectResponse("/my/sent?done=withdrawn", status_code=303))

    @require(Role.EMPLOYEE)
    async def held_inbound(self, request: Request) -> Response:
        sid, user = self._who(request)
        holds = await run_in_threadpool(self._holds_for, user)
        return self._page("my_held.html", sid, user=user, holds=holds, when=self._when,
                          names=_HOLD_STATUS)  # fmt: skip

    def _holds_for(self, user: str) -> list[object]:
        path = self.holds_path
        if path is None or not Path(path).exists():
            return []
        book = HoldBook(path)
        try:
            return list(book.listed_for(user, limit=MAX_HOLDS_READ))
        finally:
            book.close()
