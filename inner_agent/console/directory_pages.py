"""The directory in the console (administrators; auditors read): the people and departments,
one person added or edited, and an HR export (CSV or XLSX) imported after a preview.

    GET  /directory                   admin, auditor: people, departments, gaps, last reports
    GET  /directory/person?email=     admin: the form for one person (empty: a new one)
    POST /directory/person            admin: save it (errors beside their fields)
    POST /directory/import            admin: upload an export; answers the preview
    POST /directory/import/apply      admin: apply the previewed import

Every POST carries the session's CSRF token; every change is an access record
(``directory_imported``, ``directory_changed``, as ``maildiode directory import`` writes them)
and moves open approvals to the approvers the directory now names. A previewed import waits
in this process's memory for the same account (at most PENDING_IMPORTS, PENDING_TTL_S) and is
applied only if the directory has not changed since the preview (else it is previewed again).
"""

from __future__ import annotations

import dataclasses
import hmac
import re
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from agentkit.access import AccessLog, Action
from inner_agent.console.data import ConsoleData
from inner_agent.console.pages import ConsolePages
from inner_agent.outbound.directory import Directory, Report
from inner_agent.outbound.directory_check import directory_gaps
from inner_agent.outbound.directory_file import MAX_FILE_BYTES, parse_hr_file, parse_rows
from inner_agent.outbound.directory_model import ROLES, Snapshot, User
from inner_agent.outbound.directory_sync import record_report
from inner_agent.outbound.errors import DirectoryError
from inner_agent.outbound.rerouting import move_requests_in
from inner_agent.web.gate import Principal
from inner_agent.web.pages import SignInPages
from inner_agent.web.roles import Role, require

__all__ = ["DirectoryPages"]

# Previews waiting to be applied, and for how long: an administrator reads one, then applies.
PENDING_IMPORTS = 8
PENDING_TTL_S = 900.0
# The console's upload: an export of tens of thousands of people is a few MB.
MAX_UPLOAD_BYTES = min(MAX_FILE_BYTES, 16 << 20)
READERS = (Role.ADMIN, Role.AUDITOR)
# A change's result carried to the overview in its redirect (cut: it names a file and counts).
MAX_DONE_CHARS = 300
DONE_PURPOSE = "directory-done"
PERSON_FIELDS = ("email", "name", "department", "parent", "rank", "role", "manager", "groups")
ROLE_LABELS = {"": "직원 (member)", "head": "부서장 (head)", "delegate": "대결자 (delegate)",
               "security-officer": "보안담당자 (security officer)",
               "administrator": "관리자 (administrator)"}  # fmt: skip


@dataclass(frozen=True)
class _Pending:
    account: str
    name: str
    snapshot: Snapshot
    report: Report
    at: float


