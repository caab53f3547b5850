"""The console's data: the mail index over 1,000,000 audit events, beside the command line.

    .venv/bin/python tests/benchmarks/bench_console.py [--events N] [--runs R] [--no-write]

Builds a generated audit store (tests/support/auditgen.py: both agents' events for mails in
both directions, Korean subjects, about 6.5 events per mail), indexes it from scratch with
``MailIndex.catch_up``, then asks five questions, each ``--runs`` times with different values
(a different word, sender, month...), and reports the median and the 95th percentile:

* list: the first page of mails, newest first;
* subject word: ``q=<word>`` (free text: subject, addresses, attachment names, id);
* sender: ``sender=<address>``;
* date range + outcome: one month, one outcome;
* statistics: mails per month and sender domain over the last twelve months.

Then the console's own answers to the first two and to a statistics page, through the web
listener's app (sign-in session or bearer token checked by the gate, the page rendered, the
JSON written; Starlette's test client, no network): ``GET /mail``, ``GET /mail?q=<word>``,
``GET /api/v1/mail?q=<word>``, ``GET /stats?by=month&group=sender-domain&since=<a year
ago>`` (as the index's statistics question).

Beside each index question, the same question put to the ``maildiode audit`` / ``maildiode stats`` command
path (``AuditLog.query`` and ``agentkit.stats.tally``) on the same store in the same run, three
times. The command path answers with events, not mails, and has no "newest first": its
"list" is the events of the newest day. Target: p95 < 300 ms for every index question; the
run exits 1 when one misses. The figures go into the "## Console data" section of
docs/performance.md (unless --no-write).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agentkit.audit import AuditLog  # noqa: E402
from agentkit.mailindex import MailIndex, MailQuery, StatsQuery  # noqa: E402
from agentkit.readonly import query_read_only  # noqa: E402
from agentkit.stats import tally  # noqa: E402
from tests.support import auditgen  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

EVENTS = 1_000_000  # the store
RUNS = 20  # per index question: the 95th percentile of 20 is the second slowest
COMMAND_RUNS = 3  # the command path takes seconds per question
TARGET_MS = 300.0
SEOUL = ZoneInfo("Asia/Seoul")
DAY = 86400.0
OUTCOME_STEPS = {"quarantined": "quarantined", "held": "held", "rejected": "rejected",
                 "blocked": "blocked", "bounced": "bounced"}  # fmt: skip


class Questions:
    """The five questions, each with a value per run, put to both paths."""

    def __init__(self, index: MailIndex, log: AuditLog, newest: float, runs: int) -> None:
        self.index, self.log, self.newest = index, log, newest
        world = auditgen.World(random.Random(auditgen.SEED))  # the generator's own people
        rng = random.Random(1)
        self.words = [rng.choice(auditgen.WORDS) for _ in range(runs)]
        self.senders = [rng.choice(world.outsiders) for _ in range(runs)]
        self.months = [newest - (n % 20 + 1) * 30 * DAY for n in range(runs)]
        self.outcomes = [list(OUTCOME_STEPS)[n % len(OUTCOME_STEPS)] for n in range(runs)]

    def table(self) -> list[tuple[str, Callable[[int], Any], str, Callable[[int], Any]]]:
        """(question, index call, the command line's call, command call) per question."""
        year = self.newest - 365 * DAY
        return [
            ("list: first page, newest first", self.list_page,
             "audit --since <newest day>", lambda n: self.log.query(since=self.newest - DAY)),
            ("search: a subject word (q)", self.by_word,
             "audit --search WORD --trail",
             lambda n: self.log.query(search=self.words[n], trail=True)),
            ("search: a sender", self.by_sender,
             "audit --search SENDER --trail",
             lambda n: self.log.query(search=self.senders[n], trail=True)),
            ("date range (30 days) + outcome", self.by_month_and_outcome,
             "audit --since --until --step",
             lambda n: self.log.query(since=self.months[n], until=self.months[n] + 30 * DAY,
                                      step=OUTCOME_STEPS[self.outcomes[n]])),
            ("statistics: month x sender domain, 12 months", self.stats,
             "stats --by month --group sender-domain --since",
             lambda n: tally(self.log.query(since=year), period="month", group="sender-domain",
                             zone=SEOUL)),
        ]  # fmt: skip

    def list_page(self, n: int) -> Any:
        return self.index.search(MailQuery(), SEOUL)

    def by_word(self, n: int) -> Any:
        return self.index.search(MailQuery(q=self.words[n]), SEOUL)

    def by_sender(self, n: int) -> Any:
        return self.index.search(MailQuery(sender=self.senders[n]), SEOUL)

    def by_month_and_outcome(self, n: int) -> Any:
        month = self.months[n]
        query = MailQuery(since=month, until=month + 30 * DAY, outcomes=(self.outcomes[n],))
        return self.index.search(query, SEOUL)

    def stats(self, n: int) -> Any:
        since = self.newest - 365 * DAY - n * DAY  # a different year's window each run
        filters = MailQuery(since=since)
        return self.index.statistics(StatsQuery("month", "sender-domain", SEOUL, filters))


class ConsoleQuestions:
    """The console's pages and API over the same store, as an administrator and a script."""

    def __init__(self, work: Path, audit_path: Path, words: list[str], newest: float) -> None:
        from inner_agent.console.data import ConsoleData
        from inner_agent.console.places import ConsolePlaces
        from inner_agent.outbound.web import create_app
        from inner_agent.web.config import ConsoleSection
        from inner_agent.webproc.site import build_listener
        from tests.support.console import ADMIN, ALL_PASSWORDS, browser, sign_in
        from tests.support.outbound import access_log, build_workflow

        parts = build_workflow(work / "site")
        parts.directory.accounts.add(ADMIN, "admin", ALL_PASSWORDS[ADMIN])
        data = ConsoleData(ConsolePlaces(audit_path=audit_path), zone=SEOUL, language="ko")
        self.listener = build_listener(
            parts.section, ConsoleSection(), parts.directory, parts.audit, access_log(parts),
            secret=parts.secret, clock=parts.clock, data=data,
            on_csrf_refusal=parts.workflow.desk.note_csrf_refusal)  # fmt: skip
        app = create_app(parts.workflow.desk, self.listener)
        self.page, self.script = browser(app), browser(app)
        sign_in(self.page, ADMIN)
        token = self.listener.tokens.create(ADMIN)[1]
        self.script.headers["Authorization"] = f"Bearer {token}"
        self.words = words
        self.since = [time.strftime("%Y-%m-%d", time.gmtime(newest - (365 + n) * DAY))
                      for n in range(len(words))]  # fmt: skip

    def table(self) -> list[tuple[str, Callable[[int], Any]]]:
        return [
            ("page: GET /mail (first page)", lambda n: self._ok(self.page.get("/mail"))),
            ("page: GET /mail?q=WORD",
             lambda n: self._ok(self.page.get("/mail", params={"q": self.words[n]}))),
            ("API: GET /api/v1/mail?q=WORD",
             lambda n: self._ok(self.script.get("/api/v1/mail", params={"q": self.words[n]}))),
            ("page: GET /stats?by=month&group=sender-domain&since=<a year ago>",
             lambda n: self._ok(self.page.get("/stats", params={
                 "by": "month", "group": "sender-domain", "since": self.since[n]}))),
        ]  # fmt: skip

    @staticmethod
    def _ok(response: Any) -> Any:
        if response.status_code != 200:
            raise RuntimeError(f"the console answered {response.status_code}")
        return response

    def close(self) -> None:
        self.listener.close()


def timed(call: Callable[[int], Any], runs: int) -> list[float]:
    """Milliseconds of each run (run n gets value n)."""
    call(0)  # warm: the first question after a build reads pages the build already cached
    spent = []
    for n in range(runs):
        started = time.perf_counter()
        call(n)
        spent.append((time.perf_counter() - started) * 1000)
    return spent


def p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20, method="inclusive")[-1]


