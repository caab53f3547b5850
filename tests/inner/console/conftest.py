"""A console site with mails of both directions in its audit store, signed-in browsers for
each kind of account, and API tokens for the console roles (shared by a module's tests: the
site is read, and each test writes only what it alone asks about)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from inner_agent.outbound.approval import Request, State
from inner_agent.outbound.previews import Preview, PreviewPage
from tests.support.console import (
    ADMIN,
    APPROVER,
    AUDITOR,
    SECURITY,
    Site,
    browser,
    console_site,
    sign_in,
)
from tests.support.outbound import RRN, RRN_MASKED

XSS_SUBJECT = '<script>alert("subject")</script> 견적'
XSS_DISPLAY = "<img src=x onerror=alert(1)>"
XSS_WITHHELD = "<svg onload=alert(2)>.exe"
XSS_DRAWN = '"><b id=injected>bold</b>.pdf'
PNG = b"\x89PNG\r\n\x1a\n" + b"\0" * 32  # what the page hands over, unread
SHEET_PNG = b"\x89PNG\r\n\x1a\n" + b"\1" * 32  # the held mail's second page (its attachment)


@dataclass
class Console:
    site: Site
    sessions: dict[str, Any]
    tokens: dict[str, str]
    ids: dict[str, str] = field(default_factory=dict)

    def page(self, who: str, path: str, **kwargs: Any) -> Any:
        return self.sessions[who].get(path, **kwargs)

    def api(self, who: str, path: str) -> Any:
        return browser(self.site.app).get(
            path, headers={"Authorization": f"Bearer {self.tokens[who]}"}
        )


def fill(site: Site) -> dict[str, str]:
    """Mails of every kind a test asks about, by name; ids are 32 hex digits."""
    mails, ids = site.mails, {}
    ids["plain_in"] = mails.inbound("a" * 32, subject="견적 요청 가나다", ago_s=3600)
    ids["xss_in"] = mails.inbound(
        "b" * 32,
        subject=XSS_SUBJECT,
        display=XSS_DISPLAY,
        withheld=(XSS_WITHHELD,),
        drawn=(XSS_DRAWN,),
        ago_s=3000,
    )
    ids["quarantined_in"] = mails.inbound("c" * 32, quarantined=True, ago_s=2500)
    ids["held_out"] = mails.outbound(
        "d" * 32,
        subject=f"명단 송부 {RRN}",
        outcome="held",
        rule="rrn-hold",
        attachments=("명단.xlsx",),
        ago_s=2000,
    )
    ids["sent_out"] = mails.outbound("e" * 32, subject="회의 일정 안내", outcome="delivered",
                                     ago_s=1000)  # fmt: skip
    state, now = site.parts.state, site.parts.clock.now
    state.add_mail(ids["held_out"], "kim@corp.example", ("partner@example.com",), now - 2000)
    # scanned (findings stored), then held by its request, as the workflow does
    state.set_mail(
        ids["held_out"],
        "received",
        subject=f"명단 송부 {RRN_MASKED}",
        findings=[{"type": "rrn", "masked": RRN_MASKED, "where": "attachment:명단.xlsx"}],
    )
    pages = Preview((PreviewPage("image/png", PNG, "body", 1),
                     PreviewPage("image/png", SHEET_PNG, "attachment:명단.xlsx", 1)))  # fmt: skip
    state.add_request(Request("r" * 16, ids["held_out"], State.HELD, ("lee@corp.example",),
                              now - 2000), PNG, pages=pages.encode())  # fmt: skip
    return ids


@pytest.fixture(scope="module")
def console(tmp_path_factory) -> Console:
    site = console_site(tmp_path_factory.mktemp("console"))
    ids = fill(site)
    sessions = {}
    for name, email in (
        ("admin", ADMIN),
        ("auditor", AUDITOR),
        ("security", SECURITY),
        ("approver", APPROVER),
    ):
        sessions[name] = browser(site.app)
        assert sign_in(sessions[name], email).status_code == 303
    tokens = {name: site.token_for(email) for name, email in
              (("admin", ADMIN), ("auditor", AUDITOR), ("security", SECURITY))}  # fmt: skip
    return Console(site, sessions, tokens, ids)
