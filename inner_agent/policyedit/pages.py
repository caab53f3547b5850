"""The policy editor's pages (administrator, security officer; Korean; no script):

    GET  /policy                                 both directions' rules, in evaluation order
    GET  /policy/{direction}/new                 the form for a new rule (disabled until enabled)
    GET  /policy/{direction}/rule/{rule_id}      the form showing a rule
    POST /policy/{direction}/save                save the form (do=save) or try it (do=dryrun:
                                                 a pasted text or an uploaded .eml); find the
                                                 directory's names for the scope (do=find) and
                                                 put one in the scope's list (add_name)
    POST /policy/{direction}/toggle              enable or disable a rule
    POST /policy/{direction}/move                move a rule up or down
    GET  /policy/{direction}/versions            who changed what, when
    GET  /policy/{direction}/versions/{number}   a version: its diff from the one before, its text
    POST /policy/{direction}/versions/{number}/restore   roll back to it (a new version)

Every POST carries the session's CSRF token and the digest of the file the page showed (a
change made meanwhile is refused, not overwritten). Every save is a version, an audit event
(``policy_changed``: who, what, the diff) and an access record (``config_changed``).
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from jinja2 import ChoiceLoader, Environment, FileSystemLoader, StrictUndefined, select_autoescape
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from agentkit.access import AccessLog, Action
from inner_agent.console.pages import NAV
from inner_agent.console.text import words
from inner_agent.policyedit import dryrun, edits, history
from inner_agent.policyedit.errors import PolicyEditError, StaleEdit
from inner_agent.policyedit.files import (
    FoundNames,
    PersonLine,
    RulesFile,
    Saved,
    digest,
    find_nothing,
)
from inner_agent.policyedit.ruleform import (
    MATCHERS,
    MAX_CONDITIONS,
    MAX_VALUE_CHARS,
    NOTIFY,
    Direction,
    RuleForm,
    form_from_rule,
    parse_form,
    problems_by_field,
    rule_from_form,
    with_scope_name,
)
from inner_agent.policyedit.scopecheck import (
    UnknownAddress,
    confirmation_of,
    scope_addresses,
    unknown_addresses,
)
from inner_agent.policyedit.versions import text_diff
from inner_agent.web.gate import Principal
from inner_agent.web.pages import SignInPages, client_of
from inner_agent.web.roles import Role, require
from inner_agent.web.shown import with_marking
from mailsafe.extract import Found
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.inbound_rules import Membership
from mailsafe.mime import ParsedMail
from mailsafe.pii import PII_TYPES
from mailsafe.policy import RuleSet, ScopeNames, SenderInfo, unknown_scope_names

__all__ = ["EDITORS", "PolicyPages"]

EDITORS: Final = (Role.ADMIN, Role.SECURITY)
# The form: a rule's keys and up to MAX_CONDITIONS rows of four, the dry run's fields, the
# scope's search (what, which kind, the name added).
MAX_FORM_FIELDS: Final = 44 + 4 * MAX_CONDITIONS
MAX_TEXT_FIELD_BYTES: Final = 1 << 20  # a pasted sample text
# The directory's names listed beside a scope: a page, not the whole HR database; how many
# there are is said, and the search finds the rest.
MAX_OFFERED: Final = 200
# What a save redirects to the list with (``outbound-2``): anything else in ``?saved=`` is a
# link's own words, not shown in the page's "saved" box.
SAVED_PATTERN: Final = re.compile(r"(?:inbound|outbound)-[0-9]{1,9}")
# A search's names shown as buttons: more than this, and a longer text narrows it.
MAX_FOUND: Final = 50
# The kinds the search finds, by direction (the scopes naming the directory's names).
FINDABLE: Final[dict[Direction, tuple[str, ...]]] = {
    "outbound": ("departments", "groups", "ranks", "users"),
    "inbound": ("users", "departments", "groups"),
}
KIND_NAMES: Final = {"departments": "부서", "groups": "그룹", "ranks": "직급",
                     "users": "사람(주소)"}  # fmt: skip
ACTIONS: Final[dict[Direction, tuple[str, ...]]] = {
    "outbound": ("block", "approve", "monitor", "allow"),
    "inbound": ("block", "hold", "allow", "monitor", "mask"),
}
SCOPES: Final[dict[Direction, tuple[str, ...]]] = {
    "outbound": ("everyone", "departments", "users", "groups", "ranks"),
    "inbound": ("everyone", "users", "departments", "groups"),
}
FIELDS: Final = ("sender", "recipient", "subject", "body", "attachment_name",
                 "attachment_content", "any", "attachment_count", "attachment_size",
                 "unreadable")  # fmt: skip
DIRECTION_NAMES: Final = {"outbound": "보내는 메일(발송 규칙)", "inbound": "받는 메일(수신 규칙)"}
NOTIFY_NAMES: Final = {"sender": "보낸 사람", "recipient": "받는 사람", "admin": "관리자",
                       "security": "보안 담당자"}  # fmt: skip
# A pasted text is tried as a mail between these two, unless the form names others.
PASTED_SENDER, PASTED_RECIPIENT = "someone@corp.example", "partner@example.com"
Endpoint = Callable[[Request], Awaitable[Response]]
Reader = Callable[[ParsedMail], list[Found]]


def policy_templates() -> Environment:
    """The editor's templates over the console's (its layout)."""
    here = Path(__file__).parent / "templates"
    console = Path(__file__).parent.parent / "console" / "templates"
    return with_marking(Environment(
        loader=ChoiceLoader([FileSystemLoader(here), FileSystemLoader(console)]),
        autoescape=select_autoescape(default=True), undefined=StrictUndefined,
        auto_reload=False))  # fmt: skip


def isolated_reader() -> Reader:
    """Attachments read in a child process under the agent's limits, as the agent reads them."""

    def read(parsed: ParsedMail) -> list[Found]:
        reader = AttachmentReader()
        try:
            return reader.read(parsed)
        finally:
            reader.close()

    return read