def measure(work: Path, events: int, runs: int) -> dict[str, Any]:
    path = work / "audit.db"
    load = os.getloadavg()[0]  # the machine is shared: how busy it was is part of the figure
    started = time.perf_counter()
    auditgen.build_store(path, events)
    built_s = time.perf_counter() - started
    index = MailIndex(path)
    started = time.perf_counter()
    index.catch_up()
    indexed_s = time.perf_counter() - started
    log = AuditLog(path)
    ((newest,),) = query_read_only(path, "SELECT MAX(ts) FROM events")
    mails = index.search(MailQuery(limit=1), SEOUL)["total"]
    results = []
    for question, ours, command, theirs in Questions(index, log, newest, runs).table():
        index_ms = timed(ours, runs)
        command_ms = timed(theirs, COMMAND_RUNS)
        results.append((question, statistics.median(index_ms), p95(index_ms), command,
                        statistics.median(command_ms), max(command_ms)))  # fmt: skip
        print(f"{question:46s} index p50 {results[-1][1]:7.1f} ms p95 {results[-1][2]:7.1f} ms"
              f" | {command}: p50 {results[-1][4]:8.0f} ms max {results[-1][5]:8.0f} ms",
              flush=True)  # fmt: skip
    console = ConsoleQuestions(work, path, Questions(index, log, newest, runs).words, newest)
    for question, call in console.table():
        console_ms = timed(call, runs)
        results.append((question, statistics.median(console_ms), p95(console_ms), "", 0.0, 0.0))
        print(f"{question:46s} console p50 {results[-1][1]:7.1f} ms p95 {results[-1][2]:7.1f} ms",
              flush=True)  # fmt: skip
    console.close()
    sizes = {p.name: p.stat().st_size for p in work.iterdir() if p.suffix == ".db"}
    log.close()
    index.close()
    return {"events": events, "mails": mails, "built_s": built_s, "indexed_s": indexed_s,
            "results": results, "sizes": sizes, "load": (load, os.getloadavg()[0])}  # fmt: skip


