"""The outer agent's status report, end to end with both agents as processes, a carrier and
Postfix (issue 16: the dashboard's figures of the outer side arrive through the link).

- the first report arrives within one interval of the outer agent's start, the next within one
  interval of the one before, with the host's figures, the queues and the link;
- every audit event of the outer agent is in the inner agent's audit store exactly once, also
  after the outer agent was killed -9 mid-stream and started again;
- with the link cut (the carrier stopped), ``maildiode status`` calls the report stale and
  says how old it is.
"""

from __future__ import annotations

import itertools
import json
import re
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from agentkit.readonly import query_read_only
from inner_agent.reports import StoredReport, latest_report
from maildiode.trial.stack import port_open, wait_for
from tests.support.inbound import InboundStack, simple_mail

pytestmark = pytest.mark.e2e

INTERVAL_S = 4
# The carrier's polling and the inner agent's wake-up: a report crosses well inside this.
LINK_SLACK_S = 1.5


def _latest(root: Path) -> StoredReport | None:
    return latest_report(root / "inner" / "reports.db", "inbound")


def _received(root: Path) -> list[int]:
    rows = query_read_only(root / "inner" / "reports.db", "SELECT received_ms FROM reports")
    return sorted(row[0] for row in rows)


def _status(root: Path) -> tuple[int, dict[str, Any], str]:
    config = str(root / "inner.toml")
    as_json = subprocess.run([sys.executable, "-m", "maildiode", "status", "-c", config, "--json"],
                             capture_output=True, text=True, timeout=60)  # fmt: skip
    text = subprocess.run([sys.executable, "-m", "maildiode", "status", "-c", config],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    return as_json.returncode, json.loads(as_json.stdout), text.stdout


Event = tuple[float, str, str]  # time, mail id, step (details are made scalar on the way)


def _outer_events(root: Path) -> Counter[Event]:
    rows = query_read_only(root / "outer" / "audit.db", "SELECT ts, mail_id, step FROM events")
    return Counter((round(ts, 6), mail_id, step) for ts, mail_id, step in rows)


def _imported(root: Path) -> Counter[Event]:
    rows = query_read_only(
        root / "inner" / "audit.db", "SELECT ts, mail_id, step FROM events WHERE agent = 'outer'"
    )
    return Counter((round(ts, 6), mail_id, step) for ts, mail_id, step in rows)


def _send(stack: InboundStack, tokens: list[str]) -> None:
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(stack.send, [simple_mail(t) for t in tokens]))


def _kill9_outer(stack: InboundStack) -> None:
    """kill -9 of the outer agent's main process; its SMTP acceptor processes notice and exit
    (until then they hold the port, and a new agent would share it with a dying one)."""
    stack.outer.kill9()
    wait_for(lambda: not port_open(stack.ports.smtp), 30, "the killed agent's acceptors to exit")


def _main_running(root: Path) -> int:
    """How often the outer agent's main process has said it runs (once per start)."""
    log = (root / "outer.log").read_text(encoding="utf-8", errors="replace")
    return sum(1 for line in log.splitlines()
               if "maildiode-outer " in line and "outer agent running" in line)  # fmt: skip


def _stack(root: Path, interval_s: int = INTERVAL_S) -> InboundStack:
    (root / "outer/spool/inbound/quarantine").mkdir(parents=True)
    (root / "outer/spool/inbound/quarantine/old-mail").write_bytes(b"kept as evidence")
    (root / "outer/spool/outbound/quarantine").mkdir(parents=True)
    (root / "outer/spool/outbound/quarantine/bad-bundle").write_bytes(b"undecodable")
    return InboundStack(root, outer={("report", "interval_s"): str(interval_s)})


