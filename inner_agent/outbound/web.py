"""The approval web pages: server-rendered (Starlette + Jinja2), no JavaScript, Korean.

Pages: sign-in, the signed-in approver's pending requests, a request's detail with the masked
image, and approve / reject (with a reason) forms. Every state change is a POST carrying the
session's CSRF token; every decision also carries an approval token bound to the approver and
the request (tokens.py). The pages call only ``desk.ApprovalDesk`` (list, view, image,
decide), which checks and spends tokens in one place (``token_gate.TokenGate``).

Sessions live in the state database under a random id (cookie ``md_session``: HttpOnly,
SameSite=Lax, Secure when the public URL is https); signing in issues a new id. The CSRF token
is HMAC(secret, session id). Responses forbid framing and caching and send no Referer, so a
token in a link never leaks to another site.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import python_multipart  # noqa: F401 - request.form() needs it: fail at start, not at the first POST
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from inner_agent.outbound.approval import Event
from inner_agent.outbound.desk import ApprovalDesk
from inner_agent.outbound.directory import User
from inner_agent.outbound.errors import InvalidTransition, TokenRefused
from inner_agent.outbound.notice_mail import TYPE_NAMES

__all__ = ["Accounts", "Sessions", "create_app"]

log = logging.getLogger(__name__)

COOKIE = "md_session"
# Five wrong passwords within fifteen minutes lock that account's sign-in for the rest of it:
# slows guessing to a crawl without letting a stranger lock someone out for long.
MAX_FAILED_SIGNINS = 5
FAILED_SIGNIN_WINDOW_S = 15 * 60.0
# A rejection reason is a sentence or two for the sender, not a letter.
MAX_REASON_CHARS = 1000
MAX_FORM_FIELD_CHARS = 4096

TOKEN_MESSAGES = {
    "malformed": "링크가 올바르지 않습니다.",
    "forged": "링크가 올바르지 않습니다 (서명이 맞지 않음).",
    "expired": "링크의 유효 기간이 지났습니다.",
    "reused": "이미 사용한 링크입니다. 링크는 한 번만 쓸 수 있습니다.",
    "wrong-approver": "이 요청은 로그인한 사용자가 결정할 수 없습니다.",
    "wrong-request": "이 링크는 다른 요청의 것입니다.",
}


class Sessions(Protocol):
    """Where sign-in sessions live (the outbound state database)."""

    def session(self, session_id: str) -> tuple[str | None] | None: ...
    def put_session(self, session_id: str, user: str | None, expires_at: float) -> None: ...
    def drop_session(self, session_id: str) -> None: ...


class Accounts(Protocol):
    """Who may sign in (the directory)."""

    def user(self, email: str) -> User | None: ...
    def check_password(self, email: str, password: str) -> bool: ...


SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


class _Pages:
    def __init__(
        self,
        desk: ApprovalDesk,
        sessions: Sessions,
        accounts: Accounts,
        secret: bytes,
        *,
        session_ttl_s: float,
        secure_cookie: bool,
        clock: Callable[[], float],
    ) -> None:
        self.desk, self.sessions, self.accounts = desk, sessions, accounts
        self._csrf_key = hashlib.sha256(b"csrf\0" + secret).digest()
        self.session_ttl_s, self.secure_cookie, self.clock = session_ttl_s, secure_cookie, clock
        self.failures: dict[str, list[float]] = {}
        self.templates = Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True),
            auto_reload=False,
        )

    # ----------------------------------------------------------------------------- sessions

    def _session(self, request: Request) -> tuple[str, str | None, bool]:
        """(session id, signed-in user or None, is the session new)."""
        untrusted_sid = request.cookies.get(COOKIE, "")
        if 20 <= len(untrusted_sid) <= 100:
            found = self.sessions.session(untrusted_sid)
            if found is not None:
                return untrusted_sid, found[0], False
        sid = secrets.token_urlsafe(32)
        self.sessions.put_session(sid, None, self.clock() + self.session_ttl_s)
        return sid, None, True

    def csrf(self, sid: str) -> str:
        return hmac.new(self._csrf_key, sid.encode(), hashlib.sha256).hexdigest()

    def _csrf_ok(self, sid: str, untrusted: str) -> bool:
        return hmac.compare_digest(self.csrf(sid), untrusted.encode("ascii", "replace").decode())

    def _page(
        self, template: str, sid: str, new: bool, status: int = 200, **values: Any
    ) -> Response:
        body = self.templates.get_template(template).render(
            csrf=self.csrf(sid), type_names=TYPE_NAMES, **values
        )
        return self._finish(HTMLResponse(body, status_code=status), sid, new)

    def _finish(self, response: Response, sid: str, new: bool) -> Response:
        response.headers.update(SECURITY_HEADERS)
        if new:
            response.set_cookie(
                COOKIE,
                sid,
                max_age=int(self.session_ttl_s),
                httponly=True,
                samesite="lax",
                secure=self.secure_cookie,
                path="/",
            )
        return response

    async def _form(self, request: Request) -> dict[str, str]:
        form = await request.form(max_files=0, max_fields=20)
        return {k: str(v)[:MAX_FORM_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}

    def _refuse_csrf(self, sid: str, new: bool, where: str, request: Request) -> Response:
        client = request.client.host if request.client else "?"
        log.warning("CSRF check failed on %s from %s", where, client)
        self.desk.note_csrf_refusal(where, client)
        return self._page(
            "message.html",
            sid,
            new,
            status=403,
            title="요청을 처리할 수 없습니다",
            message="보안 확인(CSRF)에 실패했습니다. 페이지를 새로 열어 다시 시도해 주십시오.",
        )

    # ----------------------------------------------------------------------------- sign-in

    async def login_form(self, request: Request) -> Response:
        sid, user, new = self._session(request)
        return self._page(
            "login.html",
            sid,
            new,
            next=_local_path(request.query_params.get("next")),
            user=user,
            error=None,
        )

    async def login(self, request: Request) -> Response:
        sid, _user, new = self._session(request)
        form = await self._form(request)
        if new or not self._csrf_ok(sid, form.get("csrf", "")):
            return self._refuse_csrf(sid, new, "login", request)
        email, target = form.get("email", "").strip().lower(), _local_path(form.get("next"))
        if self._locked(email) or not await run_in_threadpool(
            self.accounts.check_password, email, form.get("password", "")
        ):
            self._note_failure(email)
            log.warning("sign-in failed for %r", email)
            return self._page(
                "login.html",
                sid,
                new,
                status=401,
                next=target,
                user=None,
                error="주소 또는 비밀번호가 맞지 않습니다.",
            )
        self.failures.pop(email, None)
        self.sessions.drop_session(sid)
        fresh = secrets.token_urlsafe(32)
        self.sessions.put_session(fresh, email, self.clock() + self.session_ttl_s)
        log.info("%s signed in to the approval pages", email)
        return self._finish(RedirectResponse(target, status_code=303), fresh, True)

    async def logout(self, request: Request) -> Response:
        sid, _user, new = self._session(request)
        form = await self._form(request)
        if new or not self._csrf_ok(sid, form.get("csrf", "")):
            return self._refuse_csrf(sid, new, "logout", request)
        self.sessions.drop_session(sid)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return self._finish(response, sid, False)

    def _locked(self, email: str) -> bool:
        recent = [
            t for t in self.failures.get(email, []) if self.clock() - t < FAILED_SIGNIN_WINDOW_S
        ]
        self.failures[email] = recent
        return len(recent) >= MAX_FAILED_SIGNINS

    def _note_failure(self, email: str) -> None:
        self.failures.setdefault(email, []).append(self.clock())

    # ----------------------------------------------------------------------------- requests

    def _need_user(self, request: Request) -> tuple[str, str, bool] | Response:
        sid, user, new = self._session(request)
        if user is None or self.accounts.user(user) is None:
            target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return self._finish(
                RedirectResponse(f"/login?next={quote(target)}", status_code=303), sid, new
            )
        return sid, user, new

    async def index(self, request: Request) -> Response:
        sid, _user, new = self._session(request)
        return self._finish(RedirectResponse("/requests", status_code=303), sid, new)

    async def pending(self, request: Request) -> Response:
        who = self._need_user(request)
        if isinstance(who, Response):
            return who
        sid, user, new = who
        rows = [
            {"request": item, "mail": mail, "since": _when(item.since)}
            for item, mail in self.desk.pending_for(user)
        ]
        done = {"approved": "승인했습니다. 메일이 발송됩니다.", "rejected": "반려했습니다."}
        return self._page(
            "list.html",
            sid,
            new,
            user=user,
            rows=rows,
            done=done.get(request.query_params.get("done", "")),
        )

    async def detail(self, request: Request) -> Response:
        who = self._need_user(request)
        if isinstance(who, Response):
            return who
        sid, user, new = who
        try:
            view = self.desk.view(
                request.path_params["request_id"], user, request.query_params.get("t")
            )
        except TokenRefused as refused:
            return self._page("message.html", sid, new, status=403, user=user,
                              title="링크를 쓸 수 없습니다",
                              message=TOKEN_MESSAGES[refused.reason])  # fmt: skip
        if view is None:
            return self._page("message.html", sid, new, status=404, user=user, title="요청 없음",
                              message="요청을 찾을 수 없거나 볼 권한이 없습니다.")  # fmt: skip
        return self._page("detail.html", sid, new, user=user, item=view.request, mail=view.mail,
                          token=view.token, since=_when(view.request.since),
                          chosen=request.query_params.get("do"), error=None)  # fmt: skip

    async def image(self, request: Request) -> Response:
        who = self._need_user(request)
        if isinstance(who, Response):
            return who
        sid, user, new = who
        png = self.desk.image(request.path_params["request_id"], user)
        if png is None:
            return self._finish(Response("not found", status_code=404), sid, new)
        return self._finish(Response(png, media_type="image/png"), sid, new)

    async def decide(self, request: Request) -> Response:  # noqa: PLR0911 - one exit per refusal
        who = self._need_user(request)
        if isinstance(who, Response):
            return who
        sid, user, new = who
        form = await self._form(request)
        if new or not self._csrf_ok(sid, form.get("csrf", "")):
            return self._refuse_csrf(sid, new, "decide", request)
        request_id = request.path_params["request_id"]
        action = form.get("action", "")
        reason = form.get("reason", "").strip()[:MAX_REASON_CHARS]
        if action not in ("approve", "reject"):
            return self._page(
                "message.html",
                sid,
                new,
                status=400,
                user=user,
                title="잘못된 요청",
                message="승인 또는 반려를 선택해 주십시오.",
            )
        if action == "reject" and not reason:
            return self._redo(
                sid, new, user, request_id, form.get("token", ""), "반려 사유를 적어 주십시오."
            )
        event = Event.APPROVE if action == "approve" else Event.REJECT
        try:
            await run_in_threadpool(
                self.desk.decide, request_id, user, event, form.get("token", ""), reason
            )
        except TokenRefused as refused:
            return self._page(
                "message.html",
                sid,
                new,
                status=403,
                user=user,
                title="처리할 수 없습니다",
                message=TOKEN_MESSAGES[refused.reason],
            )
        except InvalidTransition:
            return self._page(
                "message.html",
                sid,
                new,
                status=409,
                user=user,
                title="이미 결정됨",
                message="이 요청은 이미 결정되었거나 더 이상 결정할 수 없습니다.",
            )
        done = "approved" if event is Event.APPROVE else "rejected"
        return self._finish(RedirectResponse(f"/requests?done={done}", status_code=303), sid, new)

    def _redo(  # noqa: PLR0917 - the page state, passed through once
        self, sid: str, new: bool, user: str, request_id: str, token: str, error: str
    ) -> Response:
        view = self.desk.view(request_id, user)
        if view is None:
            return self._page(
                "message.html",
                sid,
                new,
                status=404,
                user=user,
                title="요청 없음",
                message="요청을 찾을 수 없습니다.",
            )
        return self._page(
            "detail.html",
            sid,
            new,
            status=400,
            user=user,
            item=view.request,
            mail=view.mail,
            token=token,
            since=_when(view.request.since),
            chosen="reject",
            error=error,
        )


def _local_path(untrusted: str | None) -> str:
    """Only a path on this site is a place to go after sign-in (no open redirect)."""
    if untrusted and untrusted.startswith("/") and not untrusted.startswith(("//", "/\\")):
        return untrusted
    return "/requests"


def _when(ts: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(ts))


def create_app(
    desk: ApprovalDesk,
    sessions: Sessions,
    accounts: Accounts,
    secret: bytes,
    *,
    session_ttl_s: float,
    secure_cookie: bool = False,
    clock: Callable[[], float] = time.time,
) -> Starlette:
    pages = _Pages(
        desk,
        sessions,
        accounts,
        secret,
        session_ttl_s=session_ttl_s,
        secure_cookie=secure_cookie,
        clock=clock,
    )
    routes: list[tuple[str, Callable[[Request], Awaitable[Response]], list[str]]] = [
        ("/", pages.index, ["GET"]),
        ("/login", pages.login_form, ["GET"]),
        ("/login", pages.login, ["POST"]),
        ("/logout", pages.logout, ["POST"]),
        ("/requests", pages.pending, ["GET"]),
        ("/requests/{request_id}", pages.detail, ["GET"]),
        ("/requests/{request_id}/image.png", pages.image, ["GET"]),
        ("/requests/{request_id}/decide", pages.decide, ["POST"]),
    ]
    return Starlette(
        routes=[Route(path, endpoint, methods=methods) for path, endpoint, methods in routes]
    )
