"""The policy editor in a real browser (Playwright driving Debian's Chromium) against the
running OutboundService, its web listener in its own process as in the agent (issue 20, its
Done line): an administrator adds a rule, tries it on an uploaded mail and sees the decision,
saves it (off), turns it on, and a mail sent afterwards is decided by it without restarting
the agent; the version history shows who changed what; a roll back restores the file and the
next mail goes out as before.

Screenshots go to a temporary folder, or to ``MAILDIODE_SCREENSHOTS`` when set
(``docs/console/policy-*.png`` are from there)."""

from __future__ import annotations

import email
import email.policy
import os
import smtplib
from dataclasses import replace
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

from inner_agent.outbound.directory import Directory
from inner_agent.web.roles import Role
from mailsafe.payload import decode_outbound
from tests.e2e.test_outbound_browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.bank import DEPARTMENTS, department_name, make_bank
from tests.support.documents import make_mail
from tests.support.outbound import RecordingPublisher, start_outbound, wait_for

pytestmark = pytest.mark.e2e

ADMIN, PASSWORD = "admin@ops.example", "admin-password-1"
RULES = """# the rules as the administrator wrote them by hand
version = 1
default_action = "allow"

[[rule]]
id = "personal-data"
action = "approve"
[[rule.condition]]
field = "any"
pii = ["rrn"]
"""


@pytest.fixture
def running(tmp_path):
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")
    publisher = RecordingPublisher()
    running = start_outbound(tmp_path, publisher=publisher, rules_file="rules.toml")
    directory = Directory(running.section.directory_db)
    directory.accounts.add(ADMIN, Role.ADMIN, PASSWORD)
    directory.close()
    running.publisher = publisher
    yield running
    running.stop()


@pytest.fixture
def page(running):
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser.new_page()
        browser.close()


