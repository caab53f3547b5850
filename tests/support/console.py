"""A web listener with the approval pages and the console, a directory
(tests/support/outbound.HR_CSV) and three console-only accounts, one per console role;
browsers from chosen addresses; sign-in and bearer-token helpers; mails written into the
site's audit store as the agents record them (``Mails``). Everything on the site's fake
clock."""

from __future__ import annotations

import json
import re
import sqlite3
import warnings
from dataclasses import dataclass, field
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

    @property
    def mails(self) -> Mails:
        return Mails(self.access.path, self.parts.clock.now)


Event = tuple[float, str, str, str, dict[str, Any]]  # time, agent, mail id, step, details


@dataclass
class Mails:
    """Writes mails into an audit store as both agents record them (steps and detail keys of
    the agents; the outer agent's events under agent "outer", as its report imports them)."""

    path: Path
    now: float
    written: list[str] = field(default_factory=list)

    def inbound(self, mail_id: str, *, subject: str = "견적 요청", sender: str = "kim@partner.example",
                display: str = "김철수", rcpts: tuple[str, ...] = ("lee@corp.example",),
                withheld: tuple[str, ...] = (), drawn: tuple[str, ...] = (), ago_s: float = 60,
                quarantined: bool = False, client: str = "203.0.113.5") -> str:  # fmt: skip
        ts = self.now - ago_s
        events: list[Event] = [
            (
                ts,
                "outer",
                mail_id,
                "received",
                {"mail_from": sender, "rcpts": list(rcpts), "bytes": 5000, "client": client},
            )
        ]
        if quarantined:
            events.append((ts + 1, "outer", mail_id, "quarantined", {"reason": "bad_package"}))
            return self.write(events)
        withheld_entries = [{"name": n, "type": "application/octet-stream", "size": 10,
                             "reason": "type"} for n in withheld]  # fmt: skip
        events += [
            (ts + 2, "outer", mail_id, "published", {"seq": 1, "bytes": 4000}),
            (ts + 3, "inner", mail_id, "received_inside", {
                "from": f"{display} <{sender}>", "subject": subject, "mail_from": sender,
                "client": client, "rcpts": list(rcpts), "withheld": withheld_entries,
                "withheld_count": len(withheld), "attachments": list(drawn),
                "attachment_count": len(drawn) + len(withheld)}),
            (ts + 4, "inner", mail_id, "injected", {"part": 1, "reply": "250 2.0.0 Ok"}),
        ]  # fmt: skip
        return self.write(events)

    def outbound(self, mail_id: str, *, subject: str = "회의 일정", sender: str = "kim@corp.example",
                 rcpts: tuple[str, ...] = ("partner@example.com",), outcome: str = "sent",
                 rule: str = "", attachments: tuple[str, ...] = (), ago_s: float = 60,
                 department: str = "영업부") -> str:  # fmt: skip
        ts = self.now - ago_s
        events: list[Event] = [
            (ts, "inner", mail_id, "accepted_outbound", {"mail_from": sender, "rcpts": list(rcpts),
             "client": "10.1.1.9"}),
            (ts + 1, "inner", mail_id, "scanned", {"subject": subject, "rule": rule or None,
             "department": department, "attachments": list(attachments),
             "attachment_count": len(attachments), "bytes": 3000}),
        ]  # fmt: skip
        steps = {"sent": ["allowed", "sent_out"], "held": ["held"], "blocked": ["blocked"],
                 "approved": ["held", "approved", "sent_out"], "rejected": ["held", "rejected"],
                 "delivered": ["allowed", "sent_out"]}[outcome]  # fmt: skip
        events += [(ts + 2 + n, "inner", mail_id, step, {"rule": rule or None})
                   for n, step in enumerate(steps)]  # fmt: skip
        if outcome == "delivered":
            events.append((ts + 9, "outer", mail_id, "delivered", {"rcpt": list(rcpts)}))
        return self.write(events)

    def write(self, events: list[Event]) -> str:
        db = sqlite3.connect(self.path)
        try:
            with db:
                db.executemany(
                    "INSERT INTO events (ts, agent, mail_id, step, details) VALUES (?, ?, ?, ?, ?)",
                    [(ts, agent, mail_id, step, json.dumps(details, ensure_ascii=False))
                     for ts, agent, mail_id, step, details in events],
                )  # fmt: skip
        finally:
            db.close()
        self.written.append(events[0][2])
        return events[0][2]


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
    "Mails",
    "Site",
    "access_log",
    "bearer",
    "browser",
    "console_site",
    "csrf_of",
    "sign_in",
]
