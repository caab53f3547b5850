"""The console's pages: server-rendered (Jinja2, autoescaped, no script, no resource from
anywhere but the listener), in the console's language, times in its zone.

    GET  /                          every role: the console's home — the dashboard for the
                                    console roles; approvers go to their requests
    GET  /mail                      admin, auditor, security: search, paged
    GET  /mail/{direction}/{id}     admin, auditor, security: trail, findings, withheld files
    GET  /mail/{direction}/{id}/picture.png    the masked picture (approval preview); ?page=N
    POST /mail/export               admin, auditor: the search as XLSX or CSV
    GET  /stats                     admin, auditor: per day, month, year and group; charts
    POST /stats/export              admin, auditor
    GET  /access                    admin, auditor: access records, filtered, paged
    POST /access/export             admin, auditor
    POST /access/review             admin, auditor: the monthly review workbook

Every route declares its roles; a security officer sees only the mail ``scope`` gives the
role, and a mail outside it is answered like one that does not exist (404). Downloads are
POSTs carrying the session's CSRF token, so another site cannot make a signed-in browser
produce one (an export is an access record, and a bulk-export anomaly in the review).
Each view of a mail, its findings or its picture, each export and each reading of the
access records is an access record.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from agentkit.access import (
    MAX_PAGE,
    AccessLog,
    AccessQuery,
    AccessQueryRefused,
    Action,
    records_between,
)
from agentkit.access_review import month_range, review, review_xlsx
from agentkit.mailindex import DIRECTIONS, GROUPS, OUTCOMES, PERIODS, MailQuery, StatsQuery
from agentkit.mailindex.errors import QueryRefused
from agentkit.mailindex.export import mail_table, stats_table
from agentkit.mailindex.query import MAX_OFFSET
from agentkit.mailindex.store import MAX_EXPORT_ROWS
from inner_agent.console import scope
from inner_agent.console.data import ConsoleData
from inner_agent.console.exports import FORMATS, Format, access_table, download, encode
from inner_agent.console.text import duration, size, words
from inner_agent.console.views import dashboard_view, detail_view, stats_view
from inner_agent.web.api import access_query
from inner_agent.web.gate import Principal
from inner_agent.web.pages import SignInPages, client_of
from inner_agent.web.roles import ALL_ROLES, CONSOLE_ROLES, ROLE_NAMES_KO, Role, require
from inner_agent.web.shown import with_marking

__all__ = ["ConsolePages", "console_templates", "picture_media_type"]

# Query parameters and form fields are cut to this many characters (a filter, a time).
MAX_PARAMETER_CHARS = 300
MAX_MAIL_ID_CHARS = 128
# ?page= of a mail's picture: a preview holds far fewer pages (the renderer caps images per mail).
MAX_PICTURE_PAGE = 999
EXPORTERS = (Role.ADMIN, Role.AUDITOR)
# The search's filters that may be a person's name: each is also looked up in the directory
# (names, not addresses: the index keeps none), at most this many people shown per filter.
NAME_FILTERS = ("q", "sender", "recipient")
MAX_PEOPLE_SHOWN = 10
# The search form's fields, in order, with their input types (outcome is a list).
# The first four are always shown; the rest fold away under "more filters" (a phone's screen).
MAIL_FIELDS = (("q", "text"), ("since", "date"), ("until", "date"), ("outcome", "outcome"),
               ("subject", "text"), ("sender", "text"), ("recipient", "text"), ("domain", "text"),
               ("client", "text"), ("rule", "text"), ("reason", "text"), ("department", "text"),
               ("attachment", "text"), ("attachment_count", "number"),
               ("attachment_count_min", "number"))  # fmt: skip
STATS_FIELDS = (("since", "date"), ("until", "date"), ("outcome", "outcome"), ("sender", "text"),
                ("recipient", "text"), ("domain", "text"), ("rule", "text"),
                ("department", "text"))  # fmt: skip
NAV = (("/", "nav.dashboard", frozenset(CONSOLE_ROLES)),
       ("/mail", "nav.mail", frozenset(scope.MAIL_ROLES)),
       ("/stats", "nav.stats", frozenset(EXPORTERS)),
       ("/access", "nav.access", frozenset(EXPORTERS)),
       ("/policy", "nav.policy", frozenset({Role.ADMIN, Role.SECURITY})),
       ("/directory", "nav.directory", frozenset(EXPORTERS)),
       ("/requests", "nav.requests", frozenset({Role.APPROVER})))  # fmt: skip
Endpoint = Callable[[Request], Awaitable[Response]]


def console_templates() -> Environment:
    """The console's templates; a value a template does not get is an error, not blank."""
    return with_marking(
        Environment(
            loader=FileSystemLoader(Path(__file__).parent / "templates"),
            autoescape=select_autoescape(default=True),
            undefined=StrictUndefined,
            auto_reload=False,
        )
    )


