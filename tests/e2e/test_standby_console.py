"""The standby seen on the console (issue 23.2, its defects left open): the dashboard, in
Chromium, says this agent's role on its state (active or standby), who holds the fencing
lease, its token and when it expires; after a takeover by another host the same page says
standby and names the new holder. The web listener runs in its own process as in the agent,
and reads the lease's row itself.

Screenshots (Korean, 1280 and 390 px wide) go to a temporary folder, or to
``MAILDIODE_SCREENSHOTS`` when set (``docs/console/dashboard-lease*.png`` are from there)."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from playwright.sync_api import Page, sync_playwright

from agentkit.lease import Claimant, Taken, Terms
from agentkit.leasekeeper import LeaseStore
from inner_agent.outbound.directory import Directory
from inner_agent.web.roles import Role
from tests.e2e.test_outbound_browser import CHROMIUM, CHROMIUM_ARGS
from tests.support.outbound import RecordingPublisher, start_outbound

pytestmark = pytest.mark.e2e

ADMIN, PASSWORD = "admin@ops.example", "admin-password-1"
TTL_S = 600.0  # long: the page is read well inside it
PHONE = {"width": 390, "height": 844}


def test_the_dashboard_shows_the_role_holder_token_and_expiry(tmp_path: Path) -> None:
    state_dir = tmp_path / "inner"
    state_dir.mkdir()
    store = LeaseStore(state_dir)
    me = Claimant("intra-a", os.getpid(), TTL_S)
    taken = store.attempt(me)
    assert isinstance(taken, Taken)
    terms = Terms("intra-a", os.getpid(), taken.lease.token, TTL_S)
    config = SimpleNamespace(state=SimpleNamespace(dir=state_dir))
    running = start_outbound(tmp_path, publisher=RecordingPublisher(), config=config, lease=terms)
    directory = Directory(running.section.directory_db)
    directory.accounts.add(ADMIN, Role.ADMIN, PASSWORD)
    directory.close()
    shots = Path(os.environ.get("MAILDIODE_SCREENSHOTS") or tmp_path / "shots")
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(f"{running.web_url}/login")
            page.fill("#email", ADMIN)
            page.fill("#password", PASSWORD)
            with page.expect_navigation(timeout=60_000):  # the password check can be slow
                page.click("#signin")
            page.goto(f"{running.web_url}/")
            page.wait_for_selector("#lease")
            assert lease_card(page) == {
                "role": "active", "shown": "운영 (잠금 보유)", "this": "intra-a",
                "holder": f"intra-a (pid {os.getpid()})", "token": "1",
            }  # fmt: skip
            assert "후" in page.inner_text("#lease-expiry")  # "in 9분 59초": not expired
            page.screenshot(path=str(shots / "dashboard-lease.png"), full_page=True)
            page.set_viewport_size(PHONE)
            page.reload()
            page.wait_for_selector("#lease")
            assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]
            page.locator("#lease").screenshot(path=str(shots / "phone-dashboard-lease.png"))

            store.release(me, taken.lease.token)
            store.attempt(Claimant("intra-b", 777, TTL_S))  # another host took over
            page.reload()
            page.wait_for_selector("#lease")
            assert lease_card(page) == {
                "role": "standby", "shown": "대기 (만료되면 넘겨받음)", "this": "intra-a",
                "holder": "intra-b (pid 777)", "token": "2",
            }  # fmt: skip
            browser.close()
    finally:
        store.close()
        running.stop()


def lease_card(page: Page) -> dict[str, str]:
    card = page.locator("#lease")
    return {
        "role": card.get_attribute("data-role") or "",
        "shown": page.inner_text("#lease-role"),
        "this": page.inner_text("#lease-this"),
        "holder": page.inner_text("#lease-holder"),
        "token": page.inner_text("#lease-token"),
    }
