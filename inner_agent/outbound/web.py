"""The approval web pages: server-rendered (Starlette + Jinja2), no JavaScript, Korean.

Pages: the signed-in approver's pending requests (with a bulk form: approver_pages.py), a
request's detail with the preview (the mail's pages with personal data painted over, and
where each finding was beside each page) and the reason in Korean (wording.py), a confirmation
page before an approval sends the mail, and approve / reject (with a reason) forms. A
delegate during an approver's absence and an administrator see and decide the requests they
may decide in someone's name (desk.Standing); the page says in whose. Sign-in, sessions,
roles, CSRF and the security headers are the web listener's (``inner_agent.web``): every
page declares its role (``@require(Role.APPROVER, Role.ADMIN)``: any directory person with an
account, or an administrator; the desk shows each only the requests they may decide), and
puts the session's CSRF token into every form. Every state change is a POST carrying that
token; every decision also carries an approval token bound to the approver and the request
(tokens.py). The pages call only ``desk.ApprovalDesk`` (list, view, preview, decide), which
checks and spends tokens in one place (``token_gate.TokenGate``). Opening a request and its
pages are access records.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agentkit.access import Action
from inner_agent.outbound.approval import Event
from inner_agent.outbound.approver_pages import MAX_BULK, ApproverPages
from inner_agent.outbound.desk import ApprovalDesk
from inner_agent.outbound.employee_pages import EmployeePages
from inner_agent.outbound.errors import InvalidTransition, TokenRefused
from inner_agent.outbound.notice_mail import TYPE_NAMES, place_words
from inner_agent.outbound.page_kit import PageKit
from inner_agent.outbound.wording import held_because
from inner_agent.web.app import Listener, listener_app
from inner_agent.web.pages import client_of
from inner_agent.web.roles import Role, require
from inner_agent.web.shown import with_marking

__all__ = ["create_app", "templates"]

# The picture types a preview page may be (the renderer's encoders).
PAGE_TYPES = frozenset({"image/png", "image/jpeg"})
# A preview has at most a few dozen pages; a longer number is no page of one.
MAX_PAGE_DIGITS = 3
# A rejection reason is a sentence or two for the sender, not a letter.
MAX_REASON_CHARS = 1000

TOKEN_MESSAGES = {
    "malformed": "링크가 올바르지 않습니다.",
    "forged": "링크가 올바르지 않습니다 (서명이 맞지 않음).",
    "expired": "링크의 유효 기간이 지났습니다.",
    "reused": "이미 사용한 링크입니다. 링크는 한 번만 쓸 수 있습니다.",
    "wrong-approver": "이 요청은 로그인한 사용자가 결정할 수 없습니다.",
    "wrong-request": "이 링크는 다른 요청의 것입니다.",
}


def templates() -> Environment:
    """The approval pages' templates over the web listener's (base, sign-in, message)."""
    here = Path(__file__).parent / "templates"
    shared = Path(__file__).parents[1] / "web" / "templates"
    environment = with_marking(
        Environment(
            loader=ChoiceLoader([FileSystemLoader(here), FileSystemLoader(shared)]),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        )
    )
    environment.globals["type_names"] = TYPE_NAMES
    environment.globals["held_because"] = held_because
    environment.globals["place_words"] = place_words
    return environment


class _Pages(PageKit):
    # ----------------------------------------------------------------------------- requests

    @require(Role.APPROVER, Role.ADMIN)
    async def pending(self, request: Request) -> Response:
        sid, user = self._who(request)
        admin = self._admin(request)
        rows = [
            {"request": item, "mail": mail, "since": _when(item.since),
             "token": self.desk.token_for(item, user),
             "standing": self.desk.standing(item, user, admin=admin)}
            for item, mail in self.desk.pending_for(user, admin=admin)
        ]  # fmt: skip
        done = {"approved": "승인했습니다. 메일이 발송됩니다.", "rejected": "반려했습니다."}
        count = request.query_params.get("n", "")
        bulk = {"bulk-approved": f"{count}건을 승인했습니다. 메일이 발송됩니다.",
                "bulk-rejected": f"{count}건을 반려했습니다."}  # fmt: skip
        if count.isascii() and count.isdigit() and len(count) <= len(str(MAX_BULK)):
            done |= bulk  # a count as we write it: not "٣", not a thousand digits
        return self._page(
            "list.html",
            sid,
            user=user,
            rows=rows,
            done=done.get(request.query_params.get("done", "")),
        )

    @require(Role.APPROVER, Role.ADMIN)
    async def detail(self, request: Request) -> Response:
        sid, user = self._who(request)
        try:
            view = self.desk.view(
                request.path_params["request_id"],
                user,
                request.query_params.get("t"),
                admin=self._admin(request),
            )
        except TokenRefused as refused:
            return self._page("message.html", sid, status=403, user=user,
                              title="링크를 쓸 수 없습니다",
                              message=TOKEN_MESSAGES[refused.reason])  # fmt: skip
        if view is None:
            return self._page("message.html", sid, status=404, user=user, title="요청 없음",
                              message="요청을 찾을 수 없거나 볼 권한이 없습니다.")  # fmt: skip
        self.access.record(user, client_of(request), Action.MAIL_VIEWED,
                           mail_id=view.request.mail_id, detail="approval request")  # fmt: skip
        preview = self.desk.preview(view.request.request_id, user, admin=self._admin(request))
        return self._page("detail.html", sid, user=user, item=view.request, mail=view.mail,
                          token=view.token, since=_when(view.request.since),
                          standing=view.standing, admin=self._admin(request),
                          chosen=request.query_params.get("do"), error=None,
                          preview=preview)  # fmt: skip

    @require(Role.APPROVER, Role.ADMIN)
    async def confirm(self, request: Request) -> Response:
        """The confirmation step: what approving will send, and the one button that does.
        Changes nothing itself (the decision is the POST from this page)."""
        sid, user = self._who(request)
        form = await self.signin.form(request)
        refused = self._csrf_refused("confirm", request, sid, user, form.get("csrf", ""))
        if refused is not None:
            return refused
        view = self.desk.view(request.path_params["request_id"], user, admin=self._admin(request))
        if view is None or view.token is None:
            return self._message(sid, user, 409, "이미 결정됨",
                                 "이 요청은 이미 결정되었거나 결정할 수 없습니다.")  # fmt: skip
        return self._page("confirm.html", sid, user=user, rows=[
            {"request": view.request, "mail": view.mail, "token": form.get("token", "")}
        ], standing=view.standing, action=f"/requests/{view.request.request_id}/decide",
            bulk=False)  # fmt: skip

    @require(Role.APPROVER, Role.ADMIN)
    async def image(self, request: Request) -> Response:
        _sid, user = self._who(request)
        request_id = request.path_params["request_id"]
        png = self.desk.image(request_id, user, admin=self._admin(request))
        if png is None:
            return self._finish(Response("not found", status_code=404))
        mail_id = self.desk.mail_of(request_id)
        self.access.record(user, client_of(request), Action.IMAGE_VIEWED, mail_id=mail_id,
                           detail="approval request")  # fmt: skip
        return self._finish(Response(png, media_type="image/png"))

    @require(Role.APPROVER, Role.ADMIN)
    async def page(self, request: Request) -> Response:
        """One page of the preview (``/requests/{id}/pages/{number}``, from 1)."""
        _sid, user = self._who(request)
        request_id = request.path_params["request_id"]
        preview = self.desk.preview(request_id, user, admin=self._admin(request))
        number = _page_number(request.path_params["number"])
        page = preview.page(number) if preview is not None else None
        if page is None:
            return self._finish(Response("not found", status_code=404))
        self.access.record(user, client_of(request), Action.IMAGE_VIEWED,
                           mail_id=self.desk.mail_of(request_id),
                           detail=f"approval request page {number}")  # fmt: skip
        media_type = page.media_type if page.media_type in PAGE_TYPES else "image/png"
        return self._finish(Response(page.data, media_type=media_type))

    @require(Role.APPROVER, Role.ADMIN)
    async def decide(self, request: Request) -> Response:
        sid, user = self._who(request)
        form = await self.signin.form(request)
        if not self.signin.csrf_ok(sid, form.get("csrf", "")):
            return self.signin.refuse_csrf("decide", request, csrf=self.signin.csrf(sid),
                                           user=user)  # fmt: skip
        request_id = request.path_params["request_id"]
        action = form.get("action", "")
        reason = form.get("reason", "").strip()[:MAX_REASON_CHARS]
        if action not in ("approve", "reject"):
            return self._page(
                "message.html",
                sid,
                status=400,
                user=user,
                title="잘못된 요청",
                message="승인 또는 반려를 선택해 주십시오.",
            )
        if action == "reject" and not reason:
            return self._redo(sid, user, request_id, form.get("token", ""),
                              "반려 사유를 적어 주십시오.", admin=self._admin(request))  # fmt: skip
        event = Event.APPROVE if action == "approve" else Event.REJECT
        try:
            await run_in_threadpool(
                functools.partial(self.desk.decide, admin=self._admin(request)),
                request_id, user, event, form.get("token", ""), reason,
            )  # fmt: skip
        except TokenRefused as refused:
            return self._page(
                "message.html",
                sid,
                status=403,
                user=user,
                title="처리할 수 없습니다",
                message=TOKEN_MESSAGES[refused.reason],
            )
        except InvalidTransition:
            return self._page(
                "message.html",
                sid,
                status=409,
                user=user,
                title="이미 결정됨",
                message="이 요청은 이미 결정되었거나 더 이상 결정할 수 없습니다.",
            )
        done = "approved" if event is Event.APPROVE else "rejected"
        return self._finish(RedirectResponse(f"/requests?done={done}", status_code=303))

    def _redo(self, sid: str, user: str, request_id: str, token: str, error: str, *,
              admin: bool) -> Response:  # fmt: skip
        view = self.desk.view(request_id, user, admin=admin)
        if view is None:
            return self._page(
                "message.html",
                sid,
                status=404,
                user=user,
                title="요청 없음",
                message="요청을 찾을 수 없습니다.",
            )
        return self._page(
            "detail.html",
            sid,
            status=400,
            user=user,
            item=view.request,
            mail=view.mail,
            token=token,
            since=_when(view.request.since),
            chosen="reject",
            error=error,
            standing=view.standing,
            admin=admin,
            preview=self.desk.preview(request_id, user, admin=admin),
        )


def _page_number(untrusted: str) -> int:
    """A page number from the path, from 1; 0 (no such page) for anything else."""
    if untrusted.isascii() and untrusted.isdigit() and len(untrusted) <= MAX_PAGE_DIGITS:
        return int(untrusted)
    return 0


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def create_app(desk: ApprovalDesk, listener: Listener) -> Starlette:
    """The web listener's app with the approval pages on it (and, through ``listener_app``,
    the console's pages and API; its home page ``/`` sends approvers here)."""
    approval = _Pages(desk, listener)
    approvers, employees = ApproverPages(desk, listener), EmployeePages(desk, listener)
    routes: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/requests", approval.pending, ["GET"]),
        ("/requests/bulk", approvers.bulk, ["POST"]),
        ("/requests/{request_id}", approval.detail, ["GET"]),
        ("/requests/{request_id}/image.png", approval.image, ["GET"]),
        ("/requests/{request_id}/confirm", approval.confirm, ["POST"]),
        ("/requests/{request_id}/pages/{number}", approval.page, ["GET"]),
        ("/requests/{request_id}/decide", approval.decide, ["POST"]),
    ]
    return listener_app(
        listener,
        [
            *(Route(path, endpoint, methods=methods) for path, endpoint, methods in routes),
            *approvers.routes(),
            *employees.routes(),
        ],
    )
