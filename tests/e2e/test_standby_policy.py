"""The receive filters' policy publisher behind the fencing lease (issue 23.2, checked with two
real inner agents as tests/e2e/test_standby_outbound does): on one state folder, with the
outbound path and ``[inbound]`` on, the standby publishes no inbound policy while the first
holds the lease; the first is frozen (SIGSTOP) past its lease, the rules file changes, the
standby takes over; the first, woken with the change to publish, publishes nothing (its fence
is closed; it exits 4) and the new holder publishes the next version — each version goes out
once, by one agent."""

from __future__ import annotations

import json
import re
import signal
from pathlib import Path

import pytest

from agentkit.readonly import query_read_only
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML
from tests.e2e.test_signin_flood import fill_directory
from tests.e2e.test_standby_outbound import OUTBOUND_START_S, TAKEOVER_LIMIT_S
from tests.support.ha import HaStack, wait_for_log

pytestmark = [pytest.mark.e2e, pytest.mark.ha]

RULES_FILE = "inbound-rules.toml"
PUBLISHED = re.compile(r"inbound policy version (\d+) published")


def published_by(log: Path) -> list[int]:
    """The versions an agent's log says it published."""
    text = log.read_text(encoding="utf-8", errors="replace") if log.exists() else ""
    return [int(found) for found in PUBLISHED.findall(text)]


def published_in_audit(root: Path) -> list[int]:
    rows = query_read_only(root / "inner" / "audit.db",
                           "SELECT details FROM events WHERE step = 'policy_published'")  # fmt: skip
    return [int(json.loads(row[0])["version"]) for row in rows]


def with_inbound(stack: HaStack) -> None:
    """Both agents' configs with the receive filters on, their rules from one file."""
    (stack.root / RULES_FILE).write_text(DEFAULT_INBOUND_RULES_TOML, encoding="utf-8")
    section = f'\n[inbound]\ncheck_s = 1\nrules_file = "{RULES_FILE}"\n'
    for name in ("inner.toml", "inner-b.toml"):
        config = stack.root / name
        config.write_text(config.read_text(encoding="utf-8") + section, encoding="utf-8")


def test_only_the_lease_holder_publishes_the_inbound_policy(tmp_path: Path) -> None:
    running = HaStack(tmp_path, outbound=True)
    with_inbound(running)
    fill_directory(tmp_path / "inner" / "directory.db")
    running.start()
    first_log, standby_log = tmp_path / "inner.log", tmp_path / "inner-b.log"
    try:
        wait_for_log(first_log, "inbound policy version 1 published", OUTBOUND_START_S)
        assert published_by(standby_log) == []
        active = running.active.process
        assert active is not None
        active.send_signal(signal.SIGSTOP)
        rules = tmp_path / RULES_FILE
        rules.write_text(DEFAULT_INBOUND_RULES_TOML + "\n# changed during the failover\n",
                         encoding="utf-8")  # fmt: skip
        wait_for_log(standby_log, "took_over", TAKEOVER_LIMIT_S)
        # one host: the new holder waits for the frozen one's listening sockets (D80)
        wait_for_log(standby_log, "waiting for the old holder to let go", 10)
        active.send_signal(signal.SIGCONT)  # wakes with the change to publish, fenced
        assert active.wait(30) == 4
        wait_for_log(standby_log, "inbound policy version 2 published", OUTBOUND_START_S)
    finally:
        running.stop()
    assert published_by(first_log) == [1]
    assert published_by(standby_log) == [2]
    assert sorted(published_in_audit(tmp_path)) == [1, 2]
    kept = json.loads((tmp_path / "inner" / "inbound-policy.json").read_text(encoding="utf-8"))
    assert (kept["version"], kept["done"]) == (2, True)
