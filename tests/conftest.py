"""Suite-wide rules: a skipped test is a test that did not run, so any skip fails the run; the
heaviest files run first."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import settings

# In CI, property tests replay the same examples every run: a red build then names a change, not
# the luck of the draw. At a desk they explore afresh each run, which is where new bugs turn up.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None:
        return
    skipped = reporter.stats.get("skipped", [])
    if skipped and exitstatus == 0:
        reporter.write_line(
            f"FAILED: {len(skipped)} test(s) skipped; every test must run (see -ra summary)",
            red=True,
        )
        session.exitstatus = 1


# The files that take longest, in seconds of one worker (measured under `-n 2 --dist loadfile`,
# docs/performance.md "The suite's time"). They are handed out first: two workers then finish
# together, on the many short files, instead of one of them starting an 80-second file while
# the other has nothing left (xdist's own order puts files with few tests, the long end-to-end
# ones, last). Only the order depends on these figures; a file missing here runs after them.
HEAVY_FILES_S: dict[str, float] = {
    "tests/mailsafe/office/test_documents.py": 197,
    "tests/cli/test_account_commands.py": 155,
    "tests/e2e/test_inbound_delivery.py": 147,
    "tests/e2e/test_offline_install.py": 130,
    "tests/e2e/test_receive_filters.py": 121,
    "tests/e2e/test_ha.py": 100,
    "tests/e2e/test_two_outer_agents.py": 94,
    "tests/e2e/test_inbound_full_disk.py": 85,
    "tests/e2e/test_status_report.py": 83,
    "tests/e2e/test_inbound_masking.py": 75,
    "tests/e2e/test_signin_flood.py": 74,
    "tests/inner/outbound/test_directory_command.py": 73,
    "tests/outer/test_durability.py": 72,
    "tests/e2e/test_backup_restore.py": 67,
    "tests/e2e/test_outbound_whole_path.py": 61,
    "tests/e2e/test_standby_outbound.py": 58,
    "tests/e2e/test_at_rest.py": 57,
    "tests/e2e/test_approvers_browser.py": 56,
    "tests/mailsafe/test_ocr_reading.py": 50,
    "tests/e2e/test_standby.py": 48,
    "tests/e2e/test_console_browser.py": 44,
    "tests/e2e/test_policy_editor.py": 43,
    "tests/outer/test_agent.py": 42,
    "tests/e2e/test_inbound_demo.py": 39,
    "tests/inner/outbound/test_preview_scan_places.py": 36,
    "tests/inner/outbound/test_ldap_signin.py": 34,
    "tests/outer/test_delivery_tls.py": 33,
    "tests/e2e/test_standby_policy.py": 33,
    "tests/cli/test_status_delivery.py": 32,
    "tests/inner/outbound/test_ldap_outage.py": 31,
    "tests/e2e/test_web_tls.py": 30,
    "tests/e2e/test_outbound_browser.py": 30,
    "tests/e2e/test_upgrade.py": 29,
    "tests/e2e/test_readme_trial.py": 29,
    "tests/test_dependencies.py": 25,
    "tests/cli/test_csv_semicolon_locale.py": 25,
    "tests/inner/test_link_flood.py": 24,
    "tests/e2e/test_outer_full_disk.py": 24,
    "tests/mailsafe/test_corpus.py": 23,
    "tests/outer/test_inbound_document_values.py": 22,
    "tests/inner/console/test_directory_pages.py": 22,
    "tests/mailsafe/test_picture_masking.py": 21,
    "tests/inner/web/test_standby_writes.py": 18,
    "tests/outer/test_delivery_e2e.py": 16,
    "tests/inner/outbound/test_races.py": 16,
    "tests/inner/console/test_charts.py": 16,
    "tests/e2e/test_standby_console.py": 16,
    "tests/cli/test_standby_guard.py": 15,
    "tests/mailsafe/test_mupdf.py": 14,
    "tests/inner/outbound/test_ldap_servers.py": 12,
    "tests/inner/console/test_figures.py": 12,
    "tests/inner/outbound/test_preview_masking.py": 11,
    "tests/inner/console/test_streams.py": 11,
}


def pytest_configure(config: pytest.Config) -> None:
    # xdist sorts the files by their number of tests unless told not to; ours is by time.
    if getattr(config.option, "loadscopereorder", None) is not None:
        config.option.loadscopereorder = False


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    tests_per_file = Counter(item.path for item in items)
    root = Path(__file__).resolve().parent.parent

    def heaviest_first(item: pytest.Item) -> tuple[float, int]:
        known_s = HEAVY_FILES_S.get(item.path.relative_to(root).as_posix(), 0.0)
        return -known_s, -tests_per_file[item.path]

    items.sort(key=heaviest_first)  # stable: the tests of a file keep their order
