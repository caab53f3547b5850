"""The gate every guarded route passes (``roles.require``): who is asking, whether their roles
allow the route, and the answer when they do not.

Who is asking depends on where, and only one way is accepted in each place:

- **pages** (every path outside ``/api/``): the session cookie of a sign-in. Nobody signed
  in: 303 to the sign-in page and back; a role that may not: a 403 page. POSTs carry the
  session's CSRF token (each page checks it, as before);
- **the API** (``/api/...``): ``Authorization: Bearer TOKEN`` (``api_tokens``), never a
  cookie, so a page of another site cannot make a browser call the API with its owner's
  rights, and the API needs no CSRF token. No token: 401 ``unauthenticated``; a token that is
  malformed, unknown, revoked or whose account may not sign in: 401 ``invalid_token`` (one
  answer for all, nothing to probe), counted against the client in a bucket like the
  sign-in's (``per_client_burst``, then ``per_client_per_minute``); past it, 429 before the
  token is looked at. A role that may not: 403 ``forbidden``. Errors are JSON: ``{"error":
  code, "message": text}``; 401s carry ``WWW-Authenticate: Bearer``.

A refused token and a refused role are access records (``denied``, ``api_token_refused``).
``guarded_routes`` builds the listener's routes: a route that declares no role is closed to
everyone (deny by default).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from agentkit.access import Action
from inner_agent.web.api_tokens import TokenRow, token_id_of
from inner_agent.web.pages import SECURITY_HEADERS, AccessRecorder, SignInPages, client_of
from inner_agent.web.roles import ROLE_NAMES_KO, Role, declared_roles, is_public
from inner_agent.web.shown import mark_invisible_in_json
from inner_agent.web.throttle import ClientBuckets

__all__ = ["API_PREFIX", "Gate", "Principal", "guarded_routes", "is_api", "json_error"]

log = logging.getLogger(__name__)

API_PREFIX = "/api/"
# What a refused path may add to a record or a log line: enough to tell pages apart.
MAX_PATH_CHARS = 200
BEARER_CHALLENGE = 'Bearer realm="maildiode"'
# Control characters and line separators: escaped in a path before it is logged or recorded.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class Principal:
    """Who a request comes from, and what they may do (kept in ``request.state.principal``)."""

    account: str
    roles: frozenset[Role]
    via: Literal["session", "token"]
    session_id: str = ""  # for the CSRF token of the pages' forms
    token_id: str = ""


class Roles(Protocol):
    def roles(self, email: str) -> frozenset[Role]: ...


class Tokens(Protocol):
    def verify(self, untrusted: str) -> TokenRow | None: ...


def is_api(request: Request) -> bool:
    return request.url.path.startswith(API_PREFIX)


def json_error(status: int, code: str, message: str, headers: dict[str, str] | None = None
               ) -> Response:  # fmt: skip
    # The message may quote the request (its path, a parameter): marked as every answer is.
    shown = mark_invisible_in_json({"error": code, "message": message})
    response = JSONResponse(shown, status_code=status)
    response.headers.update({**SECURITY_HEADERS, **(headers or {})})
    return response


class Gate:
    def __init__(
        self,
        pages: SignInPages,
        accounts: Roles,
        tokens: Tokens,
        access: AccessRecorder,
        *,
        failed_tokens: ClientBuckets,
        clock: Callable[[], float],
    ) -> None:
        self.pages, self.accounts, self.tokens, self.access = pages, accounts, tokens, access
        self.failed_tokens, self.clock = failed_tokens, clock

    async def admit(
        self, request: Request, allowed: frozenset[Role], call: Callable[[], Awaitable[Any]]
    ) -> Any:
        """The endpoint's answer when the request's account holds one of ``allowed``, else
        the refusal."""
        found = self._bearer(request) if is_api(request) else self._session(request)
        if isinstance(found, Response):
            return found
        if not found.roles & allowed:
            return self._forbidden(request, found, allowed)
        request.state.principal = found
        return await call()

    # ----------------------------------------------------------------------------- pages

    def _session(self, request: Request) -> Principal | Response:
        found = self.pages.signed_in(request)
        if found is None:
            return self.pages.to_sign_in(request)
        session_id, user, roles = found
        return Principal(user, roles, "session", session_id=session_id)

    # ----------------------------------------------------------------------------- the API

    def _bearer(self, request: Request) -> Principal | Response:
        header = request.headers.get("authorization", "")
        if not header:
            return json_error(401, "unauthenticated", "send Authorization: Bearer TOKEN (made "
                              "with `maildiode token create`); the API takes no cookies",
                              {"WWW-Authenticate": BEARER_CHALLENGE})  # fmt: skip
        client, now = client_of(request), self.clock()
        key = f"api:{client}"
        if wait := self.failed_tokens.waiting(key, now):
            message = f"too many refused tokens from {client}; try again in {wait} s"
            return json_error(429, "too_many_requests", message, {"Retry-After": str(wait)})
        scheme, _, value = header.partition(" ")
        row = self.tokens.verify(value.strip()) if scheme.lower() == "bearer" else None
        roles = self.accounts.roles(row.account) if row is not None else frozenset()
        if row is None or not roles:
            self.failed_tokens.take(key, now)
            return self._refused_token(client, value.strip(), row)
        return Principal(row.account, roles, "token", token_id=row.token_id)

    def _refused_token(self, client: str, untrusted: str, row: TokenRow | None) -> Response:
        token_id = token_id_of(untrusted)
        what = (f"token {token_id}" if token_id else "not a token of ours") if row is None else (
            f"token {row.token_id} of an account that may not sign in")  # fmt: skip
        log.warning("API request refused from %s: %s", client, what)
        self.access.record(row.account if row else "-", client, Action.API_TOKEN_REFUSED,
                           detail=what)  # fmt: skip
        challenge = f'{BEARER_CHALLENGE}, error="invalid_token"'
        return json_error(401, "invalid_token", "the token is not valid (malformed, unknown, "
                          "revoked, or its account is disabled)",
                          {"WWW-Authenticate": challenge})  # fmt: skip

    # ----------------------------------------------------------------------------- refusals

    def _forbidden(self, request: Request, who: Principal, allowed: frozenset[Role]) -> Response:
        where = f"{request.method} {_printable(request.url.path[:MAX_PATH_CHARS])}"
        log.warning("%s (%s) may not use %s", who.account, _names(who.roles), where)
        self.access.record(who.account, client_of(request), Action.DENIED, detail=where)
        if is_api(request):
            return json_error(403, "forbidden", f"{who.account} ({_names(who.roles)}) may not "
                              f"use {where}; it needs {_names(allowed)}")  # fmt: skip
        wanted = ", ".join(ROLE_NAMES_KO[r] for r in sorted(allowed))
        return self.pages.page("message.html", status=403, csrf=self.pages.csrf(who.session_id),
                               user=who.account, title="권한이 없습니다", back="/",
                               message=f"이 화면은 {wanted} 역할만 볼 수 있습니다.")  # fmt: skip


def _printable(untrusted: str) -> str:
    """A path as a log line and a record may hold it: control characters escaped (an ESC
    sequence must not drive the terminal of whoever reads the log)."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", untrusted)


