"""The policy editor with a bank's directory (5,000 people, 300 departments under 10
divisions): every name can be found and chosen, not only the first 200 the form lists, the
list says how many it leaves out, a saved scope is still checked against every name, and the
form, the search and a save read no list of the people (a query each)."""

from __future__ import annotations

import re
import tomllib
from dataclasses import replace

import pytest

from inner_agent.outbound.directory import Directory
from inner_agent.outbound.web import create_app
from inner_agent.policyedit.files import (
    PolicyFiles,
    PolicySite,
    find_scope_names,
    scope_names_of,
    sender_of,
)
from inner_agent.policyedit.pages import MAX_FOUND, MAX_OFFERED
from mailsafe.inbound_rules import Membership
from tests.inner.policyedit.test_pages import NEW_RULE, RULES, form_of, signed_in
from tests.support.bank import DEPARTMENTS, DIVISIONS, PEOPLE, department_name, make_bank
from tests.support.console import ADMIN, ALL_PASSWORDS, CONSOLE_ROLES_OF
from tests.support.outbound import build_workflow, listener_for


@pytest.fixture
def bank_site(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES, encoding="utf-8")
    parts = build_workflow(tmp_path, rules_file="rules.toml")
    for email, role in CONSOLE_ROLES_OF.items():
        parts.directory.accounts.add(email, role, ALL_PASSWORDS[email])
    make_bank(parts.directory)
    directory = parts.directory
    editor = PolicySite(PolicyFiles(path, None, tmp_path / "policy-versions"), lambda: None,
                        lambda _: Membership(), lambda: scope_names_of(directory),
                        lambda address, dept: sender_of(directory, address, dept),
                        lambda kind, text, limit: find_scope_names(directory, kind, text,
                                                                   limit))  # fmt: skip
    app = create_app(parts.workflow.desk, replace(listener_for(parts), policy=editor))
    app.state.rules_path, app.state.directory = path, directory
    return app


LATE = department_name(250)  # far past the 200th name in order (본부.., 지점000..지점299)


def scope_list_of(page: str) -> list[str]:
    found = re.search(r'<textarea id="scope_list"[^>]*>([^<]*)</textarea>', page)
    assert found is not None
    return found.group(1).split()


def test_the_listed_names_say_how_many_are_left_out(bank_site):
    client = signed_in(bank_site, ADMIN)
    page = client.get("/policy/outbound/new").text
    listed = re.search(r'id="known-departments">(.*?)</p>', page, re.S)
    assert listed is not None
    assert LATE not in listed.group(1)
    total = len(scope_names_of(bank_site.state.directory).departments)
    assert total > DEPARTMENTS + DIVISIONS > MAX_OFFERED
    assert (f"{total}개 중 {MAX_OFFERED}개만 보입니다. 나머지 {total - MAX_OFFERED}개는"
            in listed.group(1))  # fmt: skip


def test_a_department_past_the_200th_is_found_chosen_and_saved(bank_site):
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    search = {**hidden, **NEW_RULE, "find_kind": "departments", "find_text": "지점25"}
    found = client.post("/policy/outbound/save", data={**search, "do": "find"})
    assert found.status_code == 200
    buttons = re.findall(r'name="add_name" value="([^"]+)"', found.text)
    assert buttons == [department_name(n) for n in range(250, 260)]
    chosen = client.post("/policy/outbound/save", data={**search, "add_name": LATE})
    assert chosen.status_code == 200
    assert '<option value="departments" selected>' in chosen.text
    assert scope_list_of(chosen.text) == [LATE]
    assert bank_site.state.rules_path.read_text(encoding="utf-8") == RULES  # nothing saved
    again = client.post("/policy/outbound/save", data={**search, "scope": "departments",
                                                       "scope_list": LATE,
                                                       "add_name": department_name(299)})  # fmt: skip
    assert scope_list_of(again.text) == [LATE, department_name(299)]
    unknown = {**NEW_RULE, "scope": "departments", "scope_list": f"{LATE}\n지점없음"}
    refused = client.post("/policy/outbound/save", data={**hidden, **unknown, "do": "save"})
    assert refused.status_code == 400
    assert "&#39;지점없음&#39; is not a department of the directory" in refused.text
    chosen_rule = {
        **NEW_RULE,
        "scope": "departments",
        "scope_list": f"{LATE}\n{department_name(299)}",
    }
    saved = client.post("/policy/outbound/save", data={**hidden, **chosen_rule, "do": "save"})
    assert saved.status_code == 303, saved.text[:300]
    rules = tomllib.loads(bank_site.state.rules_path.read_text(encoding="utf-8"))["rule"]
    assert rules[1]["departments"] == [LATE, department_name(299)]