@pytest.fixture
def shots(tmp_path) -> Path:
    folder = Path(os.environ.get("MAILDIODE_SCREENSHOTS") or tmp_path / "shots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def secret_mail(subject: str) -> bytes:
    return make_mail(subject=f"[극비] {subject}", text="다음 분기 인수 계획입니다.",
                     sender="kim@corp.example", to="partner@example.com")  # fmt: skip


def send(running, data: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
        client.sendmail("kim@corp.example", ["partner@example.com"], data)


def decided(running, subject: str):
    """The state's row of the mail with ``subject``, once it was scanned."""
    state = running.service.workflow.state

    def found():
        rows = [state.mail(r.mail_id) for r in state.pending_requests()]
        held = [r for r in rows if r is not None and subject in r.subject]
        published = [b for b, _ in running.publisher.published if subject in _subject(b)]
        return held or (published and ["published"])

    return wait_for(found, what=f"the decision on {subject!r}")[0]


def _subject(bundle: bytes) -> str:
    data = decode_outbound(bundle).data
    return str(email.message_from_bytes(data, policy=email.policy.default)["Subject"])


def test_add_try_enable_decide_history_and_roll_back(running, page, tmp_path, shots):
    page.goto(f"{running.web_url}/policy")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("#signin")
    page.wait_for_selector("#rules-outbound")

    page.click("#add-outbound")
    page.fill("#id", "secret-subject")
    page.fill("#description", "제목에 극비가 있으면 부서장이 승인합니다")
    page.select_option("#action", "approve")
    page.select_option("#c0_field", "subject")
    page.select_option("#c0_matcher", "contains")
    page.fill("#c0_value", "극비")
    page.check("#notify-admin")
    eml = tmp_path / "plan.eml"
    eml.write_bytes(secret_mail("인수 계획"))
    page.set_input_files("#eml", str(eml))
    page.click("#dryrun")
    page.wait_for_selector("#trial-sentence")
    assert (
        page.inner_text("#trial-sentence") == "이 규칙이었다면 이 메일을 승인 대기(보류) 했습니다."
    )
    assert page.inner_text("#trial-overall") == "approve"
    page.screenshot(path=str(shots / "policy-dry-run.png"), full_page=True)
    page.click("#save")
    page.wait_for_selector("#saved")
    assert "꺼짐" in page.inner_text("#rule-outbound-secret-subject")

    send(running, secret_mail("첫째"))  # saved, but off: the mail goes out
    assert decided(running, "첫째") == "published"

    page.click("#rule-outbound-secret-subject button.enable")
    page.wait_for_selector("#saved")
    assert "켜짐" in page.inner_text("#rule-outbound-secret-subject")
    page.screenshot(path=str(shots / "policy-editor.png"), full_page=True)
    send(running, secret_mail("둘째"))  # the same agent, not restarted
    held = decided(running, "둘째")
    assert held.decision["rule"] == "secret-subject"
    assert held.decision["action"] == "approve"

    page.click("#versions-outbound")
    page.wait_for_selector("#versions")
    history = page.inner_text("#versions")
    assert "규칙 켜기: secret-subject" in history
    assert "규칙 추가: secret-subject" in history
    assert history.count(ADMIN) == 2
    assert "콘솔 밖에서 쓴 파일" in history
    page.click("a.version-link >> text=v1")
    page.wait_for_selector("#restore")
    page.click("#restore")
    page.wait_for_selector("#saved")
    assert (tmp_path / "rules.toml").read_text(encoding="utf-8") == RULES
    send(running, secret_mail("셋째"))
    assert decided(running, "셋째") == "published"

    page.set_viewport_size({"width": 390, "height": 844})  # every screen fits a phone
    for path in ("/policy", "/policy/outbound/new", "/policy/outbound/rule/personal-data",
                 "/policy/outbound/versions", "/policy/outbound/versions/2"):  # fmt: skip
        page.goto(running.web_url + path)
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390, (path, width)


def test_a_rule_scoped_to_a_directory_group_decides_its_members_mail_alone(running, page):
    """The editor offers the directory's groups and ranks, refuses a group it lacks beside the
    list, and the saved rule holds a member's mail while a non-member's identical mail goes."""
    directory = Directory(running.section.directory_db)
    kim = directory.user("kim@corp.example")
    directory.put_person(replace(kim, rank="대리", groups=("고객정보 취급자",)), None, "test")
    directory.close()
    page.goto(f"{running.web_url}/policy/outbound/new")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("#signin")
    page.wait_for_selector("#rule-form")
    page.click("#known-names summary")
    assert "고객정보 취급자" in page.inner_text("#known-groups")
    assert "대리" in page.inner_text("#known-ranks")
    page.fill("#id", "customer-lists")
    page.select_option("#action", "approve")
    page.select_option("#scope", "groups")
    page.fill("#scope_list", "고객정보취급자")  # not quite the directory's name
    page.select_option("#c0_field", "subject")
    page.select_option("#c0_matcher", "contains")
    page.fill("#c0_value", "명단")
    page.check("#enabled")
    page.click("#save")
    page.wait_for_selector("#problem-scope_list")
    assert "'고객정보취급자' is not a group of the directory" in page.inner_text(
        "#problem-scope_list"
    )
    page.fill("#scope_list", "고객정보 취급자")
    page.click("#save")
    page.wait_for_selector("#saved")
    assert "켜짐" in page.inner_text("#rule-outbound-customer-lists")

    for sender in ("kim@corp.example", "park@corp.example"):  # the same mail from each
        data = make_mail(subject=f"고객 명단 {sender[:3]}", text="첨부 확인 바랍니다.",
                         sender=sender, to="partner@example.com")  # fmt: skip
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail(sender, ["partner@example.com"], data)
    held = decided(running, "고객 명단 kim")
    assert held.decision["rule"] == "customer-lists"
    assert decided(running, "고객 명단 par") == "published"


def test_a_bank_sized_directory_a_department_past_the_200th_is_found_chosen_and_decides(
    running, page, shots
):
    """With 5,000 people in 300 departments the form lists 200 departments and says how many
    it leaves out; the search (a button, no script) finds 지점250, a click puts it in the
    scope's list, the rule saved with it holds that branch's mail and lets the next branch's
    identical mail go."""
    directory = Directory(running.section.directory_db)
    make_bank(directory)
    directory.close()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(f"{running.web_url}/policy/outbound/new")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    page.click("#signin")
    page.wait_for_selector("#rule-form")
    page.click("#known-names summary")
    assert "나머지" in page.inner_text("#known-departments-more")
    assert department_name(250) not in page.inner_text("#known-departments")
    page.fill("#id", "branch-secret")
    page.select_option("#action", "approve")
    page.select_option("#c0_field", "subject")
    page.select_option("#c0_matcher", "contains")
    page.fill("#c0_value", "극비")
    page.check("#enabled")
    page.select_option("#find_kind", "departments")
    page.fill("#find_text", "지점25")
    page.click("#find")
    page.wait_for_selector("#found-names")
    page.click(f"#found-names button >> text={department_name(250)}")
    page.wait_for_selector("#found-names")
    assert page.input_value("#scope_list") == department_name(250)
    assert page.input_value("#scope") == "departments"
    assert page.input_value("#id") == "branch-secret"  # the draft kept, nothing saved
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width
    page.locator("#find-names").scroll_into_view_if_needed()
    page.screenshot(path=str(shots / "phone-policy-find-names.png"))
    page.click("#save")
    page.wait_for_selector("#saved")
    assert "켜짐" in page.inner_text("#rule-outbound-branch-secret")

    for branch in (250, 251):  # the same mail from a person of each branch (not its head)
        sender = f"e{branch + DEPARTMENTS:05d}@bank.example"
        data = make_mail(subject=f"[극비] 지점 {branch}", text="다음 분기 계획입니다.",
                         sender=sender, to="partner@example.com")  # fmt: skip
        with smtplib.SMTP("127.0.0.1", running.smtp_port) as client:
            client.sendmail(sender, ["partner@example.com"], data)
    assert decided(running, "지점 250").decision["rule"] == "branch-secret"
    assert decided(running, "지점 251") == "published"


def test_a_person_is_found_by_name_and_a_scope_address_the_directory_lacks_is_confirmed(
    running, page, shots, tmp_path
):
    """The person search shows name, department and address; a typo in a scope of people is
    not saved silently: the form says which address the directory lacks (on a phone, in
    Korean), and saves only once that is confirmed (D107)."""
    for width, suffix in ((390, "phone-"), (1280, "")):
        page.set_viewport_size({"width": width, "height": 844})
        page.goto(f"{running.web_url}/policy/outbound/new")
        if page.locator("#signin").count():
            page.fill("#email", ADMIN)
            page.fill("#password", PASSWORD)
            page.click("#signin")
        page.wait_for_selector("#rule-form")
        page.fill("#id", f"named-senders-{width}")
        page.select_option("#action", "approve")
        page.select_option("#c0_field", "subject")
        page.select_option("#c0_matcher", "contains")
        page.fill("#c0_value", "극비")
        page.select_option("#find_kind", "users")
        page.fill("#find_text", "김철")
        page.click("#find")
        page.wait_for_selector("#found-names")
        assert page.inner_text("#found-names button.found-person") == (
            "김철수 · 영업부 · kim@corp.example"
        )
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.locator("#find-names").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{suffix}policy-find-person.png"))
        page.click("#found-names button.found-person")
        page.wait_for_selector("#found-names")
        assert page.input_value("#scope") == "users"
        page.fill("#scope_list", "kim@corp.example\nlee@corp.exmaple")  # a typo
        page.click("#save")
        page.wait_for_selector("#unknown-people")
        assert "아직 저장하지 않았습니다" in page.inner_text("#unknown-people-note")
        assert page.inner_text("#unknown-people li") == "lee@corp.exmaple — 디렉터리에 없음"
        assert f"named-senders-{width}" not in (tmp_path / "rules.toml").read_text("utf-8")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        page.locator("#unknown-people").scroll_into_view_if_needed()
        page.screenshot(path=str(shots / f"{suffix}policy-unknown-address.png"))
        page.check("#confirm_unknown")
        page.click("#save")
        page.wait_for_selector("#saved")
        saved = (tmp_path / "rules.toml").read_text(encoding="utf-8")
        assert f'id = "named-senders-{width}"' in saved
        assert "lee@corp.exmaple" in saved