def test_reports_arrive_each_interval_and_outer_events_are_imported_once_across_kill_9(
    tmp_path: Path,
) -> None:
    root = tmp_path / "stack"
    with _stack(root) as stack:
        # The SMTP port opens in an acceptor process first; the main process (pipeline, link,
        # report) says when it runs, and its first report is made just before.
        wait_for(lambda: _main_running(root) >= 1, 120, "the outer agent's main process")
        running_at = time.time()
        wait_for(lambda: _latest(root) is not None, INTERVAL_S, "the first report")
        first = _latest(root)
        assert first is not None
        assert first.received_ms / 1000 <= running_at + LINK_SLACK_S  # at start, not later
        wait_for(lambda: len(_received(root)) >= 3, 3 * INTERVAL_S + LINK_SLACK_S, "more reports")
        arrivals = _received(root)
        # one report each interval: a gap of two intervals would mean one was skipped; the
        # link's slack on either end (the carrier's poll, the reader's) is allowed
        gap_s = INTERVAL_S + 2 * LINK_SLACK_S
        assert gap_s < 2 * INTERVAL_S
        assert max(b - a for a, b in itertools.pairwise(arrivals)) <= gap_s * 1000
        host = first.figures["host"]
        assert host["memory_total"] > 0
        assert host["disk_total"] > 0
        assert host["uptime_s"] > 0
        assert host["cpu_count"] >= 1
        assert host["cpu_percent"] is not None
        assert first.figures["spool"]["quarantine"] == 1  # the files put there before start
        assert first.figures["delivery"]["quarantine"] == 1
        assert first.figures["link"]["receiver"]["stream"] == "outbound"

        tokens = [f"report-{n:02d}" for n in range(18)]
        cursor = root / "outer/spool/report-cursor.json"
        before = cursor.read_bytes() if cursor.exists() else None
        _send(stack, tokens[:6])
        stack.wait_tokens(tokens[:6], "report-", timeout_s=120)
        wait_for(lambda: _imported(root) == _outer_events(root), 6 * INTERVAL_S + 30,
                 "the first mails' outer events inside")  # fmt: skip
        # The crash window: killed after reports were published, before their cursor was
        # written. The restarted agent sends those events again; the inside keeps each once.
        _kill9_outer(stack)
        if before is None:
            cursor.unlink()
        else:
            cursor.write_bytes(before)
        stack.outer.start(wait_port=stack.ports.smtp)
        _send(stack, tokens[6:12])
        _kill9_outer(stack)  # and once more at a random moment, mid-stream
        stack.outer.start(wait_port=stack.ports.smtp)
        _send(stack, tokens[12:])
        stack.wait_tokens(tokens, "report-", timeout_s=120)
        wait_for(lambda: _imported(root) == _outer_events(root), 6 * INTERVAL_S + 30,
                 "every outer audit event inside")  # fmt: skip
        carried = query_read_only(root / "inner/reports.db", "SELECT SUM(events) FROM reports")
        assert carried[0][0] > sum(_outer_events(root).values())  # some were sent twice
        imported = _imported(root)
        assert max(imported.values()) == 1  # each event once
        steps = Counter(step for _, _, step in imported)
        assert steps["received"] >= len(tokens)
        assert steps["published"] >= len(tokens)
        latest = _latest(root)
        assert latest is not None
        assert latest.figures["link"]["sender"]["last_seq"] >= len(tokens)
        # a restarted agent reports under a new epoch (a start killed before its link end
        # was opened takes none, so not necessarily two more)
        assert latest.figures["link"]["sender"]["epoch"] > first.figures["link"]["sender"]["epoch"]
        # the outer agent's signed checkpoints came with its events and are kept inside
        # (each restart's first upkeep pass signs one); its log holds against them
        kept = query_read_only(root / "inner" / "audit.db",
                               "SELECT event_id FROM checkpoints WHERE agent = 'outer'")  # fmt: skip
        assert steps["audit_checkpoint"] == len(kept) >= 1
        verified = subprocess.run(
            [sys.executable, "-m", "maildiode", "audit", "verify", "-c", str(root / "outer.toml"),
             "--against", str(root / "inner" / "audit.db")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert verified.returncode == 0, verified.stdout + verified.stderr
        assert f"{len(kept)} signed checkpoint(s) agree" in verified.stdout


def test_with_the_link_cut_status_calls_the_report_stale_with_its_age(tmp_path: Path) -> None:
    root = tmp_path / "stack"
    with _stack(root, interval_s=1) as stack:
        wait_for(lambda: _latest(root) is not None, 1 + LINK_SLACK_S, "the first report")
        code, status, text = _status(root)
        assert status["outer_report"]["state"] == "fresh"
        assert "STALE" not in text
        stack.carrier.stop()  # the link is cut: the outer agent goes on reporting into it
        time.sleep(3 * 1 + 2)
        asked = time.monotonic()
        code, status, text = _status(root)
        between = time.monotonic() - asked  # the JSON run comes first, the text run after it
        found = status["outer_report"]
        assert found["state"] == "stale"
        assert found["age_s"] > 3
        said = re.search(r"STALE: +the last report is (\d+) s old, over 3 intervals \(3 s\)", text)
        assert said is not None, text
        # its age, in words: no newer report can come through the cut link, so the text run's
        # age is the JSON run's plus the time between them (seconds under load; rounding: 1 s)
        assert found["age_s"] - 1 <= int(said.group(1)) <= found["age_s"] + between + 1
        assert code == 1