def test_a_person_is_found_by_name_among_five_thousand(bank_site):
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    search = {**hidden, **NEW_RULE, "find_kind": "users", "find_text": "직원04"}
    found = client.post("/policy/outbound/save", data={**search, "do": "find"})
    buttons = re.findall(r'name="add_name" value="([^"]+)"', found.text)
    assert len(buttons) == MAX_FOUND
    assert f"사람(주소) 1000개 중 {MAX_FOUND}개" in found.text  # 직원04000..직원04999
    chosen = client.post(
        "/policy/outbound/save", data={**search, "add_name": "e04999@bank.example"}
    )
    assert '<option value="users" selected>' in chosen.text
    assert scope_list_of(chosen.text) == ["e04999@bank.example"]


def test_a_person_found_is_shown_with_name_department_and_address(bank_site):
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    search = {**hidden, **NEW_RULE, "find_kind": "users", "find_text": "직원0400"}
    found = client.post("/policy/outbound/save", data={**search, "do": "find"})
    buttons = re.findall(r'<button type="submit" name="add_name" value="([^"]+)"[^>]*>(.*?)</button>',
                         found.text, re.S)  # fmt: skip
    assert len(buttons) == 10  # 직원04000..직원04009
    value, shown = buttons[0]
    assert value == "e04000@bank.example"
    assert re.sub(r"<[^>]+>", "", shown) == "직원04000 · 지점100 · e04000@bank.example"
    by_address = client.post("/policy/outbound/save",
                             data={**search, "do": "find", "find_text": "e04999@"})  # fmt: skip
    assert '<b class="person-name">직원04999</b>' in by_address.text
    assert '<span class="person-department">지점199</span>' in by_address.text


def test_the_form_the_search_and_a_save_read_no_list_of_people(bank_site, monkeypatch):
    def whole_directory(self):
        raise AssertionError("the editor read every person of the directory")

    monkeypatch.setattr(Directory, "users", whole_directory)
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    found = client.post("/policy/outbound/save", data={**hidden, **NEW_RULE, "do": "find",
                                                       "find_kind": "departments",
                                                       "find_text": "지점"})  # fmt: skip
    assert found.status_code == 200
    rule = {**NEW_RULE, "scope": "departments", "scope_list": LATE}
    saved = client.post("/policy/outbound/save", data={**hidden, **rule, "do": "save"})
    assert saved.status_code == 303, saved.text[:300]


@pytest.mark.parametrize(("kind", "text", "names", "total"), [
    ("departments", "지점00", [department_name(n) for n in range(10)], 10),
    ("departments", "%", [], 0),  # the search's own wildcards are letters
    ("departments", "_", [], 0),
    ("groups", "업무그룹5", [f"업무그룹5{n}" for n in range(10)], 10),
    ("ranks", "장", ["과장", "부장", "차장"], 3),
    ("users", "E0499", [f"e0499{n}@bank.example" for n in range(10)], 10),  # any case
    ("users", "직원00001", ["e00001@bank.example"], 1),  # by name, given as the address
    ("rooms", "", [], 0),  # not a kind a scope names
])  # fmt: skip
def test_the_directory_finds_names_by_part(bank_site, kind, text, names, total):
    found = find_scope_names(bank_site.state.directory, kind, text, MAX_FOUND)
    assert list(found.names) == names
    assert found.total == total
    assert found.more == 0


def test_the_bank_is_the_size_the_editor_is_measured_at(bank_site):
    directory = bank_site.state.directory
    assert find_scope_names(directory, "users", "@bank.example", 1).total == PEOPLE


def test_a_name_of_a_kind_the_direction_lacks_changes_no_scope(bank_site):
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    posted = {**hidden, **NEW_RULE, "scope": "departments", "scope_list": LATE}
    for kind in ("rooms", ""):
        page = client.post("/policy/outbound/save",
                           data={**posted, "find_kind": kind, "add_name": "x"})  # fmt: skip
        assert page.status_code == 200
        assert '<option value="departments" selected>' in page.text
        assert scope_list_of(page.text) == [LATE]


def test_a_found_name_with_an_invisible_character_is_added_as_the_directory_has_it(bank_site):
    """S6: pages mark invisible characters when they print (D110); the found name's button
    must still carry the name itself, or "영업⟨U+200B⟩부" would be added, a name nobody has."""
    from inner_agent.outbound.directory_model import User

    hidden_name = "영업\u200b부"
    person = User("zw@bank.example", "영", hidden_name, "", "대리")
    bank_site.state.directory.put_person(person, None, "test")
    client = signed_in(bank_site, ADMIN)
    hidden = form_of(client, "/policy/outbound/new")
    search = {**hidden, **NEW_RULE, "find_kind": "departments", "find_text": "영업"}
    found = client.post("/policy/outbound/save", data={**search, "do": "find"})
    buttons = re.findall(r'name="add_name" value="([^"]+)"', found.text)
    assert buttons == [hidden_name, "영업부"]  # the look-alike beside the department it mimics
    assert "영업⟨U+200B⟩부</button>" in found.text  # what the administrator reads
