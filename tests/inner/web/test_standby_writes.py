"""Every write of shared state the web listener makes passes the lease's fence (D80): behind a
closed fence (the agent lost its state's lease: frozen past it, or stopping, and a standby took
over) a policy-editor save, a rule toggled or restored, a directory person saved, an HR import
applied, and an absence set or ended are each refused with the decisions' 503 and Retry-After,
and nothing is written. The site is assembled as the agent assembles it (``site_app``), so the
listener's fence is the desk's, the one decisions already pass."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from inner_agent.policyedit.files import PolicyFiles
from inner_agent.web.app import LEASE_LOST_PAGE
from inner_agent.web.config import ConsoleSection
from inner_agent.webproc.site import site_app
from tests.inner.console.test_directory_pages import KOREAN_CSV
from tests.inner.outbound.test_approver_pages import days_from_now
from tests.inner.policyedit.test_pages import NEW_RULE, RULES, form_of
from tests.support.console import ADMIN, ALL_PASSWORDS, APPROVER, CONSOLE_ROLES_OF, browser, csrf_of
from tests.support.console import sign_in as console_sign_in
from tests.support.outbound import Parts, SwitchableFence, build_workflow

LOST = "the lease (token 1) is now held by inner-b (token 2)"
BROWSER_ACCEPT = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@dataclass
class StandbySite:
    parts: Parts
    app: Any
    fence: SwitchableFence
    rules: Path


@pytest.fixture
def standby_site(tmp_path: Path) -> Iterator[StandbySite]:
    rules = tmp_path / "rules.toml"
    rules.write_text(RULES, encoding="utf-8")
    parts = build_workflow(tmp_path, rules_file="rules.toml")
    for email, role in CONSOLE_ROLES_OF.items():
        parts.directory.accounts.add(email, role, ALL_PASSWORDS[email])
    fence = SwitchableFence()
    parts.workflow.desk.fence = fence  # as open_site gives the web process's desk its watch
    app, listener = site_app(
        parts.workflow.desk, parts.section, console=ConsoleSection(), directory=parts.directory,
        audit=parts.audit, audit_path=tmp_path / "audit.db", secret=parts.secret,
        clock=parts.clock, policy=PolicyFiles(rules, None, tmp_path / "policy-versions"),
    )  # fmt: skip
    yield StandbySite(parts, app, fence, rules)
    listener.close()


def signed_in(site: StandbySite, email: str) -> Any:
    client = browser(site.app)
    assert console_sign_in(client, email).status_code == 303
    return client


def assert_refused(answer: Any, not_saved: str) -> None:
    """The decisions' 503 and Retry-After, its words naming what was not saved (a rule is not
    "a decision")."""
    assert answer.status_code == 503, answer.text[:300]
    assert answer.headers["retry-after"] == "60"
    assert answer.text.startswith("이 서버는 대기 서버로 넘어가는 중이어서 ")
    assert f"중이어서 {not_saved} 저장하지 않았습니다. 잠시 후 다시 시도해 주십시오." in answer.text
    assert "no longer holds its state's lease" in answer.text
    assert answer.text != LEASE_LOST_PAGE
    assert "결정" not in answer.text


def test_a_policy_save_behind_a_closed_fence_is_503_and_writes_no_rules(standby_site):
    site = standby_site
    admin = signed_in(site, ADMIN)
    hidden = form_of(admin, "/policy/outbound/new")
    site.fence.close(LOST)
    answer = admin.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "save"})
    assert_refused(answer, "규칙을")
    assert site.rules.read_text(encoding="utf-8") == RULES
    assert "policy_changed" not in site.parts.audit.steps()
    toggled = admin.post("/policy/outbound/toggle",
                         data={**hidden, "rule_id": "personal-data"})  # fmt: skip
    assert_refused(toggled, "규칙 켜기·끄기를")
    assert site.rules.read_text(encoding="utf-8") == RULES
    moved = admin.post("/policy/outbound/move",
                       data={**hidden, "rule_id": "personal-data", "step": "down"})  # fmt: skip
    assert_refused(moved, "규칙 순서 변경을")
    assert site.rules.read_text(encoding="utf-8") == RULES
    # the same save with the lease held goes through: the refusal was the fence's
    site.fence.why = None
    saved = admin.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "save"})
    assert saved.status_code == 303, saved.text[:300]
    assert "secret-subject" in site.rules.read_text(encoding="utf-8")


def test_a_browser_is_answered_a_page_and_a_script_the_plain_text(standby_site):
    """A browser (Accept: text/html) gets the 503 as a page with a viewport tag, so a phone
    does not lay it out 980 px wide; a script gets the same words as plain text."""
    site = standby_site
    admin = signed_in(site, ADMIN)
    hidden = form_of(admin, "/policy/outbound/new")
    site.fence.close(LOST)
    data = {**hidden, **NEW_RULE, "do": "save"}
    page = admin.post("/policy/outbound/save", data=data, headers={"Accept": BROWSER_ACCEPT})
    assert page.status_code == 503
    assert page.headers["retry-after"] == "60"
    assert page.headers["content-type"].startswith("text/html")
    assert 'name="viewport"' in page.text
    assert "중이어서 규칙을 저장하지 않았습니다." in page.text
    assert "default-src 'none'" in page.headers["content-security-policy"]
    plain = admin.post("/policy/outbound/save", data=data, headers={"Accept": "*/*"})
    assert_refused(plain, "규칙을")
    assert plain.headers["content-type"].startswith("text/plain")
    assert plain.headers["x-content-type-options"] == "nosniff"
    assert plain.headers["cache-control"] == "no-store"
    assert site.rules.read_text(encoding="utf-8") == RULES


def test_directory_edits_behind_a_closed_fence_are_503_and_change_nobody(standby_site):
    site = standby_site
    admin = signed_in(site, ADMIN)
    form = admin.get("/directory/person")
    person = {"csrf": csrf_of(form.text), "email": "han@corp.example", "name": "한",
              "department": "법무팀", "parent": "경영본부", "rank": "과장", "role": "",
              "manager": "choi@corp.example", "groups": ""}  # fmt: skip
    page = admin.get("/directory")
    preview = admin.post("/directory/import", data={"csrf": csrf_of(page.text)},
                         files={"file": ("인사.csv", KOREAN_CSV.encode("cp949"), "text/csv")})  # fmt: skip
    assert preview.status_code == 200, preview.text[:300]  # a preview writes nothing
    pending = re.search(r'name="pending" value="([^"]+)"', preview.text)
    assert pending is not None
    site.fence.close(LOST)
    assert_refused(admin.post("/directory/person", data=person), "디렉터리의 사람 정보를")
    assert site.parts.directory.user("han@corp.example") is None
    applied = admin.post("/directory/import/apply",
                         data={"csrf": csrf_of(preview.text), "pending": pending.group(1)})  # fmt: skip
    assert_refused(applied, "인사 자료 가져오기를")
    assert site.parts.directory.user("new@corp.example") is None
    assert site.parts.directory.user("kim@corp.example").rank != "대리"


def test_an_absence_behind_a_closed_fence_is_503_and_not_stored(standby_site):
    site = standby_site
    parts = site.parts
    lee = signed_in(site, APPROVER)
    page = lee.get("/absence").text
    first, last = days_from_now(parts, 0, 1)
    site.fence.close(LOST)
    answer = lee.post("/absence", data={"csrf": csrf_of(page), "delegate": "jung@corp.example",
                                        "first": first, "last": last})  # fmt: skip
    assert_refused(answer, "부재 설정을")
    assert parts.workflow.desk.absences.of(APPROVER, parts.clock()) == []
    site.fence.why = None
    saved = lee.post("/absence", data={"csrf": csrf_of(page), "delegate": "jung@corp.example",
                                       "first": first, "last": last})  # fmt: skip
    assert saved.status_code == 303
    (absence,) = parts.workflow.desk.absences.of(APPROVER, parts.clock())
    site.fence.close(LOST)
    ended = lee.post(f"/absence/{absence.id}/cancel", data={"csrf": csrf_of(page)})
    assert_refused(ended, "부재 종료를")
    assert parts.workflow.desk.absences.of(APPROVER, parts.clock()) == [absence]