class PolicyPages:
    def __init__(self, pages: SignInPages, access: AccessLog, files: Mapping[Direction, RulesFile],
                 *, zone: Any, reader: Reader | None = None,
                 membership: Callable[[Mapping[str, Any]], Membership] = lambda _: Membership(),
                 scope_names: Callable[[], ScopeNames | None] = lambda: None,
                 sender: Callable[[str, str | None], SenderInfo] = SenderInfo,
                 find_names: Callable[[str, str, int], FoundNames] = find_nothing,
                 people_at: Callable[[Sequence[str]], Mapping[str, PersonLine]] = lambda _: {},
                 ) -> None:  # fmt: skip
        """``reader``: how a tried mail's attachments are read (default: a child process);
        ``membership``: who is in each department and group (inbound scopes);
        ``scope_names``: the departments, groups and ranks the directory knows (offered, and
        an outbound scope naming another is refused); ``sender``: a tried mail's sender as
        the directory describes them (department, groups, rank); ``find_names``: the
        directory's names of a kind containing a text (listed beside the scope, searched);
        ``people_at``: the directory's people of some addresses (a scope's list checked)."""
        self.pages, self.access, self.files, self.zone = pages, access, files, zone
        self.reader = reader or isolated_reader()
        self.membership, self.scope_names, self.sender = membership, scope_names, sender
        self.find_names, self.people_at = find_names, people_at
        self.templates = policy_templates()
        self.words = words("ko")

    def routes(self) -> list[Route]:
        table: list[tuple[str, Endpoint, str]] = [
            ("/policy", self.overview, "GET"),
            ("/policy/{direction}/new", self.new_rule, "GET"),
            ("/policy/{direction}/rule/{rule_id}", self.edit_rule, "GET"),
            ("/policy/{direction}/save", self.save, "POST"),
            ("/policy/{direction}/toggle", self.toggle, "POST"),
            ("/policy/{direction}/move", self.move, "POST"),
            ("/policy/{direction}/versions", self.versions, "GET"),
            ("/policy/{direction}/versions/{number:int}", self.version, "GET"),
            ("/policy/{direction}/versions/{number:int}/restore", self.restore, "POST"),
        ]
        return [Route(path, endpoint, methods=[method]) for path, endpoint, method in table]

    # ------------------------------------------------------------------------- drawing

    def _render(self, request: Request, template: str, *, status: int = 200, **values: Any
                ) -> Response:  # fmt: skip
        who: Principal = request.state.principal
        body = self.templates.get_template(template).render(
            w=self.words, lang="ko", here="/policy", user=who.account,
            role_names=", ".join(self.words[f"role.{r}"] for r in sorted(who.roles)),
            nav=[(href, key) for href, key, roles in NAV if roles & who.roles],
            csrf=self.pages.csrf(who.session_id), zone_name=str(self.zone),
            when=self._when, direction_names=DIRECTION_NAMES, notify_names=NOTIFY_NAMES,
            **values,
        )  # fmt: skip
        return self.pages.finish(HTMLResponse(body, status_code=status))

    def _when(self, ms: int) -> str:
        return datetime.fromtimestamp(ms / 1000, self.zone).strftime("%Y-%m-%d %H:%M:%S")

    def _message(self, request: Request, status: int, message: str, back: str = "/policy"
                 ) -> Response:  # fmt: skip
        return self._render(request, "message.html", status=status, title="규칙",
                            message=message, back=back)  # fmt: skip

    def _file(self, request: Request) -> RulesFile | None:
        return self.files.get(request.path_params["direction"])

    async def _form(self, request: Request) -> FormData | Response:
        """The POSTed form when it carries the session's CSRF token; else the refusal."""
        who: Principal = request.state.principal
        form = await request.form(max_files=1, max_fields=MAX_FORM_FIELDS,
                                  max_part_size=MAX_TEXT_FIELD_BYTES)  # fmt: skip
        if not self.pages.csrf_ok(who.session_id, _text(form, "csrf")):
            return self.pages.refuse_csrf("policy editor", request,
                                          csrf=self.pages.csrf(who.session_id),
                                          user=who.account)  # fmt: skip
        return form

    async def _posted(self, request: Request) -> tuple[RulesFile, FormData] | Response:
        """The direction's file and the POSTed form (CSRF checked); else the refusal."""
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        file = self._file(request)
        if file is None:
            return self._message(request, 404, "그런 규칙 파일이 없습니다.")
        return file, form

    def _saved(self, request: Request, saved: Saved, direction: Direction) -> Response:
        who: Principal = request.state.principal
        self.access.record(who.account, client_of(request), Action.CONFIG_CHANGED,
                           detail=f"{direction} rules v{saved.version.number}: "
                           f"{saved.version.what}"[:300])  # fmt: skip
        target = f"/policy?saved={direction}-{saved.version.number}"
        return self.pages.finish(RedirectResponse(target, status_code=303))

    # ------------------------------------------------------------------------- pages

    @require(*EDITORS)
    async def overview(self, request: Request) -> Response:
        listed: list[dict[str, Any]] = []
        for direction, file in self.files.items():
            try:
                document, based_on = await run_in_threadpool(file.document)
            except (OSError, PolicyEditError) as exc:
                listed.append({"direction": direction, "error": str(exc), "rules": [],
                               "based_on": "", "file": file.name})  # fmt: skip
                continue
            listed.append({"direction": direction, "error": None, "file": file.name,
                           "rules": edits.rules_of(document), "based_on": based_on,
                           "default": document.get("default_action", "allow")})  # fmt: skip
        saved = request.query_params.get("saved", "")[:40]
        shown = saved if SAVED_PATTERN.fullmatch(saved) else ""  # a link's own words: not shown
        return self._render(request, "policy_list.html", listed=listed, saved=shown)

    @require(*EDITORS)
    async def new_rule(self, request: Request) -> Response:
        file = self._file(request)
        if file is None:
            return self._message(request, 404, "그런 규칙 파일이 없습니다.")
        try:
            _, based_on = await run_in_threadpool(file.document)
        except (OSError, PolicyEditError) as exc:
            return self._message(request, 409, str(exc))
        form = RuleForm({"scope": "everyone", "match": "all", "action": ""})
        return self._edit_page(request, Draft(file, form, None, based_on))

    @require(*EDITORS)
    async def edit_rule(self, request: Request) -> Response:
        file = self._file(request)
        if file is None:
            return self._message(request, 404, "그런 규칙 파일이 없습니다.")
        try:
            document, based_on = await run_in_threadpool(file.document)
            index = edits.index_of(document, request.path_params["rule_id"])
        except (OSError, PolicyEditError) as exc:
            return self._message(request, 404, str(exc))
        rule = edits.rules_of(document)[index]
        return self._edit_page(request, Draft(file, form_from_rule(rule), rule["id"], based_on))

    def _edit_page(self, request: Request, draft: Draft, *, status: int = 200,
                   problems: Mapping[str, str] | None = None, trial: dryrun.Trial | None = None,
                   sample: str = "", past: history.HistoryTrial | None = None,
                   found: FoundNames | None = None, unknown: Sequence[UnknownAddress] = ()
                   ) -> Response:  # fmt: skip
        file, form = draft.file, draft.form
        rows = [*form.rows, *([None] * (1 + (not form.rows)))][:MAX_CONDITIONS]
        return self._render(
            request, "policy_edit.html", status=status, direction=file.direction,
            file=file.name, form=form, rows=rows, replacing=draft.replacing or "",
            based_on=draft.based_on, problems=problems or {}, trial=trial, sample=sample, past=past,
            actions=ACTIONS[file.direction], scopes=SCOPES[file.direction], fields=FIELDS,
            matchers=MATCHERS, notify=NOTIFY, pii_types=PII_TYPES, known=self._known(file),
            found=found, findable=FINDABLE[file.direction], kind_names=KIND_NAMES,
            unknown=unknown, unknown_key=confirmation_of(unknown),
        )  # fmt: skip

    def _known(self, file: RulesFile) -> dict[str, FoundNames]:
        """The names the form lists for an outbound scope, by scope: the first MAX_OFFERED
        of each, and how many there are (the search finds the rest); none without any."""
        if file.direction != "outbound":
            return {}
        known = {key: self.find_names(key, "", MAX_OFFERED)
                 for key in ("departments", "groups", "ranks")}  # fmt: skip
        return known if any(found.total for found in known.values()) else {}

    async def _find(self, request: Request, file: RulesFile, form: FormData) -> Response:
        """The form again, with the directory's names the search found (do=find) or with the
        name chosen from them in the scope's list (add_name); nothing is read or saved."""
        kind, text = _text(form, "find_kind"), _text(form, "find_text")[:MAX_VALUE_CHARS]
        rule_form, found = _rule_form(form), None
        if kind in FINDABLE[file.direction]:  # another kind is no scope of this direction
            if added := _text(form, "add_name"):
                rule_form = with_scope_name(rule_form, kind, added)
            found = await run_in_threadpool(self.find_names, kind, text, MAX_FOUND)
        draft = Draft(file, rule_form, _text(form, "replacing") or None, _text(form, "based_on"))
        return self._edit_page(request, draft, found=found, sample=_text(form, "sample"))

    @require(*EDITORS)
    async def save(self, request: Request) -> Response:
        """Save the form (do=save) or try it (do=dryrun); problems beside their fields."""
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        file, form = posted
        if _text(form, "do") == "find" or _text(form, "add_name"):
            return await self._find(request, file, form)
        return await self._save_or_try(request, file, form)

    async def _save_or_try(self, request: Request, file: RulesFile, form: FormData) -> Response:
        try:
            draft = await run_in_threadpool(_draft, file, form)
        except (OSError, PolicyEditError) as exc:
            return self._message(request, 409, str(exc))
        problems = problems_by_field(edits.validate(file.direction, draft.changed), draft.index)
        problems = problems or self._unknown_names(draft)
        if problems:
            return self._edit_page(request, draft, status=400, problems=problems,
                                   sample=_text(form, "sample"))  # fmt: skip
        if _text(form, "do") in ("dryrun", "history"):
            return await self._try(request, draft, form)
        unknown = await run_in_threadpool(self._unknown_people, draft)
        if unknown and _text(form, "confirm_unknown") != confirmation_of(unknown):
            return self._edit_page(request, draft, unknown=unknown, sample=_text(form, "sample"))
        who: Principal = request.state.principal
        what = f"규칙 {'수정' if draft.replacing else '추가'}: {draft.rule['id']}"
        if unknown:  # the confirmation stays in the file's history and the audit trail
            what += f" (디렉터리에 없는 주소 확인: {', '.join(u.address for u in unknown)})"
        try:
            saved = await run_in_threadpool(file.save, draft.changed, who.account, what,
                                            draft.based_on)  # fmt: skip
        except (OSError, PolicyEditError) as exc:
            return self._edit_page(request, draft, status=409, problems={"rule": str(exc)})
        return self._saved(request, saved, file.direction)

    def _unknown_people(self, draft: Draft) -> tuple[UnknownAddress, ...]:
        """The scope's addresses that are not enabled people of the directory (an empty
        directory: not checked, as the names are not)."""
        addresses = scope_addresses(draft.rule)
        if not addresses or self.scope_names() is None:
            return ()
        return unknown_addresses(addresses, self.people_at(addresses))

    def _unknown_names(self, draft: Draft) -> dict[str, str]:
        """An outbound scope naming a department, group or rank the directory lacks, refused
        beside the list as ``maildiode check`` refuses it (an empty directory: not checked)."""
        names = self.scope_names() if draft.file.direction == "outbound" else None
        if names is None:
            return {}
        unknown = unknown_scope_names(RuleSet.model_validate({"rule": [draft.rule]}), names)
        return {"scope_list": "; ".join(unknown)} if unknown else {}

    async def _dry_run(self, request: Request, draft: Draft, form: FormData) -> Response:
        sample = _text(form, "sample")
        upload = form.get("eml")
        raw = b""
        if isinstance(upload, UploadFile) and upload.filename:
            raw = await upload.read(dryrun.MAX_DRY_RUN_BYTES + 1)
        problem = _sample_problem(raw, sample)
        if problem is not None:
            return self._edit_page(request, draft, status=400, sample=sample, problems=problem)
        sender, recipient = _text(form, "try_sender").strip(), _text(form, "try_recipient").strip()
        mail = raw or dryrun.pasted_mail(sample, sender or PASTED_SENDER,
                                         recipient or PASTED_RECIPIENT)  # fmt: skip
        envelope = (sender or ("" if raw else PASTED_SENDER),
                    [recipient] if recipient else ([] if raw else [PASTED_RECIPIENT]),
                    _text(form, "try_department").strip() or None)  # fmt: skip
        trial = await run_in_threadpool(functools.partial(
            dryrun.try_rule, draft.file.direction, draft.document, draft.rule,
            replacing=draft.replacing, raw=mail, envelope=envelope, read=self.reader,
            membership=self.membership(draft.document), sender=self.sender))  # fmt: skip
        return self._edit_page(request, draft, trial=trial, sample=sample)

    async def _try(self, request: Request, draft: Draft, form: FormData) -> Response:
        if _text(form, "do") == "history":
            return await self._on_history(request, draft, _text(form, "days"))
        return await self._dry_run(request, draft, form)

    async def _on_history(self, request: Request, draft: Draft, days_text: str) -> Response:
        """The draft tried on the outbound mail of the last days, as the audit log kept it."""
        days = min(max(int(days_text), 1), history.MAX_DAYS) if days_text.isdigit() else 7
        path = self.access.path
        if draft.file.direction != "outbound" or path is None:
            found = history.HistoryTrial(days, 0, 0, "", refused="지난 메일로 시험하는 것은 보내는 "
                                         "메일의 규칙만 됩니다.")  # fmt: skip
        else:
            since = time.time() - days * 86_400
            mails = await run_in_threadpool(history.read_outbound, path, since)
            found = history.try_on_history(draft.rule, mails, days, sender=self.sender)
        return self._edit_page(request, draft, past=found)

    @require(*EDITORS)
    async def toggle(self, request: Request) -> Response:
        return await self._change(request, lambda d, rid, f: (
            edits.with_enabled(d, rid, _text(f, "enabled") == "on"),
            f"규칙 {'켜기' if _text(f, 'enabled') == 'on' else '끄기'}: {rid}"))  # fmt: skip

    @require(*EDITORS)
    async def move(self, request: Request) -> Response:
        return await self._change(request, lambda d, rid, f: (
            edits.moved(d, rid, -1 if _text(f, "step") == "up" else 1),
            f"규칙 순서 {'위로' if _text(f, 'step') == 'up' else '아래로'}: {rid}"))  # fmt: skip

    async def _change(self, request: Request, edit: Callable[[edits.Document, str, FormData],
                      tuple[edits.Document, str]]) -> Response:  # fmt: skip
        posted = await self._posted(request)
        if isinstance(posted, Response):
            return posted
        file, form = posted
        who: Principal = request.state.principal
        try:
            document, _ = await run_in_threadpool(file.document)
            changed, what = edit(document, _text(form, "rule_id"), form)
            saved = await run_in_threadpool(file.save, changed, who.account, what,
                                            _text(form, "based_on"))  # fmt: skip
        except (OSError, PolicyEditError) as exc:
            return self._message(request, 409, str(exc))
        return self._saved(request, saved, file.direction)

    # ------------------------------------------------------------------------- versions

    @require(*EDITORS)
    async def versions(self, request: Request) -> Response:
        file = self._file(request)
        if file is None:
            return self._message(request, 404, "그런 규칙 파일이 없습니다.")
        found = await run_in_threadpool(file.versions.newest)
        return self._render(request, "policy_versions.html", direction=file.direction,
                            file=file.name, versions=found)  # fmt: skip

    @require(*EDITORS)
    async def version(self, request: Request) -> Response:
        file = self._file(request)
        number = int(request.path_params["number"])
        if file is None or number not in await run_in_threadpool(file.versions.numbers):
            return self._message(request, 404, "그런 버전이 없습니다.")
        shown = await run_in_threadpool(file.versions.get, number)
        before = (await run_in_threadpool(file.versions.get, number - 1)).text if number > 1 else ""
        try:
            current = await run_in_threadpool(file.text)
        except (OSError, PolicyEditError):
            current = ""
        diff = text_diff(before, shown.text, f"v{number - 1}", f"v{number}")
        return self._render(request, "policy_version.html", direction=file.direction,
                            file=file.name, version=shown, diff=diff,
                            based_on=digest(current), is_current=current == shown.text)  # fmt: skip

    @require(*EDITORS)
    async def restore(self, request: Request) -> Response:
        file = self._file(request)
        form = await self._form(request)
        if isinstance(form, Response):
            return form
        number = int(request.path_params["number"])
        if file is None or number not in await run_in_threadpool(file.versions.numbers):
            return self._message(request, 404, "그런 버전이 없습니다.")
        who: Principal = request.state.principal
        try:
            shown = await run_in_threadpool(file.versions.get, number)
            saved = await run_in_threadpool(file.restore, shown.text, who.account,
                                            f"버전 {number}(으)로 되돌림",
                                            _text(form, "based_on"))  # fmt: skip
        except (OSError, PolicyEditError) as exc:
            return self._message(request, 409, str(exc))
        return self._saved(request, saved, file.direction)


