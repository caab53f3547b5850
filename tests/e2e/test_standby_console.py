"""The standby seen on the console (issue 23.2, its defects left open): the dashboard, in
Chromium, says this agent's role on its state (active or standby), who holds the fencing
lease, its token and when it expires; after a takeover by another host the same page says
standby and names the new holder. The web listener runs in its own process as in the agent,
and reads the lease's row itself.

The same running site shows two more things of stop 29 in Chromium: the dashboard's alarm
``directory_server_down`` (one of two LDAP servers down, naming the one that answered; D92),
and the 503 page a standby shows an administrator whose rule save it refused (D96), in
Korean, both fitting a 390-px screen.

Screenshots (Korean, 1280 and 390 px wide) go to a temporary folder, or to
``MAILDIODE_SCREENSHOTS`` when set (``docs/console/dashboard-lease*.png``,
``dashboard-directory-server-down.png``, ``phone-dashboard-directory-server-down.png`` and
``phone-standby-rule-refused.png`` are from there)."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, sync_playwright

from agentkit.lease import Claimant, Taken, Terms
from agentkit.leasekeeper import LeaseStore
from inner_agent.outbound.directory import Directory
from inner_agent.outbound.directory_health import record_health
from inner_agent.outbound.ldap_bind import DirectoryState, ServerState
from inner_agent.web.roles import Role
from tests.e2e.test_outbound_browser import CHROMIUM, CHROMIUM_ARGS
from tests.inner.policyedit.test_pages import RULES
from tests.support.outbound import RecordingPublisher, start_outbound

pytestmark = pytest.mark.e2e

ADMIN, PASSWORD = "admin@ops.example", "admin-password-1"
TTL_S = 600.0  # long: the page is read well inside it
PHONE = {"width": 390, "height": 844}
FIRST_LDAP, SECOND_LDAP = "ldaps://dc1.corp.example:636", "ldaps://dc2.corp.example:636"
DOWN_FOR_S = 300  # how long the first server has not answered


def one_of_two_servers_down(state_dir: Path) -> None:
    """What a sign-in saw (D92): the first server refused, the second answered instead."""
    now = time.time()
    down = ServerState(FIRST_LDAP, False, "연결 거부 (connection refused)", now - DOWN_FOR_S)
    up = ServerState(SECOND_LDAP, True, "", now)
    record_health(state_dir, DirectoryState(SECOND_LDAP, True, "", now, (up, down)), "sign-in")


def test_the_dashboard_shows_the_role_holder_token_and_expiry(tmp_path: Path) -> None:
    state_dir = tmp_path / "inner"
    state_dir.mkdir()
    store = LeaseStore(state_dir)
    me = Claimant("intra-a", os.getpid(), TTL_S)
    taken = store.attempt(me)
    assert isinstance(taken, Taken)
    terms = Terms("intra-a", os.getpid(), taken.lease.token, TTL_S)
    config = SimpleNamespace(state=SimpleNamespace(dir=state_dir))
    (tmp_path / "rules.toml").write_text(RULES, encoding="utf-8")  # the editor has a file
    running = start_outbound(tmp_path, publisher=RecordingPublisher(), config=config, lease=terms,
                             rules_file="rules.toml")  # fmt: skip
    directory = Directory(running.section.directory_db)
    directory.accounts.add(ADMIN, Role.ADMIN, PASSWORD)
    directory.close()
    one_of_two_servers_down(state_dir)
    shots = Path(os.environ.get("MAILDIODE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_in(page, running.web_url)
            page.goto(f"{running.web_url}/")
            page.wait_for_selector("#lease")
            assert lease_card(page) == {
                "role": "active", "shown": "운영 (잠금 보유)", "this": "intra-a",
                "holder": f"intra-a (pid {os.getpid()})", "token": "1",
            }  # fmt: skip
            assert "후" in page.inner_text("#lease-expiry")  # "in 9분 59초": not expired
            page.screenshot(path=str(shots / "dashboard-lease.png"), full_page=True)
            assert_server_down_alarm(page)
            page.locator("#alarms").screenshot(
                path=str(shots / "dashboard-directory-server-down.png")
            )
            page.set_viewport_size(PHONE)
            page.reload()
            page.wait_for_selector("#lease")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.locator("#lease").screenshot(path=str(shots / "phone-dashboard-lease.png"))
            assert_server_down_alarm(page)
            assert_fits(page, "#alarms")
            page.locator("#alarms").screenshot(
                path=str(shots / "phone-dashboard-directory-server-down.png")
            )

            store.release(me, taken.lease.token)
            store.attempt(Claimant("intra-b", 777, TTL_S))  # another host took over
            page.reload()
            page.wait_for_selector("#lease")
            assert lease_card(page) == {
                "role": "standby", "shown": "대기 (만료되면 넘겨받음)", "this": "intra-a",
                "holder": "intra-b (pid 777)", "token": "2",
            }  # fmt: skip
            # a phone as a phone is: its layout as wide as the page's viewport tag allows
            phone = browser.new_page(viewport=PHONE, is_mobile=True, device_scale_factor=1)
            sign_in(phone, running.web_url)
            refused_rule_save(phone, running.web_url, tmp_path / "rules.toml")
            phone.screenshot(path=str(shots / "phone-standby-rule-refused.png"), full_page=True)
            browser.close()
    finally:
        store.close()
        running.stop()


def sign_in(page: Page, web_url: str) -> None:
    page.goto(f"{web_url}/login")
    page.fill("#email", ADMIN)
    page.fill("#password", PASSWORD)
    with page.expect_navigation(timeout=60_000):  # the password check can be slow
        page.click("#signin")


def lease_card(page: Page) -> dict[str, str]:
    card = page.locator("#lease")
    return {
        "role": card.get_attribute("data-role") or "",
        "shown": page.inner_text("#lease-role"),
        "this": page.inner_text("#lease-this"),
        "holder": page.inner_text("#lease-holder"),
        "token": page.inner_text("#lease-token"),
    }


def assert_server_down_alarm(page: Page) -> None:
    """The alarm names the server down, for how long and why, and the one answering instead,
    in Korean; its words are not cut off inside the card."""
    alarm = page.locator("[data-code='directory_server_down']")
    assert alarm.count() == 1
    text = alarm.inner_text()
    assert re.search(f"디렉터리\\(LDAP\\) 서버 {re.escape(FIRST_LDAP)}에 5분( \\d+초)? 전부터 "
                     "연결할 수 없습니다", text), text  # fmt: skip
    assert "연결 거부" in text
    # "서버가": the particle after a URL ending in a digit ("636가") read wrong
    assert f"{SECOND_LDAP} 서버가 대신 응답하고 있어 로그인과 동기화는 계속됩니다" in text, text
    assert "has not answered" not in text  # Korean only, no English fallback
    assert page.locator("[data-code='directory_unreachable']").count() == 0


def assert_fits(page: Page, selector: str) -> None:
    """No horizontal scroll, and nothing in ``selector`` wider than its box (a long LDAP URL
    must wrap, not overflow the card)."""
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    overflowing = page.eval_on_selector_all(
        f"{selector}, {selector} *", "els => els.filter(e => e.scrollWidth > e.clientWidth + 1)"
        ".map(e => e.outerHTML.slice(0, 120))")  # fmt: skip
    assert overflowing == [], overflowing


def refused_rule_save(page: Page, web_url: str, rules_file: Path) -> None:
    """A standby's administrator saves a new rule: the 503 page says, in Korean, that the rule
    (not "the decision") was not saved; it fits the phone; the rules file is unchanged."""
    before = rules_file.read_bytes()
    page.goto(f"{web_url}/policy/outbound/new")
    assert page.locator("#id").count() == 1, page.inner_text("main")[:2000]  # the rule form came
    page.fill("#id", "secret-subject")
    page.select_option("#action", "approve")
    page.select_option("#c0_field", "subject")
    page.select_option("#c0_matcher", "contains")
    page.fill("#c0_value", "극비")
    with page.expect_response(lambda r: r.url.endswith("/policy/outbound/save")) as saving:
        page.click("#save")
    assert saving.value.status == 503
    text = page.inner_text("body")
    assert text.startswith("이 서버는 대기 서버로 넘어가는 중이어서 규칙을 저장하지 않았습니다."), (
        text
    )
    assert "결정" not in text
    # laid out at the phone's width, not a desktop's 980 px shrunk to it (unreadably small)
    assert page.evaluate("window.innerWidth") == PHONE["width"]
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
    assert rules_file.read_bytes() == before
