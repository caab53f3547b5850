"""The console's data endpoints of the HTTP API (docs/api.md), beside the identity layer's
(``inner_agent.web.api``): bearer tokens only, JSON, the shapes of the mail index.

- ``GET /api/v1/status`` (admin, auditor): the dashboard — mail counts today and over seven
  days, approvals waiting, both hosts, queues and link ends, the outer agent's report with
  its age and state, and the alarms (English, with stable codes);
- ``GET /api/v1/mail`` (admin, auditor, security): ``{"items": [...], "total": N}``, every
  filter of the mail index (``direction``, ``q``, ``since``, ``until``, ``outcome`` ...), a
  security officer's answer narrowed to the mail the role reads;
- ``GET /api/v1/mail/{id}`` (same roles): the mail, its ``trail``, its masked ``findings``
  and ``withheld`` attachments; an access record (``mail_viewed``, and ``findings_viewed``
  when there are findings); 404 for a mail that does not exist or the role may not see;
- ``GET /api/v1/stats`` (admin, auditor): ``{"rows": [{"period", "group", "count"}]}``.

``tz`` (an IANA zone name) gives the answer's times in another zone than the console's.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentkit.access import AccessLog, Action
from agentkit.mailindex import DIRECTIONS, MailQuery, StatsQuery, zone_named
from agentkit.mailindex.errors import AmbiguousMail, QueryRefused
from inner_agent.console import scope
from inner_agent.console.data import ConsoleData
from inner_agent.console.views import withheld_of
from inner_agent.web.api import json_body
from inner_agent.web.gate import Principal, json_error
from inner_agent.web.pages import client_of
from inner_agent.web.roles import Role, require

__all__ = ["ConsoleApi"]

API_OWN_PARAMETERS = frozenset({"tz"})
MAX_PARAMETER_CHARS = 300
MAX_MAIL_ID_CHARS = 128
READERS = (Role.ADMIN, Role.AUDITOR)


class ConsoleApi:
    def __init__(self, data: ConsoleData, access: AccessLog) -> None:
        self.data, self.access = data, access

    def routes(self) -> list[Route]:
        return [
            Route("/api/v1/status", self.status, methods=["GET"]),
            Route("/api/v1/mail", self.mail_list, methods=["GET"]),
            Route("/api/v1/mail/{mail_id}", self.mail_detail, methods=["GET"]),
            Route("/api/v1/stats", self.stats, methods=["GET"]),
        ]

    @require(*READERS)
    async def status(self, request: Request) -> Response:
        # The alarms in English: the API speaks to scripts and their logs (D39).
        return json_body(await run_in_threadpool(self.data.status, "en"))

    @require(*scope.MAIL_ROLES)
    async def mail_list(self, request: Request) -> Response:
        who: Principal = request.state.principal
        params = _params(request)
        try:
            zone = _zone(params, self.data.zone)
            query = MailQuery.from_params(params, zone, also_allowed=API_OWN_PARAMETERS)
        except QueryRefused as refused:
            return json_error(400, "bad_request", str(refused))
        index = await run_in_threadpool(self.data.index)
        if index is None:
            return _unavailable()
        narrowed = scope.scoped(query, who.roles)
        if narrowed is None:
            return json_body({"items": [], "total": 0})
        return json_body(await run_in_threadpool(index.search, narrowed, zone))

    @require(*scope.MAIL_ROLES)
    async def mail_detail(self, request: Request) -> Response:
        found = await self._visible_mail(request)
        if isinstance(found, Response):
            return found
        who: Principal = request.state.principal
        mail_id, client = found["id"], client_of(request)
        outbound, _picture = await run_in_threadpool(self.data.mail_extras, found)
        found["findings"] = outbound["findings"] if outbound else []
        found["withheld"] = withheld_of(found)
        self.access.record(who.account, client, Action.MAIL_VIEWED, mail_id=mail_id, detail="api")
        if found["findings"]:
            self.access.record(who.account, client, Action.FINDINGS_VIEWED, mail_id=mail_id,
                               detail="api", count=len(found["findings"]))  # fmt: skip
        return json_body(found)

    async def _visible_mail(self, request: Request) -> dict[str, Any] | Response:
        who: Principal = request.state.principal
        params = _params(request)
        mail_id = request.path_params["mail_id"]
        unknown = sorted(set(params) - {"direction", *API_OWN_PARAMETERS})
        direction = params.get("direction") or None
        if unknown or direction not in (None, *DIRECTIONS):
            what = f"{unknown[0]}: not a parameter" if unknown else "direction: is in or out"
            return json_error(400, "bad_request", what)
        try:
            zone = _zone(params, self.data.zone)
        except QueryRefused as refused:
            return json_error(400, "bad_request", str(refused))
        index = await run_in_threadpool(self.data.index)
        if index is None:
            return _unavailable()
        try:
            found = await run_in_threadpool(_detail, index, mail_id, zone, direction)
        except AmbiguousMail:
            return json_error(409, "ambiguous", f"mail {mail_id[:MAX_MAIL_ID_CHARS]} exists in "
                              "both directions: add direction=in or direction=out")  # fmt: skip
        if found is not None and not scope.may_see(who.roles, found["outcome"]):
            self.access.record(who.account, client_of(request), Action.DENIED, mail_id=mail_id,
                               detail="GET /api/v1/mail/{id}: outside the role's mail")  # fmt: skip
            found = None
        if found is None:
            return json_error(404, "not_found", "no such mail, or not one this account may see")
        return found

    @require(*READERS)
    async def stats(self, request: Request) -> Response:
        params = _params(request)
        try:
            query = StatsQuery.from_params(params, _zone(params, self.data.zone),
                                           also_allowed=API_OWN_PARAMETERS)  # fmt: skip
        except QueryRefused as refused:
            return json_error(400, "bad_request", str(refused))
        index = await run_in_threadpool(self.data.index)
        if index is None:
            return _unavailable()
        return json_body(await run_in_threadpool(index.statistics, query))


def _detail(index: Any, mail_id: str, zone: tzinfo, direction: Any) -> dict[str, Any] | None:
    if not 0 < len(mail_id) <= MAX_MAIL_ID_CHARS or not mail_id.isprintable():
        return None
    found: dict[str, Any] | None = index.detail(mail_id, zone, direction)
    return found


def _params(request: Request) -> dict[str, str]:
    return {k: v[:MAX_PARAMETER_CHARS] for k, v in request.query_params.items()}


def _zone(params: Mapping[str, str], default: tzinfo) -> tzinfo:
    return zone_named(params["tz"]) if params.get("tz") else default


def _unavailable() -> Response:
    return json_error(503, "unavailable", "this agent has no audit store to read")