@dataclass(frozen=True)
class Draft:
    """A rule being edited: the form, the rule it replaces (None: a new one), the digest of
    the file the page showed; once posted, the file's document, the rule and the file with it."""

    file: RulesFile
    form: RuleForm
    replacing: str | None
    based_on: str
    document: edits.Document = field(default_factory=dict)
    rule: dict[str, Any] = field(default_factory=dict)
    changed: edits.Document = field(default_factory=dict)

    @property
    def index(self) -> int:
        """The rule's place in ``changed`` (its problems are found there)."""
        return next(i for i, r in enumerate(edits.rules_of(self.changed)) if r is self.rule)


def _draft(file: RulesFile, form: FormData) -> Draft:
    """The posted form as a draft; StaleEdit when the file changed since the page was shown."""
    rule_form = _rule_form(form)
    replacing, based_on = _text(form, "replacing") or None, _text(form, "based_on")
    document, now = file.document()
    if now != based_on:
        raise StaleEdit(f"{file.name}이(가) 이 페이지를 연 뒤 바뀌었습니다. "
                        "다시 열어 고쳐 주십시오.")  # fmt: skip
    rule = rule_from_form(rule_form, file.direction)
    changed = edits.with_rule(document, rule, replacing)
    return Draft(file, rule_form, replacing, based_on, document, rule, changed)


def _rule_form(form: FormData) -> RuleForm:
    return parse_form(
        lambda name: _text(form, name),
        lambda name: [v for v in form.getlist(name) if isinstance(v, str)],
    )


def _sample_problem(raw: bytes, sample: str) -> dict[str, str] | None:
    if len(raw) > dryrun.MAX_DRY_RUN_BYTES:
        return {"eml": f"메일 파일이 너무 큽니다 ({dryrun.MAX_DRY_RUN_BYTES >> 20} MiB까지)."}
    if not raw and not sample.strip():
        return {"sample": "시험할 글을 넣거나 메일 파일(.eml)을 올려 주십시오."}
    return None


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""