def _names(roles: Iterable[Role]) -> str:
    return " or ".join(sorted(roles)) or "no role"


# ----------------------------------------------------------------------- deny by default


def guarded_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The routes as they are where they declare roles (``require``) or are ``public``; any
    other is closed to everyone, and said so in the log."""
    checked: list[BaseRoute] = []
    for route in routes:
        checked.append(route if _declares(route) else _closed(route))
    return checked


def _declares(route: BaseRoute) -> bool:
    if isinstance(route, Route):
        return declared_roles(route.endpoint) is not None or is_public(route.endpoint)
    return isinstance(route, Mount) and is_public(route.app)


def _closed(route: BaseRoute) -> BaseRoute:
    path = getattr(route, "path", "?")
    log.error("route %s declares no role (roles.require) and is closed to everyone", path)
    if isinstance(route, Mount):
        return Mount(path, app=_refuse_mounted)
    return Route(path, _refuse_everyone, methods=getattr(route, "methods", None))


async def _refuse_everyone(request: Request) -> Response:
    """The answer of a route that declares no role."""
    if is_api(request):
        return json_error(403, "forbidden", "this endpoint declares no role: closed to everyone")
    response = PlainTextResponse("forbidden", status_code=403)
    response.headers.update(SECURITY_HEADERS)
    return response


async def _refuse_mounted(scope: Scope, receive: Receive, send: Send) -> None:
    await (await _refuse_everyone(Request(scope)))(scope, receive, send)
