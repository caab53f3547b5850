"""The HTTP API under ``/api/v1/`` (docs/api.md): JSON in and out, bearer tokens only
(``gate``). This module holds the endpoints of the identity layer; the console's data
endpoints (status, mail, stats) are in ``inner_agent.console.api``, made the same way:
``@require(...)`` on each.

- ``GET /api/v1/whoami``: every role; ``{"account", "role", "roles", "via", "token"}``;
- ``GET /api/v1/access-records``: administrators and auditors; ``{"items": [{"time",
  "account", "address", "action", "mail", "detail"}], "total": N}``, newest first, filtered
  by ``since``, ``until``, ``account``, ``action``, ``mail``, paged by ``limit`` and
  ``offset``. Reading access records is itself recorded (``records_viewed``).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from agentkit.access import (
    DEFAULT_PAGE,
    AccessLog,
    AccessQuery,
    AccessQueryRefused,
    Action,
    parse_time,
)
from inner_agent.web.gate import API_PREFIX, Principal, json_error
from inner_agent.web.pages import SECURITY_HEADERS, client_of
from inner_agent.web.roles import ALL_ROLES, CONSOLE_ROLES, Role, require
from inner_agent.web.shown import mark_invisible_in_json

__all__ = ["ACCESS_PARAMETERS", "IdentityApi", "access_query", "api_http_error", "json_body"]

# The role a script is told first: the console role, else what the account is in the directory.
_PRIMARY = (*CONSOLE_ROLES, Role.APPROVER, Role.EMPLOYEE)
# Query parameters take at most this many characters each (an address, a time, a code).
MAX_PARAMETER_CHARS = 254
ACCESS_PARAMETERS = frozenset({"since", "until", "account", "action", "mail", "limit", "offset"})


class IdentityApi:
    def __init__(self, access: AccessLog, zone: tzinfo) -> None:
        self.access, self.zone = access, zone

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/whoami", self.whoami, methods=["GET"]),
            Route("/api/v1/access-records", self.access_records, methods=["GET"]),
        ]

    @require(*ALL_ROLES)
    async def whoami(self, request: Request) -> Response:
        who: Principal = request.state.principal
        return _json({"account": who.account, "role": _primary(who.roles),
                      "roles": sorted(who.roles), "via": who.via,
                      "token": who.token_id or None})  # fmt: skip

    @require(Role.ADMIN, Role.AUDITOR)
    async def access_records(self, request: Request) -> Response:
        who: Principal = request.state.principal
        try:
            query = self._query(request)
        except AccessQueryRefused as refused:
            return json_error(400, "bad_request", str(refused))
        if not self.access.readable:
            return json_error(503, "unavailable", "this agent has no audit store to read")
        page = self.access.query(query)
        self.access.record(who.account, client_of(request), Action.RECORDS_VIEWED,
                           detail=_shown_query(request), count=len(page.items))  # fmt: skip
        return _json(page.as_json(self.zone))

    def _query(self, request: Request) -> AccessQuery:
        return access_query(dict(request.query_params), self.zone)


def access_query(untrusted: Mapping[str, str], zone: tzinfo) -> AccessQuery:
    """The access records' filters and page from query parameters (the API's and the
    console page's): ``since``, ``until``, ``account``, ``action``, ``mail``, ``limit``,
    ``offset``; AccessQueryRefused names a parameter that cannot be used."""
    params = {k: v[:MAX_PARAMETER_CHARS] for k, v in untrusted.items()}
    unknown = sorted(set(params) - ACCESS_PARAMETERS)
    if unknown:
        raise AccessQueryRefused(unknown[0], "is not a parameter of this endpoint")
    since, until = params.get("since"), params.get("until")
    return AccessQuery(
        since=parse_time(since, zone, parameter="since") if since else None,
        until=parse_time(until, zone, parameter="until", end_of_day=True) if until else None,
        account=params.get("account", "").strip().lower() or None,
        action=params.get("action") or None,
        mail=params.get("mail", "").strip() or None,
        limit=_number(params, "limit", DEFAULT_PAGE),
        offset=_number(params, "offset", 0),
    )


def _number(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None:
        return default
    # ASCII only: str.isdigit() also says yes to "²" (which int() refuses) and "٣".
    if not (text.isascii() and text.isdigit()) or len(text) > 9:
        raise AccessQueryRefused(name, f"{text[:20]!r} is not a whole number")
    return int(text)


def _primary(roles: frozenset[Role]) -> str | None:
    return next((str(r) for r in _PRIMARY if r in roles), None)


def _shown_query(request: Request) -> str:
    return "GET " + request.url.path + (f"?{request.url.query}" if request.url.query else "")


def json_body(body: object) -> Response:
    """A JSON answer with the listener's security headers (``no-store``, ``nosniff``)."""
    return _json(body)


def _json(body: object) -> Response:
    """Every string in the answer with its invisible characters marked, as a page shows it
    (``shown``): a script's report must not reorder a file name an old event kept raw."""
    response = JSONResponse(mark_invisible_in_json(body))
    response.headers.update(SECURITY_HEADERS)
    return response


async def api_http_error(request: Request, exc: Exception) -> Response:
    """404 and 405: JSON under ``/api/``, the usual short text elsewhere."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if request.url.path.startswith(API_PREFIX):
        code = {404: "not_found", 405: "method_not_allowed"}.get(status, "error")
        what = "no such endpoint" if status == 404 else "not allowed here"
        return json_error(status, code, f"{request.method} {request.url.path[:200]}: {what}")
    response = PlainTextResponse("Not Found" if status == 404 else "Method Not Allowed",
                                 status_code=status)  # fmt: skip
    response.headers.update(SECURITY_HEADERS)
    return response
