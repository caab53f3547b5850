"""A web listener with the approval pages, a directory (tests/support/outbound.HR_CSV) and
three console-only accounts, one per console role; browsers from chosen addresses; sign-in
and bearer-token helpers. Everything on the site's fake clock."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # Starlette's TestClient asks for httpx2
    from starlette.testclient import TestClient

from agentkit.access import AccessLog, AccessQuery, AccessRecord
from inner_agent.web.roles import Role
from tests.support.outbound import PASSWORDS, Parts, access_log, build_workflow, listener_for

ADMIN, AUDITOR, SECURITY = "admin@ops.example", "auditor@audit.example", "sec@ops.example"
APPROVER = "lee@corp.example"  # a department head in the HR export: approver and employee
CONSOLE_ROLES_OF = {ADMIN: Role.ADMIN, AUDITOR: Role.AUDITOR, SECURITY: Role.SECURITY}
ALL_PASSWORDS = {
    **PASSWORDS,
    ADMIN: "admin-password-1",
    AUDITOR: "auditor-password-2",
    SECURITY: "security-password-3",
}
OFFICE_PC = "10.1.1.20"


@dataclass
class Site:
    parts: Parts
    listener: Any  # inner_agent.web.app.Listener
    app: Any

    @property
    def access(self) -> AccessLog:
        return self.listener.access

    def records(self, **query: Any) -> list[AccessRecord]:
        return self.access.query(AccessQuery(**query)).items

    def token_for(self, email: str) -> str:
        return self.listener.tokens.create(email)[1]


def console_site(tmp_path: Path, **overrides: Any) -> Site:
    from inner_agent.outbound.web import create_app

    parts = build_workflow(tmp_path, **overrides)
    for email, role in CONSOLE_ROLES_OF.items():
        parts.directory.accounts.add(email, role, ALL_PASSWORDS[email])
    listener = listener_for(parts)
    return Site(parts, listener, create_app(parts.workflow.desk, listener))


def browser(app: Any, address: str = OFFICE_PC) -> TestClient:
    """A browser (or script) on the machine with ``address``, with its own cookie jar."""
    return TestClient(app, base_url="http://127.0.0.1", follow_redirects=False,
                      client=(address, 50123))  # fmt: skip


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None, page[:300]
    return found.group(1)


def sign_in(client: TestClient, email: str, password: str | None = None) -> Any:
    page = client.get("/login").text
    return client.post("/login", data={"csrf": csrf_of(page), "email": email,
                                       "password": password or ALL_PASSWORDS[email]})  # fmt: skip


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


__all__ = [
    "ADMIN",
    "ALL_PASSWORDS",
    "APPROVER",
    "AUDITOR",
    "CONSOLE_ROLES_OF",
    "OFFICE_PC",
    "SECURITY",
    "Site",
    "access_log",
    "bearer",
    "browser",
    "console_site",
    "csrf_of",
    "sign_in",
]
