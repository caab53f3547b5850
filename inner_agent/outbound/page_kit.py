"""What every outbound page set shares: rendering for the signed-in user with the session's
CSRF token, who is asking (and whether as an administrator), the CSRF check of a POST, a
Korean message page, and times in the console's zone."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from inner_agent.outbound.desk import ApprovalDesk
from inner_agent.web.app import Listener
from inner_agent.web.gate import Principal
from inner_agent.web.roles import Role

__all__ = ["PageKit"]


class PageKit:
    def __init__(self, desk: ApprovalDesk, listener: Listener) -> None:
        self.desk, self.signin, self.access = desk, listener.pages, listener.access
        self.zone = listener.zone

    def _page(self, template: str, sid: str, status: int = 200, **values: Any) -> Response:
        """A page for the signed-in user of session ``sid`` (its CSRF token in the forms)."""
        return self.signin.page(template, status=status, csrf=self.signin.csrf(sid), **values)

    def _message(self, sid: str, user: str, status: int, title: str, message: str) -> Response:
        return self._page("message.html", sid, status=status, user=user, title=title,
                          message=message)  # fmt: skip

    def _finish(self, response: Response) -> Response:
        return self.signin.finish(response)

    @staticmethod
    def _who(request: Request) -> tuple[str, str]:
        """(session id, user) of the request, which the gate let through."""
        principal: Principal = request.state.principal
        return principal.session_id, principal.account

    @staticmethod
    def _admin(request: Request) -> bool:
        """The signed-in account holds the console's administrator role (decides on behalf)."""
        principal: Principal = request.state.principal
        return Role.ADMIN in principal.roles

    def _csrf_refused(self, where: str, request: Request, sid: str, user: str,
                      untrusted_csrf: str) -> Response | None:  # fmt: skip
        """The refusal when the POST lacks its session's CSRF token; None when it has it."""
        if self.signin.csrf_ok(sid, untrusted_csrf):
            return None
        return self.signin.refuse_csrf(where, request, csrf=self.signin.csrf(sid), user=user)

    def _when(self, ts: float) -> str:
        return datetime.fromtimestamp(ts, self.zone).strftime("%Y-%m-%d %H:%M")