def report(figures: dict[str, Any], runs: int) -> str:
    events, mails = figures["events"], figures["mails"]
    lines = [
        f"`tests/benchmarks/bench_console.py`, {time.strftime('%Y-%m-%d')}, "
        f"{platform.system()} {platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} cores (shared; load average {figures['load'][0]:.1f} at the start, "
        f"{figures['load'][1]:.1f} at the end), SQLite {__import__('sqlite3').sqlite_version}. "
        f"A generated store of {events:,} audit events ({mails:,} mails, "
        f"{events / max(mails, 1):.1f} events per mail, both directions, both agents, Korean "
        f"subjects: tests/support/auditgen.py) built in "
        f"{figures['built_s']:.0f} s; the mail index built from it by catch-up in "
        f"{figures['indexed_s']:.0f} s ({events / figures['indexed_s']:,.0f} events/s). "
        f"Audit log {figures['sizes'].get('audit.db', 0) / 1e6:.0f} MB, index "
        f"{figures['sizes'].get('audit-index.db', 0) / 1e6:.0f} MB.",
        "",
        f"Each index question {runs} times with a different value (word, sender, month, "
        f"outcome, window); the command line's the same question {COMMAND_RUNS} times, on the "
        "same store in the same run.",
        "",
        "| question | index p50 | index p95 | command line | its p50 | its max |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for question, p50, p95_ms, command, c50, cmax in figures["results"]:
        if not command:  # the console's own answer: no command line beside it
            lines.append(f"| {question} | {p50:.0f} ms | {p95_ms:.0f} ms | (the console) | | |")
            continue
        lines.append(f"| {question} | {p50:.0f} ms | {p95_ms:.0f} ms | `maildiode {command}` | "
                     f"{c50:,.0f} ms | {cmax:,.0f} ms |")  # fmt: skip
    lines += [
        "",
        'The rows "page:" and "API:" are the console\'s own answers through the web '
        "listener's app (the gate's session or token check, the page rendered or the JSON "
        "written; Starlette's test client, no network), on the same store, as an "
        "administrator.",
        "",
        f"Target: p95 below {TARGET_MS:.0f} ms for every index question and every console "
        "answer (issue 16). The command "
        "line answers with events rather than mails and cannot page newest first; its list is "
        "the newest day's events. It is fast where an index of the audit log answers (time, "
        "step) and slow where it must read every event's details (a search, statistics).",
        "",
        "How the index answers: a list filtered by time, direction or outcome only walks an "
        "index (`mails_time`, `mails_outcome`) and stops after the page; any other filter is "
        "one pass over the rows (`instr` over case-folded columns, about 50 ms per 150,000 "
        "mails here) collecting the matches' time and id, which give the total and the newest "
        "page (past 100,000 matches SQL counts and sorts instead). Statistics read a covering "
        "index "
        "(`mails_stats`), count local days per group in Python and roll the days up into "
        "months. An FTS5 trigram index was measured for free text: 1-10 ms for selective "
        "words against 40-60 ms for the pass, but no help for one- and two-syllable Korean "
        "words (under three characters) and a second structure to keep in step; at this size "
        "the pass is within the target with room, so it was not kept (docs/decisions.md).",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=EVENTS, help="audit events to generate")
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per index question")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    options = parser.parse_args()
    base = ROOT / "bench-out"
    base.mkdir(exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="console-", dir=base))
    started = time.perf_counter()
    try:
        figures = measure(work, options.events, options.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"built {figures['built_s']:.0f} s, indexed {figures['indexed_s']:.0f} s, "
          f"whole run {time.perf_counter() - started:.0f} s")  # fmt: skip
    if not options.no_write:
        replace_section(f"## Console data\n\n{report(figures, options.runs)}\n")
    missed = [q for q, _, p95_ms, *_ in figures["results"] if p95_ms >= TARGET_MS]
    print(
        f"every index question and console answer p95 < {TARGET_MS:.0f} ms: {'yes' if not missed else 'NO'}"
    )
    for question in missed:
        print(f"  missed: {question}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
