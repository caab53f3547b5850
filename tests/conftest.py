"""Suite-wide rules: a skipped test is a test that did not run, so any skip fails the run."""

from __future__ import annotations

import os

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
