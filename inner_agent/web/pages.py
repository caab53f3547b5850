"""The sign-in pages and what every page set on the web listener uses from them: who is
signed in (``signed_in``, with the account's roles; the gate asks it), the session's CSRF
token, the security headers, page rendering.

Routes: ``GET /login`` (the form; sets the pre-session cookie, stores nothing), ``POST
/login`` (``signin.SignIn.attempt``), ``POST /logout``. Cookies, all HttpOnly and SameSite=Lax,
Secure when the public URL is https:

- ``md_pre``: random, not stored; the sign-in form's CSRF token is bound to it (cookies.py);
- ``md_session``: the session id, made at sign-in;
- ``md_device``: the known-device cookie, set at sign-in, kept across sign-outs.

A session's CSRF token is HMAC(k, session id); every POST of a signed-in page carries it.

Sign-ins, failed sign-ins (a wrong password or code, or a locked pair) and sign-outs are
access records (``agentkit.access``), the typed address of a failure redacted as in the log.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import quote

import python_multipart  # noqa: F401 - request.form() needs it: fail at start, not at the first POST
from jinja2 import Environment
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from agentkit.access import Action
from inner_agent.web.cookies import DEVICE_TTL_S
from inner_agent.web.roles import Role, public
from inner_agent.web.signin import MAX_ADDRESS_CHARS, Admitted, Attempt, Refused, SignIn

__all__ = ["SECURITY_HEADERS", "AccessRecorder", "SignInPages", "client_of"]

log = logging.getLogger(__name__)

SESSION_COOKIE, PRE_COOKIE, DEVICE_COOKIE = "md_session", "md_pre", "md_device"
# What a form field may hold; a longer value is cut (a reason, a password, an address).
MAX_FORM_FIELD_CHARS = 4096
# A pre-session cookie we made is 22 characters; anything far off is replaced.
MIN_PRE_CHARS, MAX_PRE_CHARS = 16, 64

SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

WRONG = "주소, 비밀번호 또는 인증 코드가 맞지 않습니다."
UNREACHABLE = (
    "사내 디렉터리(LDAP) 서버에 연결할 수 없어 비밀번호를 확인하지 못했습니다. "
    "잠시 후 다시 시도해 주십시오."
)
MESSAGES = {
    "wrong": WRONG,
    "locked": "로그인 실패가 많아 이 기기에서는 {minutes}분 동안 로그인할 수 없습니다. "
    "전에 로그인했던 기기에서 하거나, OTP 인증 코드를 함께 넣으십시오.",
    "throttled": "로그인 요청이 너무 많습니다. {seconds}초 후에 다시 시도해 주십시오.",
    "busy": "로그인 요청이 몰려 있습니다. {seconds}초 후에 다시 시도해 주십시오.",
    # Not the password's fault, so not the wrong-password text: a local account still works.
    "unreachable": UNREACHABLE,
}


class AccessRecorder(Protocol):
    """``agentkit.access.AccessLog``: where sign-ins and sign-outs are recorded."""

    def record(self, account: str, client: str, action: Action, *, mail_id: str | None = None,
               detail: str | None = None, count: int | None = None) -> None: ...  # fmt: skip


class SignInPages:
    def __init__(
        self,
        signin: SignIn,
        templates: Environment,
        secret: bytes,
        *,
        secure_cookie: bool,
        on_csrf_refusal: Callable[[str, str], None],
        access: AccessRecorder,
        home: str | Callable[[str], str] = "/requests",
    ) -> None:
        self.signin, self.templates, self.access = signin, templates, access
        self.home_of = home if callable(home) else (lambda _user: home)
        self.secure_cookie, self.on_csrf_refusal = secure_cookie, on_csrf_refusal
        self._csrf_key = hashlib.sha256(b"csrf\0" + secret).digest()

    def routes(self) -> list[Route]:
        return [
            Route("/login", self.login_form, methods=["GET"]),
            Route("/login", self.login, methods=["POST"]),
            Route("/logout", self.logout, methods=["POST"]),
        ]

    # ------------------------------------------------------------------------ for every page

    def signed_in(self, request: Request) -> tuple[str, str, frozenset[Role]] | None:
        """(session id, user, roles) of a live session of an account that may still sign in
        (not disabled, not removed, not gone from the directory): its roles are asked on
        every request, so a change applies at once."""
        session_id = request.cookies.get(SESSION_COOKIE, "")
        user = self.signin.sessions.user_of(session_id) if session_id else None
        roles = self.signin.accounts.roles(user) if user is not None else frozenset()
        if user is None or not roles:
            return None
        return session_id, user, roles

    def to_sign_in(self, request: Request) -> Response:
        """The way to the sign-in page and back here."""
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return self.finish(RedirectResponse(f"/login?next={quote(target)}", status_code=303))

    def csrf(self, session_id: str) -> str:
        return hmac.new(self._csrf_key, session_id.encode(), hashlib.sha256).hexdigest()

    def mark(self, session_id: str, purpose: str, text: str) -> str:
        """A keyed hash of ``text`` for ``purpose``, bound to the session: a page's own message
        carried through a redirect in the query, which a link made elsewhere cannot forge."""
        message = "\0".join((session_id, purpose, text)).encode()
        return hmac.new(self._csrf_key, message, hashlib.sha256).hexdigest()

    def csrf_ok(self, session_id: str, untrusted: str) -> bool:
        readable = untrusted.encode("ascii", "replace").decode()  # compare_digest wants ASCII
        return hmac.compare_digest(self.csrf(session_id), readable)

    def page(self, template: str, *, status: int = 200, csrf: str = "", **values: Any) -> Response:
        body = self.templates.get_template(template).render(csrf=csrf, **values)
        return self.finish(HTMLResponse(body, status_code=status))

    @staticmethod
    def finish(response: Response) -> Response:
        response.headers.update(SECURITY_HEADERS)
        return response

    def refuse_csrf(self, where: str, request: Request, *, csrf: str = "", user: str | None = None
                    ) -> Response:  # fmt: skip
        client = client_of(request)
        log.warning("CSRF check failed on %s from %s", where, client)
        self.on_csrf_refusal(where, client)
        return self.page("message.html", status=403, csrf=csrf, user=user,
                         title="요청을 처리할 수 없습니다",
                         message="보안 확인(CSRF)에 실패했습니다. 페이지를 새로 열어 다시 시도해 "
                         "주십시오.")  # fmt: skip

    @staticmethod
    async def form(request: Request) -> dict[str, str]:
        form = await request.form(max_files=0, max_fields=20)
        return {k: str(v)[:MAX_FORM_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}

    # ------------------------------------------------------------------------ sign-in, -out

    @public
    async def login_form(self, request: Request) -> Response:
        pre = _pre_session(request) or self.signin.cookies.new_pre_session()
        response = self._login_page(pre, request.query_params.get("next"))
        self._set(response, PRE_COOKIE, pre, max_age=None)
        return response

    @public
    async def login(self, request: Request) -> Response:
        form = await self.form(request)
        outcome = await self.signin.attempt(
            Attempt(email=form.get("email", ""), password=form.get("password", ""),
                    code=form.get("code", ""), client=client_of(request),
                    form_token=form.get("csrf", ""), pre_session=_pre_session(request),
                    device_cookie=request.cookies.get(DEVICE_COOKIE, ""))
        )  # fmt: skip
        if isinstance(outcome, Admitted):
            self.access.record(outcome.user, client_of(request), Action.SIGNIN)
            home = self.home_of(outcome.user)
            return self._admitted(outcome, _local_path(form.get("next"), home))
        if outcome.reason == "csrf":
            return self.refuse_csrf("login", request)
        if outcome.reason in ("wrong", "locked"):  # a try that was judged: an access record
            typed = form.get("email", "").strip().lower()[:MAX_ADDRESS_CHARS]
            self.access.record(self.signin.redact(typed), client_of(request),
                               Action.SIGNIN_FAILED, detail=outcome.reason)  # fmt: skip
        return self._refused(outcome, _pre_session(request), form.get("next"))

    def _admitted(self, admitted: Admitted, target: str) -> Response:
        response = self.finish(RedirectResponse(target, status_code=303))
        self._set(response, SESSION_COOKIE, admitted.session_id, max_age=None)
        self._set(response, DEVICE_COOKIE, admitted.device_cookie, max_age=DEVICE_TTL_S)
        return response

    def _refused(self, refused: Refused, pre: str, target: str | None) -> Response:
        wait = refused.retry_after_s
        error = MESSAGES[refused.reason].format(seconds=wait, minutes=max(1, -(-wait // 60)))
        if refused.reason in ("throttled", "busy"):
            response = self.page("message.html", status=refused.status, title="잠시 후 다시",
                                 message=error, user=None)  # fmt: skip
        else:
            response = self._login_page(pre, target, error=error, status=refused.status)
        if wait:
            response.headers["Retry-After"] = str(wait)
        return response

    def _login_page(
        self, pre: str, target: str | None, *, error: str | None = None, status: int = 200
    ) -> Response:
        """The form; no signed-in header (its sign-out button needs the session's token)."""
        token = self.signin.cookies.form_token(pre, self.signin.clock())
        return self.page("login.html", status=status, csrf=token, user=None, error=error,
                         next=_local_path(target, ""))  # fmt: skip

    @public  # it checks the session and its CSRF token itself
    async def logout(self, request: Request) -> Response:
        found = self.signed_in(request)
        form = await self.form(request)
        if found is None or not self.csrf_ok(found[0], form.get("csrf", "")):
            return self.refuse_csrf("logout", request)
        self.signin.sessions.end(found[0])
        self.access.record(found[1], client_of(request), Action.SIGNOUT)
        log.info("%s signed out", found[1])
        response = self.finish(RedirectResponse("/login", status_code=303))
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    def _set(self, response: Response, name: str, value: str, *, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, httponly=True, samesite="lax",
                            secure=self.secure_cookie, path="/")  # fmt: skip


def client_of(request: Request) -> str:
    """The client's address (a trusted proxy's X-Forwarded-For already applied by uvicorn)."""
    return request.client.host if request.client else "?"


def _pre_session(request: Request) -> str:
    value = request.cookies.get(PRE_COOKIE, "")
    return value if MIN_PRE_CHARS <= len(value) <= MAX_PRE_CHARS else ""


def _local_path(untrusted: str | None, home: str) -> str:
    """Only a path on this site is a place to go after sign-in (no open redirect)."""
    if untrusted and untrusted.startswith("/") and not untrusted.startswith(("//", "/\\")):
        return untrusted
    return home