class ConsolePages:
    def __init__(self, pages: SignInPages, access: AccessLog, data: ConsoleData) -> None:
        self.pages, self.access, self.data = pages, access, data
        self.zone, self.language = data.zone, data.language
        self.words = words(self.language)
        self.templates = console_templates()

    def routes(self) -> list[Route]:
        table: list[tuple[str, Endpoint, str]] = [
            ("/", self.home, "GET"),
            ("/mail", self.mail_list, "GET"),
            ("/mail/export", self.mail_export, "POST"),
            ("/mail/{direction}/{mail_id}", self.mail_detail, "GET"),
            ("/mail/{direction}/{mail_id}/picture.png", self.picture, "GET"),
            ("/stats", self.stats, "GET"),
            ("/stats/export", self.stats_export, "POST"),
            ("/access", self.access_records, "GET"),
            ("/access/export", self.access_export, "POST"),
            ("/access/review", self.access_review, "POST"),
        ]
        return [Route(path, endpoint, methods=[method]) for path, endpoint, method in table]

    # ------------------------------------------------------------------------- drawing

    def _render(self, request: Request, template: str, *, status: int = 200, **values: Any
                ) -> Response:  # fmt: skip
        who: Principal = request.state.principal
        names = self.words
        body = self.templates.get_template(template).render(
            w=names, lang=self.language, here=request.url.path, user=who.account,
            role_names=", ".join(names[f"role.{r}"] for r in sorted(who.roles)),
            nav=[(href, key) for href, key, roles in NAV if roles & who.roles],
            csrf=self.pages.csrf(who.session_id), zone_name=str(self.zone),
            local=_local, when_ms=self._when_ms, size=size,
            duration=lambda s: duration(s, self.language), **values,
        )  # fmt: skip
        return self.pages.finish(HTMLResponse(body, status_code=status))

    def _when_ms(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def _message(self, request: Request, status: int, title: str, message: str,
                 back: str = "/") -> Response:  # fmt: skip
        return self._render(request, "message.html", status=status, title=title,
                            message=message, back=back)  # fmt: skip

    def _not_found(self, request: Request) -> Response:
        return self._message(request, 404, self.words["not_found"],
                             self.words["not_found_mail"], "/mail")  # fmt: skip

    def _unavailable(self, request: Request) -> Response:
        return self._message(request, 503, self.words["unavailable_title"],
                             self.words["unavailable"])  # fmt: skip

    def _record(self, request: Request, action: Action, **details: Any) -> None:
        who: Principal = request.state.principal
        self.access.record(who.account, client_of(request), action, **details)

    # ------------------------------------------------------------------------- home

    @require(*ALL_ROLES)
    async def home(self, request: Request) -> Response:
        """The dashboard for the console roles; approvers to their requests; anyone else is
        told who they are."""
        who: Principal = request.state.principal
        if not who.roles & frozenset(CONSOLE_ROLES):
            if Role.APPROVER in who.roles:
                return self.pages.finish(RedirectResponse("/requests", status_code=303))
            names = ", ".join(ROLE_NAMES_KO[r] for r in sorted(who.roles))
            return self.pages.page("message.html", csrf=self.pages.csrf(who.session_id),
                                   user=who.account, title="로그인했습니다", back="/",
                                   message=f"{who.account} ({names})")  # fmt: skip
        status = await run_in_threadpool(self.data.status, self.language)
        today = datetime.fromtimestamp(self.data.clock(), self.zone).date().isoformat()
        view = dashboard_view(status, who.roles, self.language, today)
        return self._render(request, "dashboard.html", view=view)

    # ------------------------------------------------------------------------- mail

    @require(*scope.MAIL_ROLES)
    async def mail_list(self, request: Request) -> Response:
        who: Principal = request.state.principal
        params = _params(request.query_params)
        values = self._mail_page_values(params, who)
        if not self.data.readable:
            return self._unavailable(request)
        try:
            query = MailQuery.from_params(params, self.zone)
        except QueryRefused as refused:
            return self._render(request, "mail_list.html", status=400, error=str(refused),
                                result=None, people=[], **values)  # fmt: skip
        result = await run_in_threadpool(self._search, scope.scoped(query, who.roles))
        people = await run_in_threadpool(self._people_named, params)
        return self._render(request, "mail_list.html", error=None, result=result,
                            first=query.offset + 1, people=people, **values,
                            **_pager("/mail", params, query, result))  # fmt: skip

    def _mail_page_values(self, params: Mapping[str, str], who: Principal) -> dict[str, Any]:
        kept = {k: v for k, v in params.items() if k not in ("offset", "after", "direction")}
        outcomes = [o for o in OUTCOMES if scope.may_see(who.roles, o)]
        return {
            "params": params, "fields": MAIL_FIELDS, "outcomes": outcomes,
            "more_open": any(name in params for name, _ in MAIL_FIELDS[4:]),
            "scope_note": Role.SECURITY in who.roles and not who.roles & frozenset(EXPORTERS),
            "tab_links": {d: "/mail?" + urlencode({**kept, "direction": d} if d else kept)
                          for d in ("", "in", "out")},
            "may_export": bool(who.roles & frozenset(EXPORTERS)),
            "export_params": _export_params(params),
        }  # fmt: skip

    def _people_named(self, params: Mapping[str, str]) -> list[dict[str, Any]]:
        """The directory's people named by a filter that is a name, not an address (the mail
        index keeps addresses only), each with the link to their mail: who "김철수" is."""
        found, direction = [], params.get("direction", "")
        for text in dict.fromkeys(params.get(name, "").strip() for name in NAME_FILTERS):
            if not text or "@" in text:
                continue
            people, total = self.data.people_named(text, MAX_PEOPLE_SHOWN)
            for person in people:
                person["link"] = "/mail?" + urlencode({"address": person["email"],
                                                       **({"direction": direction}
                                                          if direction else {})})  # fmt: skip
            if people:
                found.append({"text": text, "people": people, "total": total})
        return found

    def _search(self, query: MailQuery | None) -> dict[str, Any]:
        index = self.data.index()
        if query is None or index is None:
            return {"items": [], "total": 0}
        return index.search(query, self.zone)

    @require(*scope.MAIL_ROLES)
    async def mail_detail(self, request: Request) -> Response:
        found = await self._visible_mail(request)
        if not isinstance(found, dict):
            return found
        mail_id = found["id"]
        outbound, picture = await run_in_threadpool(self.data.mail_extras, found)
        titles = await run_in_threadpool(self.data.picture_pages, mail_id) if picture else ()
        findings = outbound["findings"] if outbound else []
        self._record(request, Action.MAIL_VIEWED, mail_id=mail_id, detail="console")
        if findings:
            self._record(request, Action.FINDINGS_VIEWED, mail_id=mail_id, detail="console",
                         count=len(findings))  # fmt: skip
        view = detail_view(found, self.language)
        return self._render(request, "mail_detail.html", mail=found, view=view,
                            outbound=outbound, findings=findings, has_picture=picture,
                            picture_pages=titles)  # fmt: skip

    async def _visible_mail(self, request: Request) -> dict[str, Any] | Response:
        """The mail of the path, if the role may see it; else the 404 a missing mail gets
        (a mail outside the role's scope is also an access record ``denied``)."""
        who: Principal = request.state.principal
        direction = request.path_params["direction"]
        mail_id = request.path_params["mail_id"]
        if direction not in DIRECTIONS or not _plausible_id(mail_id):
            return self._not_found(request)
        index = await run_in_threadpool(self.data.index)
        if index is None:
            return self._unavailable(request)
        found = await run_in_threadpool(index.detail, mail_id, self.zone, direction)
        if found is None:
            return self._not_found(request)
        if not scope.may_see(who.roles, found["outcome"]):
            where = f"GET {request.url.path[:200]}"
            self._record(request, Action.DENIED, mail_id=mail_id,
                         detail=f"{where}: outside the role's mail")  # fmt: skip
            return self._not_found(request)
        return found

    @require(*scope.PICTURE_ROLES)
    async def picture(self, request: Request) -> Response:
        found = await self._visible_mail(request)
        if not isinstance(found, dict):
            return found
        page = _page_number(request.query_params.get("page", "1"))
        png = None
        if found["direction"] == "out" and page is not None:
            png = await run_in_threadpool(self.data.picture, found["id"], page)
        if png is None:
            return self._not_found(request)
        detail = "console" if page == 1 else f"console, page {page}"
        self._record(request, Action.IMAGE_VIEWED, mail_id=found["id"], detail=detail)
        return self.pages.finish(Response(png, media_type=picture_media_type(png)))

    @require(*EXPORTERS)
    async def mail_export(self, request: Request) -> Response:
        form = await self._checked_form(request, "mail export")
        if isinstance(form, Response):
            return form
        format_ = _format(form)
        try:
            query = MailQuery.from_params(_filters(form), self.zone)
        except QueryRefused as refused:
            return self._message(request, 400, self.words["bad_request"], str(refused), "/mail")
        body, count = await run_in_threadpool(self._mail_file, query, format_)
        self._record(request, Action.EXPORTED, detail=f"mail {format_}", count=count)
        return download(body, format_, "mail")

    def _mail_file(self, query: MailQuery, format_: Format) -> tuple[bytes, int]:
        index = self.data.index()
        items = list(index.iter_mails(query, self.zone)) if index is not None else []
        table = mail_table(items, self.language, str(self.zone))
        return encode(table, format_, "mail"), len(items)

    async def _checked_form(self, request: Request, where: str) -> dict[str, str] | Response:
        """The POSTed form when it carries the session's CSRF token; else the refusal."""
        who: Principal = request.state.principal
        form = await self.pages.form(request)
        if not self.pages.csrf_ok(who.session_id, form.get("csrf", "")):
            return self.pages.refuse_csrf(where, request, csrf=self.pages.csrf(who.session_id),
                                          user=who.account)  # fmt: skip
        if not self.data.readable:
            return self._unavailable(request)
        return form

    # ------------------------------------------------------------------------- statistics

    @require(*EXPORTERS)
    async def stats(self, request: Request) -> Response:
        params = _params(request.query_params)
        values: dict[str, Any] = {"params": params, "fields": STATS_FIELDS, "periods": PERIODS,
                                  "groups": GROUPS, "outcomes": OUTCOMES,
                                  "export_params": _export_params(params)}  # fmt: skip
        if not self.data.readable:
            return self._unavailable(request)
        try:
            query = StatsQuery.from_params(params, self.zone)
        except QueryRefused as refused:
            return self._render(request, "stats.html", status=400, error=str(refused),
                                view=None, **values)  # fmt: skip
        found = await run_in_threadpool(self._statistics, query)
        view = stats_view(found["rows"], query.group, self.words)
        return self._render(request, "stats.html", error=None, view=view, **values)

    def _statistics(self, query: StatsQuery) -> dict[str, Any]:
        index = self.data.index()
        return index.statistics(query) if index is not None else {"rows": []}

    @require(*EXPORTERS)
    async def stats_export(self, request: Request) -> Response:
        form = await self._checked_form(request, "statistics export")
        if isinstance(form, Response):
            return form
        format_ = _format(form)
        try:
            query = StatsQuery.from_params(_filters(form), self.zone)
        except QueryRefused as refused:
            return self._message(request, 400, self.words["bad_request"], str(refused), "/stats")
        found = await run_in_threadpool(self._statistics, query)
        table = stats_table(found, query, self.language)
        self._record(request, Action.EXPORTED, count=len(table[1]),
                     detail=f"statistics by {query.by}, {query.group} ({format_})")  # fmt: skip
        return download(encode(table, format_, "statistics"), format_, "statistics")

    # ------------------------------------------------------------------------- access records

    @require(*EXPORTERS)
    async def access_records(self, request: Request) -> Response:
        params = _params(request.query_params)
        month = datetime.fromtimestamp(self.data.clock(), self.zone).strftime("%Y-%m")
        values: dict[str, Any] = {"params": params, "actions": [str(a) for a in Action],
                                  "export_params": _export_params(params, drop=("limit", "offset")),
                                  "month": month}  # fmt: skip
        if not self.access.readable:
            return self._unavailable(request)
        try:
            query = access_query(params, self.zone)
        except AccessQueryRefused as refused:
            return self._render(request, "access.html", status=400, error=str(refused),
                                page=None, first=1, previous_link=None, next_link=None,
                                **values)  # fmt: skip
        page = (await run_in_threadpool(self.access.query, query)).as_json(self.zone)
        self._record(
            request,
            Action.RECORDS_VIEWED,
            count=len(page["items"]),
            detail="GET /access" + (f"?{request.url.query}" if request.url.query else ""),
        )
        return self._render(request, "access.html", error=None, page=page, first=query.offset + 1,
                            **_access_pager(params, query, page["total"]), **values)  # fmt: skip

    @require(*EXPORTERS)
    async def access_export(self, request: Request) -> Response:
        form = await self._checked_form(request, "access export")
        if isinstance(form, Response):
            return form
        format_ = _format(form)
        try:
            query = access_query(_filters(form, drop=("limit", "offset")), self.zone)
        except AccessQueryRefused as refused:
            return self._message(request, 400, self.words["bad_request"], str(refused), "/access")
        records = await run_in_threadpool(self._all_records, query)
        table = access_table(records, self.language, self.zone, str(self.zone))
        self._record(request, Action.EXPORTED, detail=f"access records {format_}",
                     count=len(records))  # fmt: skip
        return download(encode(table, format_, "access"), format_, "access")

    def _all_records(self, query: AccessQuery) -> list[Any]:
        found: list[Any] = []
        while len(found) < MAX_EXPORT_ROWS:
            page = self.access.query(replace(query, limit=MAX_PAGE, offset=len(found)))
            found += page.items
            if len(page.items) < MAX_PAGE:
                break
        return found[:MAX_EXPORT_ROWS]

    @require(*EXPORTERS)
    async def access_review(self, request: Request) -> Response:
        form = await self._checked_form(request, "access review")
        if isinstance(form, Response):
            return form
        month = form.get("month", "")[:7]
        try:
            since, until = month_range(month, self.zone)
        except ValueError as refused:
            return self._message(request, 400, self.words["bad_request"], str(refused), "/access")
        body, count = await run_in_threadpool(self._review, month, since, until)
        self._record(request, Action.EXPORTED, detail=f"access review {month}", count=count)
        return download(body, "xlsx", f"access-review-{month}")

    def _review(self, month: str, since: float, until: float) -> tuple[bytes, int]:
        path = self.access.path
        records = records_between(path, since, until) if path is not None else []
        return review_xlsx(review(records, month, self.zone), self.language), len(records)


# ----------------------------------------------------------------------------- helpers


def _params(untrusted: Mapping[str, str]) -> dict[str, str]:
    """Query parameters without the empty ones (a form's blank fields), each cut short."""
    return {k[:40]: v[:MAX_PARAMETER_CHARS] for k, v in untrusted.items() if v.strip()}


def _filters(form: Mapping[str, str], drop: tuple[str, ...] = ()) -> dict[str, str]:
    """A download form's filters: its fields but the token, the format and ``drop``."""
    return {k: v for k, v in _params(form).items() if k not in ("csrf", "format", *drop)}


def _export_params(params: Mapping[str, str], drop: tuple[str, ...] = ()) -> list[tuple[str, str]]:
    return [(k, v) for k, v in params.items() if k not in ("offset", "after", "limit", *drop)]


def _format(form: Mapping[str, str]) -> Format:
    chosen = form.get("format", "xlsx")
    return "csv" if chosen == "csv" else FORMATS[0]


def _plausible_id(mail_id: str) -> bool:
    return 0 < len(mail_id) <= MAX_MAIL_ID_CHARS and mail_id.isprintable()


def _local(iso: str) -> str:
    """``2026-11-02T08:30:00+09:00`` as the page shows it: ``2026-11-02 08:30:00``."""
    return iso[:19].replace("T", " ")


def _pager(path: str, params: Mapping[str, str], query: MailQuery, result: Mapping[str, Any]
           ) -> dict[str, Any]:  # fmt: skip
    """Links to the previous and the next page: by offset, and past MAX_OFFSET by the last
    item's cursor."""
    base = {k: v for k, v in params.items() if k not in ("offset", "after")}
    shown, limit = len(result["items"]), query.limit
    previous = None
    if query.offset > 0 and not query.after:
        previous = f"{path}?" + urlencode({**base, "offset": max(0, query.offset - limit)})
    following = None
    if shown == limit and (query.offset + limit < result["total"] or query.after):
        if query.offset + limit <= MAX_OFFSET and not query.after:
            following = f"{path}?" + urlencode({**base, "offset": query.offset + limit})
        else:
            following = f"{path}?" + urlencode({**base, "after": result["items"][-1]["cursor"]})
    return {"previous_link": previous, "next_link": following}


def _access_pager(params: Mapping[str, str], query: AccessQuery, total: int
                  ) -> dict[str, Any]:  # fmt: skip
    base = {k: v for k, v in params.items() if k != "offset"}
    previous = following = None
    if query.offset > 0:
        previous = "/access?" + urlencode({**base, "offset": max(0, query.offset - query.limit)})
    if query.offset + query.limit < total:
        following = "/access?" + urlencode({**base, "offset": query.offset + query.limit})
    return {"previous_link": previous, "next_link": following}


def _page_number(text: str) -> int | None:
    """``?page=`` of a picture: 1 to MAX_PICTURE_PAGE, else None (answered as not found)."""
    if not text.isascii() or not text.isdigit() or len(text) > 4:
        return None
    number = int(text)
    return number if 1 <= number <= MAX_PICTURE_PAGE else None


def picture_media_type(picture: bytes) -> str:
    """What the stored picture is, by its signature: the preview's first picture is a PNG, or
    a JPEG when its first page was a photo (kept JPEG by the renderer). Anything else is
    served as bytes, never as an image a browser would guess at."""
    if picture.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if picture.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    return "application/octet-stream"
