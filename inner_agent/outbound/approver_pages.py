"""The approvers' pages besides the one-request flow (web.py): deciding several requests at
once with one reason, and the dated absence delegation ("부재 설정").

Bulk: the list page's form posts the chosen request ids, each with the token the list issued
for it (``token-<request id>``). Rejecting needs a reason; approving first shows the
confirmation page (the same as for one request) and is carried out only when that page's
form comes back with ``confirmed``. Each request is decided through ``ApprovalDesk.decide``
as if alone: its token checked and spent, a compare-and-set on its state; one that fails
(decided meanwhile, a stale token) is reported by name and does not stop the others.

Absence: an approver names a delegate and the first and last day away (in the console's
time zone); they can end it early. Stored by ``absences.Absences``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import date

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from inner_agent.outbound.absences import window
from inner_agent.outbound.approval import Event
from inner_agent.outbound.errors import AbsenceRefused, InvalidTransition, TokenRefused
from inner_agent.outbound.page_kit import PageKit
from inner_agent.web.pages import MAX_FORM_FIELD_CHARS
from inner_agent.web.roles import Role, require

__all__ = ["MAX_BULK", "ApproverPages"]

# One bulk decision covers at most this many requests: a screenful an approver has looked at.
MAX_BULK = 50
# A rejection reason is a sentence or two for the sender (as web.MAX_REASON_CHARS).
MAX_REASON_CHARS = 1000
# The bulk form's fields besides the picks and their tokens (csrf, action, reason, confirmed).
_OTHER_FIELDS = 8


_STALE = "링크가 만료되었거나 이미 쓰였습니다"


@dataclass(frozen=True)
class _Outcome:
    request_id: str
    subject: str
    problem: str  # "" when decided


class ApproverPages(PageKit):
    def routes(self) -> list[Route]:
        return [
            Route("/absence", self.absence, methods=["GET"]),
            Route("/absence", self.absence_add, methods=["POST"]),
            Route("/absence/{absence_id}/cancel", self.absence_cancel, methods=["POST"]),
        ]

    # --------------------------------------------------------------------------------- bulk

    @require(Role.APPROVER, Role.ADMIN)
    async def bulk(self, request: Request) -> Response:
        sid, user = self._who(request)
        form = await request.form(max_files=0, max_fields=2 * MAX_BULK + _OTHER_FIELDS)
        fields = {k: str(v)[:MAX_FORM_FIELD_CHARS] for k, v in form.items() if isinstance(v, str)}
        refused = self._csrf_refused("bulk", request, sid, user, fields.get("csrf", ""))
        if refused is not None:
            return refused
        picks = [str(p) for p in form.getlist("pick")][:MAX_BULK]
        action, reason = fields.get("action", ""), fields.get("reason", "").strip()
        if not picks or action not in ("approve", "reject"):
            return self._message(
                sid,
                user,
                400,
                "선택한 요청 없음",
                "요청을 하나 이상 고르고 승인 또는 반려를 누르십시오.",
            )
        if action == "reject" and not reason:
            return self._message(sid, user, 400, "반려 사유 필요",
                                 "여러 건을 반려할 때도 반려 사유를 적어 주십시오.")  # fmt: skip
        tokens = {p: fields.get(f"token-{p}", "") for p in picks}
        if action == "approve" and fields.get("confirmed") != "yes":
            return self._confirm(sid, user, tokens, admin=self._admin(request))
        admin, reason = self._admin(request), reason[:MAX_REASON_CHARS]
        outcomes = await run_in_threadpool(self._decide_all, user, tokens, action, reason, admin)
        failed = [o for o in outcomes if o.problem]
        if not failed:
            done = "bulk-approved" if action == "approve" else "bulk-rejected"
            return self._finish(RedirectResponse(f"/requests?done={done}&n={len(outcomes)}",
                                                 status_code=303))  # fmt: skip
        return self._page("bulk_result.html", sid, status=409, user=user, outcomes=outcomes,
                          action=action)  # fmt: skip

    def _confirm(self, sid: str, user: str, tokens: dict[str, str], *, admin: bool) -> Response:
        rows = []
        for request_id, token in tokens.items():
            view = self.desk.view(request_id, user, admin=admin)
            if view is not None and view.token is not None:
                rows.append({"request": view.request, "mail": view.mail, "token": token,
                             "standing": view.standing})  # fmt: skip
        if not rows:
            return self._message(sid, user, 409, "이미 결정됨",
                                 "고른 요청이 모두 이미 결정되었습니다.")  # fmt: skip
        return self._page("confirm.html", sid, user=user, rows=rows, action="/requests/bulk",
                          bulk=True, standing=None)  # fmt: skip

    def _decide_all(self, user: str, tokens: dict[str, str], action: str, reason: str,
                    admin: bool) -> list[_Outcome]:  # fmt: skip
        verdict = Event.APPROVE if action == "approve" else Event.REJECT
        decide = functools.partial(self.desk.decide, admin=admin)
        outcomes = []
        for request_id, token in tokens.items():
            view = self.desk.view(request_id, user, admin=admin)
            subject = view.mail.subject if view is not None else request_id
            try:
                decide(request_id, user, verdict, token, reason)
            except TokenRefused:
                outcomes.append(_Outcome(request_id, subject, _STALE))
                continue
            except InvalidTransition:
                outcomes.append(_Outcome(request_id, subject, "이미 결정되었습니다"))
                continue
            outcomes.append(_Outcome(request_id, subject, ""))
        return outcomes

    # ------------------------------------------------------------------------------ absence

    @require(Role.APPROVER)
    async def absence(self, request: Request) -> Response:
        sid, user = self._who(request)
        return self._absence_page(sid, user, request.query_params.get("done"), None)

    @require(Role.APPROVER)
    async def absence_add(self, request: Request) -> Response:
        sid, user = self._who(request)
        form = await self.signin.form(request)
        refused = self._csrf_refused("absence", request, sid, user, form.get("csrf", ""))
        if refused is not None:
            return refused
        try:
            first, last = _day(form, "first"), _day(form, "last")
            self.desk.fence()  # who decides for whom is shared state: the lease's holder's
            self.desk.absences.add(user, form.get("delegate", ""), window(first, last, self.zone),
                                   user)  # fmt: skip
        except AbsenceRefused as wrong:
            return self._absence_page(sid, user, None, wrong, status=400)
        return self._finish(RedirectResponse("/absence?done=added", status_code=303))

    @require(Role.APPROVER)
    async def absence_cancel(self, request: Request) -> Response:
        sid, user = self._who(request)
        form = await self.signin.form(request)
        refused = self._csrf_refused("absence", request, sid, user, form.get("csrf", ""))
        if refused is not None:
            return refused
        absence_id = request.path_params["absence_id"]
        if absence_id.isdigit():  # anything else names no absence: nothing to end
            self.desk.fence()
            self.desk.absences.cancel(int(absence_id), user)
        return self._finish(RedirectResponse("/absence?done=cancelled", status_code=303))

    def _absence_page(self, sid: str, user: str, done: str | None,
                      error: AbsenceRefused | None, status: int = 200) -> Response:  # fmt: skip
        now = self.desk.clock()
        rows = [{"absence": a, "first": self._day_of(a.starts),
                 "last": self._day_of(a.ends - 1), "open": a.open_at(now)}
                for a in self.desk.absences.of(user, now)]  # fmt: skip
        covering = [{"absent": a.absent, "last": self._day_of(a.ends - 1)}
                    for a in self.desk.absences.covering(user, now)]  # fmt: skip
        said = {"added": "부재 기간을 저장했습니다.", "cancelled": "부재를 끝냈습니다."}
        return self._page("absence.html", sid, status=status, user=user, rows=rows,
                          covering=covering, done=said.get(done or ""), error=error)  # fmt: skip

    def _day_of(self, ts: float) -> str:
        return self._when(ts)[:10]


def _day(form: dict[str, str], name: str) -> date:
    try:
        return date.fromisoformat(form.get(name, "").strip())
    except ValueError:
        raise AbsenceRefused(name, "날짜를 YYYY-MM-DD 형식으로 적어 주십시오.") from None
