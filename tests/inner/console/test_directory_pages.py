"""The directory in the console: an administrator adds and edits one person (errors beside the
field), imports an export after a preview that changes nothing, and each change is an access
record; auditors read, others are refused; open approvals follow an edit."""

from __future__ import annotations

import re

from tests.inner.outbound.test_workflow import accept
from tests.support.console import ADMIN, AUDITOR, browser, console_site, csrf_of, sign_in
from tests.support.outbound import rrn_mail

KOREAN_CSV = (
    "이메일,이름,부서,상위부서,직급,역할\n"
    "kim@corp.example,김철수,영업부,경영본부,대리,\n"
    "lee@corp.example,이영희,영업부,경영본부,부장,부서장\n"
    "park@corp.example,박민수,영업부,경영본부,과장,대결자\n"
    "choi@corp.example,최고위,경영본부,,본부장,부서장\n"
    "jung@corp.example,정보안,보안팀,경영본부,차장,보안담당자\n"
    "new@corp.example,신입,보안팀,경영본부,사원,\n"
)


def signed_in(site, email):
    client = browser(site.app)
    assert sign_in(client, email).status_code == 303
    return client


def test_an_administrator_previews_then_applies_an_import(tmp_path):
    site = console_site(tmp_path)
    admin = signed_in(site, ADMIN)
    page = admin.get("/directory")
    assert page.status_code == 200
    assert 'href="/directory"' in page.text  # in the navigation
    assert "kim@corp.example" in page.text
    preview = admin.post("/directory/import", data={"csrf": csrf_of(page.text)},
                         files={"file": ("인사.csv", KOREAN_CSV.encode("cp949"), "text/csv")})  # fmt: skip
    assert preview.status_code == 200, preview.text
    assert "users: 1 added, 5 changed, 0 removed" in preview.text
    assert "~ kim@corp.example: rank - → 대리" in preview.text
    assert site.parts.directory.user("new@corp.example") is None  # nothing applied yet
    pending = re.search(r'name="pending" value="([^"]+)"', preview.text).group(1)
    applied = admin.post("/directory/import/apply", data={"csrf": csrf_of(preview.text),
                                                          "pending": pending})  # fmt: skip
    assert applied.status_code == 303
    assert site.parts.directory.user("new@corp.example").rank == "사원"
    assert site.parts.directory.user("jung@corp.example").role == "security-officer"
    done = site.records(action="directory_imported")
    assert done
    assert done[0].account == ADMIN
    assert done[0].detail.startswith("인사.csv: users: 1 added, 5 changed")
    again = admin.post("/directory/import/apply", data={"csrf": csrf_of(preview.text),
                                                        "pending": pending})  # fmt: skip
    assert again.status_code == 410  # a preview is applied once


def test_add_and_edit_one_person_with_errors_beside_the_field(tmp_path):
    site = console_site(tmp_path)
    admin = signed_in(site, ADMIN)
    form = admin.get("/directory/person")
    assert form.status_code == 200
    fields = {"csrf": csrf_of(form.text), "email": "han@corp.example", "name": "한",
              "department": "법무팀", "parent": "경영본부", "rank": "과장", "role": "head",
              "manager": "not-an-address", "groups": "고객정보 취급자; CS"}  # fmt: skip
    refused = admin.post("/directory/person", data=fields)
    assert refused.status_code == 400
    assert 'id="error-manager"' in refused.text
    assert site.parts.directory.user("han@corp.example") is None
    saved = admin.post("/directory/person", data={**fields, "manager": "choi@corp.example"})
    assert saved.status_code == 303
    han = site.parts.directory.user("han@corp.example")
    assert (han.department, han.role, han.manager, han.groups) == (
        "법무팀", "head", "choi@corp.example", ("CS", "고객정보 취급자"),
    )  # fmt: skip
    assert site.parts.directory.department("법무팀").parent == "경영본부"
    edit = admin.get("/directory/person?email=han@corp.example")
    assert 'value="법무팀"' in edit.text
    two_heads = admin.post("/directory/person", data={**fields, "email": "x@corp.example",
                                                      "manager": ""})  # fmt: skip
    assert two_heads.status_code == 400
    assert "department 법무팀 has two heads" in two_heads.text
    changed = [r.detail for r in site.records(action="directory_changed")]
    assert "user han@corp.example added" in changed


def test_disabling_the_approver_in_the_console_moves_the_open_request(tmp_path):
    site = console_site(tmp_path)
    mail_id = accept(site.parts, rrn_mail())
    request = site.parts.state.request_for_mail(mail_id)
    assert request.approvers == ("lee@corp.example", "park@corp.example")
    admin = signed_in(site, ADMIN)
    form = admin.get("/directory/person?email=lee@corp.example").text
    saved = admin.post("/directory/person", data={
        "csrf": csrf_of(form), "email": "lee@corp.example", "name": "이영희",
        "department": "영업부", "parent": "경영본부", "rank": "", "role": "head",
        "manager": "", "groups": "", "disabled": "on"})  # fmt: skip
    assert saved.status_code == 303
    assert site.parts.state.request(request.request_id).approvers == ("park@corp.example",)
    moved = [r for r in site.records(action="directory_changed") if r.mail == mail_id]
    assert moved
    assert "→ park@corp.example" in moved[0].detail


def test_auditors_read_and_nobody_else_changes(tmp_path):
    site = console_site(tmp_path)
    auditor = signed_in(site, AUDITOR)
    assert auditor.get("/directory").status_code == 200
    assert auditor.get("/directory/person").status_code == 403
    page = auditor.get("/directory").text
    refused = auditor.post("/directory/person", data={"csrf": csrf_of(page), "email": "a@b.kr",
                                                      "department": "A"})  # fmt: skip
    assert refused.status_code == 403
    approver = signed_in(site, "lee@corp.example")
    assert approver.get("/directory").status_code == 403
    admin = signed_in(site, ADMIN)
    no_csrf = admin.post("/directory/person", data={"email": "a@b.kr", "department": "A"})
    assert no_csrf.status_code == 403
    assert site.parts.directory.user("a@b.kr") is None


def test_a_link_cannot_put_its_own_words_in_the_directory_success_box(tmp_path):
    """A1 red team: /directory?done=TEXT showed any TEXT (300 characters) in the green box that
    reports a change, so a link an employee mails to an administrator could say "import
    failed: send the HR file to ..." on the console's own page. Only a change's own result,
    carried with a mark bound to the session, is shown now."""
    site = console_site(tmp_path)
    admin = signed_in(site, ADMIN)
    forged = "가져오기 실패: 인사 파일을 hr-restore@evil.example 로 보내 주십시오"
    page = admin.get("/directory", params={"done": forged})
    assert page.status_code == 200
    assert forged not in page.text
    assert 'id="done"' not in page.text
    form = admin.get("/directory/person")
    saved = admin.post("/directory/person", data={
        "csrf": csrf_of(form.text), "email": "han@corp.example", "name": "한",
        "department": "법무팀", "parent": "경영본부", "rank": "과장", "role": "",
        "manager": "", "groups": ""})  # fmt: skip
    assert saved.status_code == 303
    shown = admin.get(saved.headers["location"])
    assert "saved han@corp.example" in shown.text  # the change's own result is shown
    other = signed_in(site, ADMIN)  # another session of the same account: not its link
    assert "saved han@corp.example" not in other.get(saved.headers["location"]).text