class DirectoryPages(ConsolePages):
    """Its own routes; drawing, CSRF and access records as the console's other pages."""

    def __init__(
        self,
        pages: SignInPages,
        access: AccessLog,
        data: ConsoleData,
        directory: Directory,
        *,
        fence: Callable[[], None] = lambda: None,
    ) -> None:
        """``fence``: raises (agentkit.leasekeeper.FenceClosed, answered 503) once the agent
        no longer holds its state's lease; checked before each change of the directory."""
        super().__init__(pages, access, data)
        self.directory, self.fence = directory, fence
        self._pending: dict[str, _Pending] = {}

    def routes(self) -> list[Route]:
        return [
            Route("/directory", self.overview, methods=["GET"]),
            Route("/directory/person", self.person_form, methods=["GET"]),
            Route("/directory/person", self.save_person, methods=["POST"]),
            Route("/directory/import", self.preview_import, methods=["POST"]),
            Route("/directory/import/apply", self.apply_import, methods=["POST"]),
        ]

    # ------------------------------------------------------------------------- reading

    @require(*READERS)
    async def overview(self, request: Request) -> Response:
        values = await run_in_threadpool(self._overview)
        return self._render(request, "directory.html", done=self._carried_done(request), **values)

    def _carried_done(self, request: Request) -> str:
        """The result a change of this session redirected here with; "" for any other text
        (a link from elsewhere must not write in the console's success box)."""
        who: Principal = request.state.principal
        done = request.query_params.get("done", "")[:MAX_DONE_CHARS]
        mark = self.pages.mark(who.session_id, DONE_PURPOSE, done)
        return done if hmac.compare_digest(mark, request.query_params.get("mark", "")) else ""

    def _overview(self) -> dict[str, Any]:
        places = self.data.places
        gaps = (directory_gaps(places.directory_db, fallback_approver=places.fallback_approver)
                if places.directory_db is not None else None)  # fmt: skip
        return {"people": self.directory.users(), "departments": self.directory.departments(),
                "reports": self.directory.reports(5), "gaps": gaps, "role_labels": ROLE_LABELS,
                "max_upload": MAX_UPLOAD_BYTES}  # fmt: skip

    @require(Role.ADMIN)
    async def person_form(self, request: Request) -> Response:
        email = request.query_params.get("email", "")[:254]
        person = await run_in_threadpool(self.directory.user, email) if email else None
        fields = _fields_of(person, self.directory) if person else dict.fromkeys(PERSON_FIELDS, "")
        disabled = bool(person and person.disabled)
        return self._person_page(request, fields, disabled, errors={}, status=200)

    def _person_page(self, request: Request, fields: dict[str, str], disabled: bool,
                     errors: dict[str, str], status: int) -> Response:  # fmt: skip
        return self._render(request, "directory_person.html", status=status, fields=fields,
                            disabled=disabled, errors=errors, roles=ROLES,
                            role_labels=ROLE_LABELS)  # fmt: skip

    # ------------------------------------------------------------------------- one person

    @require(Role.ADMIN)
    async def save_person(self, request: Request) -> Response:
        form = await self._checked_form(request, "directory person")
        if isinstance(form, Response):
            return form
        fields = {name: form.get(name, "").strip() for name in PERSON_FIELDS}
        disabled = form.get("disabled") == "on"
        try:
            person = _person_from(fields, disabled)
            put = self._fenced(self.directory.put_person)
            report = await run_in_threadpool(put, person, fields["parent"] or None, "console")
        except DirectoryError as refused:
            errors = {_column_of(str(refused)): str(refused)}
            return self._person_page(request, fields, disabled, errors=errors, status=400)
        await run_in_threadpool(self._record_change, request, "console", report)
        return self._done(request, f"saved {person.email}")

    # ------------------------------------------------------------------------- import

    @require(Role.ADMIN)
    async def preview_import(self, request: Request) -> Response:
        upload = await self._upload(request)
        if isinstance(upload, Response):
            return upload
        name, raw = upload
        try:
            snapshot = await run_in_threadpool(parse_hr_file, raw, name)
        except DirectoryError as refused:
            return self._message(request, 400, "가져올 수 없습니다 (not imported)",
                                 str(refused), "/directory")  # fmt: skip
        return await self._preview(request, name, snapshot)

    async def _preview(self, request: Request, name: str, snapshot: Snapshot) -> Response:
        who: Principal = request.state.principal
        report = await run_in_threadpool(self.directory.preview, snapshot)
        pending_id = self._keep(_Pending(who.account, name, snapshot, report, time.monotonic()))
        return self._render(request, "directory_preview.html", name=name, report=report,
                            pending_id=pending_id)  # fmt: skip

    @require(Role.ADMIN)
    async def apply_import(self, request: Request) -> Response:
        form = await self._checked_form(request, "directory import")
        if isinstance(form, Response):
            return form
        who: Principal = request.state.principal
        pending = self._pending.pop(form.get("pending", ""), None)
        if pending is None or pending.account != who.account or self._expired(pending):
            return self._message(request, 410, "미리보기가 만료되었습니다 (preview expired)",
                                 "파일을 다시 올려 주십시오.", "/directory")  # fmt: skip
        if await run_in_threadpool(self.directory.preview, pending.snapshot) != pending.report:
            return await self._preview(request, pending.name, pending.snapshot)  # changed since
        report = await run_in_threadpool(self._fenced(self.directory.replace), pending.snapshot,
                                         f"import {pending.name} (console)")  # fmt: skip
        await run_in_threadpool(self._record_change, request, pending.name, report)
        return self._done(request, f"{pending.name}: {report.summary()}")

    async def _upload(self, request: Request) -> tuple[str, bytes] | Response:
        who: Principal = request.state.principal
        async with request.form(max_files=1, max_fields=4) as form:
            csrf = form.get("csrf")
            if not isinstance(csrf, str) or not self.pages.csrf_ok(who.session_id, csrf):
                return self.pages.refuse_csrf("directory import", request,
                                              csrf=self.pages.csrf(who.session_id),
                                              user=who.account)  # fmt: skip
            upload = form.get("file")
            if not isinstance(upload, UploadFile) or not upload.filename:
                return self._message(request, 400, self.words["bad_request"],
                                     "파일을 고르십시오 (choose a file)", "/directory")  # fmt: skip
            raw = await upload.read(MAX_UPLOAD_BYTES + 1)
            name = re.sub(r"[^\w.\-가-힣 ]", "_", upload.filename)[-100:]
        if len(raw) > MAX_UPLOAD_BYTES:
            too_big = f"{name}: larger than {MAX_UPLOAD_BYTES} bytes"
            return self._message(request, 413, self.words["bad_request"], too_big, "/directory")
        return name, raw

    def _fenced(self, change: Callable[..., Report]) -> Callable[..., Report]:
        """``change`` of the directory, made only while the agent holds the lease."""

        def fenced(*args: Any) -> Report:
            self.fence()
            return change(*args)

        return fenced

    def _keep(self, pending: _Pending) -> str:
        for key in [k for k, p in self._pending.items() if self._expired(p)]:
            del self._pending[key]
        while len(self._pending) >= PENDING_IMPORTS:
            del self._pending[next(iter(self._pending))]  # the oldest
        key = secrets.token_urlsafe(16)
        self._pending[key] = pending
        return key

    @staticmethod
    def _expired(pending: _Pending) -> bool:
        return time.monotonic() - pending.at > PENDING_TTL_S

    # ------------------------------------------------------------------------- after a change

    def _record_change(self, request: Request, source: str, report: Report) -> None:
        """The access records of the change, then open approvals moved to who approves now."""

        def record(action: Action, detail: str, *, mail_id: str | None = None,
                   count: int | None = None) -> None:  # fmt: skip
            self._record(request, action, detail=detail, mail_id=mail_id, count=count)

        if report:
            record_report(record, source, report)
        places = self.data.places
        for move in move_requests_in(places.outbound_state, self.directory,
                                     places.fallback_approver, time.time()):  # fmt: skip
            record(Action.DIRECTORY_CHANGED, move.detail(), mail_id=move.mail_id)

    def _done(self, request: Request, what: str) -> Response:
        from urllib.parse import urlencode

        who: Principal = request.state.principal
        done = what[:MAX_DONE_CHARS]
        mark = self.pages.mark(who.session_id, DONE_PURPOSE, done)
        target = "/directory?" + urlencode({"done": done, "mark": mark})
        return self.pages.finish(RedirectResponse(target, status_code=303))


def _person_from(fields: dict[str, str], disabled: bool) -> User:
    """One person from the form, checked as a row of the export is."""
    header = ["email", "name", "department", "rank", "role", "manager", "groups"]
    row = [fields[name] for name in header]
    (person,) = parse_rows([header, row], "form").users or (None,)
    if person is None:
        raise DirectoryError("form: line 2: column email: empty")
    return dataclasses.replace(person, disabled=disabled)


def _fields_of(person: User, directory: Directory) -> dict[str, str]:
    department = directory.department(person.department)
    return {"email": person.email, "name": person.name, "department": person.department,
            "parent": (department.parent or "") if department else "", "rank": person.rank,
            "role": person.role, "manager": person.manager,
            "groups": "; ".join(person.groups)}  # fmt: skip


def _column_of(message: str) -> str:
    found = re.search(r"column (\w+)", message)
    return found.group(1) if found else "form"
