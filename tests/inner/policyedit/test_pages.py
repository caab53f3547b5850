"""The policy editor's pages through the web listener: who may use them, every problem beside
its field, a save only with the session's CSRF token and only of a file nobody changed
meanwhile, the dry run of an uploaded mail, enable, reorder, history, roll back."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace

import pytest

from agentkit.access import AccessQuery, Action
from inner_agent.outbound.web import create_app
from inner_agent.policyedit.files import (
    PolicyFiles,
    PolicySite,
    find_scope_names,
    scope_names_of,
    sender_of,
)
from mailsafe.inbound_rules import Membership
from tests.support.console import (
    ADMIN,
    ALL_PASSWORDS,
    APPROVER,
    AUDITOR,
    CONSOLE_ROLES_OF,
    SECURITY,
    Mails,
    browser,
    csrf_of,
    sign_in,
)
from tests.support.documents import make_mail
from tests.support.outbound import access_log, build_workflow, listener_for

RULES = """version = 1

[[rule]]
id = "personal-data"
action = "approve"
[[rule.condition]]
field = "any"
pii = ["rrn"]
"""
NEW_RULE = {"id": "secret-subject", "action": "approve", "scope": "everyone", "match": "all",
            "c0_field": "subject", "c0_matcher": "contains", "c0_value": "극비"}  # fmt: skip


@pytest.fixture
def site(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    parts = build_workflow(tmp_path, rules_file="rules.toml")
    for email, role in CONSOLE_ROLES_OF.items():
        parts.directory.accounts.add(email, role, ALL_PASSWORDS[email])
    woken: list[int] = []
    files = PolicyFiles(path, None, tmp_path / "policy-versions")
    editor = PolicySite(files, lambda: woken.append(1), lambda _: Membership())
    listener = replace(listener_for(parts), policy=editor)
    app = create_app(parts.workflow.desk, listener)
    app.state.rules_path, app.state.woken, app.state.parts = path, woken, parts
    return app


@pytest.fixture
def scoped_site(tmp_path):
    """The editor with the directory's names and senders, as the agent builds it; 김 is a
    대리 in the group 고객정보 취급자."""
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    parts = build_workflow(tmp_path, rules_file="rules.toml")
    kim = parts.directory.user("kim@corp.example")
    parts.directory.put_person(replace(kim, rank="대리", groups=("고객정보 취급자",)), None, "t")
    for email, role in CONSOLE_ROLES_OF.items():
        parts.directory.accounts.add(email, role, ALL_PASSWORDS[email])
    editor = PolicySite(PolicyFiles(path, None, tmp_path / "policy-versions"), lambda: None,
                        lambda _: Membership(), lambda: scope_names_of(parts.directory),
                        lambda address, dept: sender_of(parts.directory, address, dept),
                        lambda kind, text, limit: find_scope_names(parts.directory, kind, text,
                                                                   limit),
                        parts.directory.people_at)  # fmt: skip
    app = create_app(parts.workflow.desk, replace(listener_for(parts), policy=editor))
    app.state.rules_path, app.state.directory = path, parts.directory
    return app


GROUP_RULE = {**NEW_RULE, "id": "customer-lists", "scope": "groups",
              "scope_list": "고객정보 취급자\n고객정보취급자", "c0_value": "명단"}  # fmt: skip


def test_a_scope_naming_what_the_directory_lacks_is_refused_beside_the_list(scoped_site):
    client = signed_in(scoped_site, ADMIN)
    page = client.get("/policy/outbound/new").text
    assert '<option value="groups"' in page
    assert '<option value="ranks"' in page
    assert re.search(r'id="known-groups">.*고객정보 취급자', page)
    assert re.search(r'id="known-ranks">.*대리', page)
    hidden = form_of(client, "/policy/outbound/new")
    answer = client.post("/policy/outbound/save", data={**hidden, **GROUP_RULE, "do": "save"})
    assert answer.status_code == 400
    assert re.search(
        r"id=\"problem-scope_list\">rule &#39;customer-lists&#39;: groups: "
        r"&#39;고객정보취급자&#39; is not a group of the directory",
        answer.text,
    )
    assert scoped_site.state.rules_path.read_text(encoding="utf-8") == RULES
    known = {**GROUP_RULE, "scope_list": "고객정보 취급자"}
    assert client.post("/policy/outbound/save", data={**hidden, **known, "do": "save"}
                       ).status_code == 303  # fmt: skip
    rules = tomllib.loads(scoped_site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert rules[1]["scope"] == "groups"
    assert rules[1]["groups"] == ["고객정보 취급자"]


PEOPLE_RULE = {**NEW_RULE, "id": "named-senders", "scope": "users",
               "scope_list": "kim@corp.example\nKIM@corp.exmaple\npark@corp.example"}  # fmt: skip


def test_scope_addresses_the_directory_lacks_are_warned_about_and_not_saved(scoped_site):
    directory = scoped_site.state.directory
    park = directory.user("park@corp.example")
    directory.put_person(replace(park, role="employee", disabled=True), None, "t")  # left
    client = signed_in(scoped_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    answer = client.post("/policy/outbound/save", data={**hidden, **PEOPLE_RULE, "do": "save"})
    assert answer.status_code == 200
    assert 'id="unknown-people-note"' in answer.text
    warned = re.findall(r'<code class="unknown-address">([^<]+)</code> — ([^<]+)</li>',
                        answer.text)  # fmt: skip
    assert warned == [
        ("KIM@corp.exmaple", "디렉터리에 없음"),
        ("park@corp.example", "사용 중지된 사람"),
    ]
    assert scoped_site.state.rules_path.read_text(encoding="utf-8") == RULES  # nothing saved
    confirm = re.search(r'name="confirm_unknown" value="([^"]+)"', answer.text)
    assert confirm is not None
    saved = client.post("/policy/outbound/save", data={**hidden, **PEOPLE_RULE, "do": "save",
                                                       "confirm_unknown": confirm[1]})  # fmt: skip
    assert saved.status_code == 303
    rules = tomllib.loads(scoped_site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert rules[1]["users"] == ["kim@corp.example", "KIM@corp.exmaple", "park@corp.example"]
    history = client.get("/policy/outbound/versions").text
    assert "디렉터리에 없는 주소 확인: KIM@corp.exmaple, park@corp.example" in history


def test_a_confirmation_covers_only_the_addresses_it_was_given_for(scoped_site):
    client = signed_in(scoped_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    first = {**PEOPLE_RULE, "scope_list": "kim@corp.example\npartner@example.com"}
    answer = client.post("/policy/outbound/save", data={**hidden, **first, "do": "save"})
    confirm = re.search(r'name="confirm_unknown" value="([^"]+)"', answer.text)
    assert confirm is not None
    assert confirm[1] == "partner@example.com"
    more = {**first, "scope_list": "partner@example.com\nnobody@corp.example", "do": "save",
            "confirm_unknown": confirm[1]}  # fmt: skip
    again = client.post("/policy/outbound/save", data={**hidden, **more})
    assert again.status_code == 200
    assert re.findall(r'<code class="unknown-address">([^<]+)</code>', again.text) == [
        "partner@example.com", "nobody@corp.example"]  # fmt: skip
    assert scoped_site.state.rules_path.read_text(encoding="utf-8") == RULES
    known = {**first, "scope_list": "kim@corp.example\nLEE@corp.example", "do": "save"}
    assert client.post("/policy/outbound/save", data={**hidden, **known}).status_code == 303


def test_a_group_scoped_draft_is_tried_on_the_directorys_sender(scoped_site):
    client = signed_in(scoped_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    known = {**GROUP_RULE, "scope_list": "고객정보 취급자", "do": "dryrun"}
    for sender, held in (("kim@corp.example", True), ("park@corp.example", False)):
        mail = make_mail(subject="고객 명단", text="첨부", sender=sender)
        tried = client.post("/policy/outbound/save", data={**hidden, **known},
                            files={"eml": ("list.eml", mail, "message/rfc822")})  # fmt: skip
        assert tried.status_code == 200
        assert ("이 규칙이었다면 이 메일을 승인 대기(보류) 했습니다." in tried.text) is held


def test_sub_departments_is_kept_and_refused_beside_another_scope(scoped_site):
    client = signed_in(scoped_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    tree = {**NEW_RULE, "scope": "departments", "scope_list": "경영본부", "sub_departments": "on"}
    assert client.post("/policy/outbound/save", data={**hidden, **tree, "do": "save"}
                       ).status_code == 303  # fmt: skip
    rules = tomllib.loads(scoped_site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert rules[1]["sub_departments"] is True
    shown = client.get("/policy/outbound/rule/secret-subject").text
    assert re.search(r'id="sub_departments"[^>]*checked', shown)
    hidden = form_of(client, "/policy/outbound/new")
    wrong = {**tree, "id": "other", "scope": "ranks", "scope_list": "대리"}
    answer = client.post("/policy/outbound/save", data={**hidden, **wrong, "do": "save"})
    assert answer.status_code == 400
    assert "is an option of scope" in answer.text


def signed_in(site, email):
    client = browser(site)
    sign_in(client, email)
    return client


def form_of(client, path):
    page = client.get(path).text
    based_on = re.search(r'name="based_on" value="([0-9a-f]*)"', page).group(1)
    return {"csrf": csrf_of(page), "based_on": based_on}


@pytest.mark.parametrize(("email", "status"), [(ADMIN, 200), (SECURITY, 200), (AUDITOR, 403),
                                               (APPROVER, 403)])  # fmt: skip
def test_only_administrators_and_security_officers_edit_rules(site, email, status):
    client = signed_in(site, email)
    assert client.get("/policy").status_code == status
    assert client.get("/policy/outbound/new").status_code == status


def test_every_problem_is_shown_beside_its_field_and_nothing_is_saved(site):
    client = signed_in(site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    answer = client.post("/policy/outbound/save", data={
        **hidden, **NEW_RULE, "id": "personal-data", "c0_matcher": "regex", "c0_value": "(a+)+",
        "c1_field": "subjct", "c1_matcher": "contains", "c1_value": "x", "do": "save"})  # fmt: skip
    assert answer.status_code == 400
    page = answer.text
    assert re.search(r'id="problem-id">[^<]*repeated: personal-data', page)
    assert re.search(r'id="problem-c0_value">[^<]*exponential time', page)
    assert re.search(r'id="problem-c1_field">[^<]*subjct', page)
    assert site.state.rules_path.read_text(encoding="utf-8") == RULES


def test_a_post_without_the_csrf_token_is_refused(site):
    client = signed_in(site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    answer = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "csrf": "x" * 64,
                                                        "do": "save"})  # fmt: skip
    assert answer.status_code == 403
    assert site.state.rules_path.read_text(encoding="utf-8") == RULES


def test_add_try_enable_reorder_and_roll_back(site):
    client = signed_in(site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    mail = make_mail(subject="[극비] 인수 계획", text="회의", sender="kim@corp.example")
    tried = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "dryrun"},
                        files={"eml": ("plan.eml", mail, "message/rfc822")})  # fmt: skip
    assert tried.status_code == 200
    assert "이 규칙이었다면 이 메일을 승인 대기(보류) 했습니다." in tried.text
    assert site.state.rules_path.read_text(encoding="utf-8") == RULES  # a try saves nothing

    saved = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "save"})
    assert saved.status_code == 303
    assert saved.headers["location"] == "/policy?saved=outbound-2"
    rules = tomllib.loads(site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert rules[1] == {"id": "secret-subject", "action": "approve", "enabled": False,
                        "condition": [{"field": "subject", "contains": ["극비"]}]}  # fmt: skip
    assert site.state.woken == [1]  # the agent is told

    listing = form_of(client, "/policy")
    client.post("/policy/outbound/toggle", data={**listing, "rule_id": "secret-subject",
                                                 "enabled": "on"})  # fmt: skip
    listing = form_of(client, "/policy")
    client.post("/policy/outbound/move", data={**listing, "rule_id": "secret-subject",
                                               "step": "up"})  # fmt: skip
    rules = tomllib.loads(site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert [r["id"] for r in rules] == ["secret-subject", "personal-data"]
    assert "enabled" not in rules[0]

    history = client.get("/policy/outbound/versions").text
    assert history.count(f'class="who">{ADMIN}<') == 3
    assert "규칙 추가: secret-subject" in history
    assert "규칙 켜기: secret-subject" in history
    assert "콘솔 밖에서 쓴 파일" in history
    version = client.get("/policy/outbound/versions/2").text
    assert "+id = &#34;secret-subject&#34;" in version or '+id = "secret-subject"' in version

    back = form_of(client, "/policy/outbound/versions/1")
    restored = client.post("/policy/outbound/versions/1/restore", data=back)
    assert restored.status_code == 303
    assert site.state.rules_path.read_text(encoding="utf-8") == RULES
    records = access_log(site.state.parts).query(AccessQuery(action=Action.CONFIG_CHANGED))
    assert len(records.items) == 4
    assert all(r.account == ADMIN for r in records.items)


def test_a_stale_page_cannot_overwrite_a_newer_file(site):
    client = signed_in(site, SECURITY)
    hidden = form_of(client, "/policy/outbound/new")
    site.state.rules_path.write_text(RULES + "\n# changed by hand\n", encoding="utf-8")
    answer = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "save"})
    assert answer.status_code == 409
    assert site.state.rules_path.read_text(encoding="utf-8").endswith("# changed by hand\n")


def test_a_draft_tried_on_the_last_days(site):
    mails = Mails(access_log(site.state.parts).path, site.state.parts.clock.now)
    for n, subject in enumerate(("[극비] 인수", "회의", "극비 자료")):
        mails.outbound(f"m{n}", subject=subject)
    client = signed_in(site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    tried = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "history",
                                                       "days": "7"})  # fmt: skip
    assert tried.status_code == 200
    assert "이 규칙이었다면 지난 7일 동안 2통을 보류했습니다 (모두 3통 중)." in tried.text
    assert site.state.rules_path.read_text(encoding="utf-8") == RULES


def test_a_link_cannot_put_its_own_words_in_the_saved_box(site):
    """A1 red team: /policy?saved=TEXT showed any 40 characters in the "saved" box; only a
    direction and a version number (what a save redirects with) are shown now."""
    client = signed_in(site, ADMIN)
    forged = client.get("/policy", params={"saved": "오류: 관리자 비밀번호를 재설정하십시오"})
    assert forged.status_code == 200
    assert 'id="saved"' not in forged.text
    assert "재설정" not in forged.text
    assert "(outbound-2)" in client.get("/policy", params={"saved": "outbound-2"}).text


def test_without_an_outbound_rules_file_the_editor_says_so_in_korean(tmp_path):
    parts = build_workflow(tmp_path)
    parts.directory.accounts.add(ADMIN, CONSOLE_ROLES_OF[ADMIN], ALL_PASSWORDS[ADMIN])
    editor = PolicySite(PolicyFiles(None, None, tmp_path / "policy-versions"), lambda: None,
                        lambda _: Membership())  # fmt: skip
    client = signed_in(create_app(parts.workflow.desk, replace(listener_for(parts), policy=editor)),
                       ADMIN)  # fmt: skip
    listed = client.get("/policy")
    assert listed.status_code == 200
    assert "기본 규칙이 적용됩니다" in listed.text
    assert "[outbound] rules_file" in listed.text
    refused = client.get("/policy/outbound/new")
    assert refused.status_code == 409
    assert "기본 규칙이 적용됩니다" in refused.text
