"""Who may do what on the web listener: the roles, and the mark every route carries.

Roles (docs/console.md, "Roles"):

- ``admin``, ``auditor``, ``security``: **console roles**, granted to an account with
  ``maildiode account add|role`` and to nobody else (not by the HR import: the export's
  ``security-officer`` routes approvals, it does not open the console);
- ``approver``, ``employee``: held by every directory person with an account. The approval
  pages show each person only the requests addressed to them (the approval desk decides
  that), so ``approver`` opens those pages and nothing more; ``employee`` is for the
  self-service pages of a later issue.

Every route says who may use it: ``@require(Role.ADMIN, Role.AUDITOR)`` on the endpoint, or
``@public`` for the few that anyone may reach (the sign-in form). The listener's app is built
by ``gate.guarded_routes``, which refuses everyone on a route that says neither: a page added
without a role is closed, not open (deny by default). ``require`` also checks by itself, so an
endpoint taken into another app keeps its check.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, Protocol, TypeVar

__all__ = [
    "ALL_ROLES",
    "CONSOLE_ROLES",
    "DIRECTORY_ROLES",
    "ROLE_NAMES_KO",
    "Role",
    "declared_roles",
    "is_public",
    "public",
    "require",
]


class Role(StrEnum):
    ADMIN = "admin"
    AUDITOR = "auditor"
    SECURITY = "security"
    APPROVER = "approver"
    EMPLOYEE = "employee"


# Granted one per account by `maildiode account`; the CLI's --role takes exactly these.
CONSOLE_ROLES = (Role.ADMIN, Role.AUDITOR, Role.SECURITY)
# Held by every directory person with an account, for as long as the HR export lists them.
DIRECTORY_ROLES = frozenset({Role.APPROVER, Role.EMPLOYEE})
ALL_ROLES = frozenset(Role)
ROLE_NAMES_KO = {
    Role.ADMIN: "관리자",
    Role.AUDITOR: "감사자",
    Role.SECURITY: "보안 담당자",
    Role.APPROVER: "승인자",
    Role.EMPLOYEE: "직원",
}

_ROLES_ATTR = "maildiode_roles"
_PUBLIC_ATTR = "maildiode_public"

E = TypeVar("E", bound=Callable[..., Awaitable[Any]])


class Gatekeeper(Protocol):
    """What ``require`` asks for every request: ``gate.Gate``, kept in ``app.state.gate``."""

    async def admit(
        self, request: Any, allowed: frozenset[Role], call: Callable[[], Awaitable[Any]]
    ) -> Any: ...


def require(*roles: Role) -> Callable[[E], E]:
    """Only a signed-in account holding one of ``roles`` reaches the endpoint; anyone else is
    refused before it runs (401 or the sign-in page without an account, 403 with a wrong
    role). Works on functions and methods (the request is the last argument)."""
    allowed = frozenset(Role(r) for r in roles)
    if not allowed:
        raise ValueError("require() needs at least one role; use @public for open routes")

    def decorate(endpoint: E) -> E:
        @functools.wraps(endpoint)
        async def guarded(*args: Any) -> Any:
            request = args[-1]
            gate: Gatekeeper | None = getattr(request.app.state, "gate", None)
            if gate is None:  # an app built without the gate: nobody is let through
                from starlette.responses import PlainTextResponse

                return PlainTextResponse("forbidden", status_code=403)
            return await gate.admit(request, allowed, lambda: endpoint(*args))

        setattr(guarded, _ROLES_ATTR, allowed)
        return guarded  # type: ignore[return-value]

    return decorate


def public(endpoint: E) -> E:
    """Anyone may reach this endpoint (it checks what it needs itself: the sign-in form)."""
    setattr(endpoint, _PUBLIC_ATTR, True)
    return endpoint


def declared_roles(endpoint: object) -> frozenset[Role] | None:
    """The roles ``require`` gave ``endpoint``; None when it declares none."""
    found = getattr(endpoint, _ROLES_ATTR, None)
    return found if isinstance(found, frozenset) else None


def is_public(endpoint: object) -> bool:
    return getattr(endpoint, _PUBLIC_ATTR, False) is True
