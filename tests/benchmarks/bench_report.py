"""Status report benchmark: what one report costs each agent (docs/protocol.md §16.4).

The outer agent's side: ``StatusReporter.publish_once`` with a real protocol Sender publishing
into a folder (fsync and all), the host figures from /proc, a spool and a delivery queue with
mail in them, and an audit log of a busy day; once with no new events (the steady state of a
quiet link: one report per interval) and once with a full report (200 events, the catch-up of
a backlog). The inner agent's side: ``ControlHandler`` on that full report (strict decoding,
the import of its 200 events, the store). CPU time of the process, median of ROUNDS.

Lines: a quiet report costs the outer agent under 10 ms of CPU (at the default 30 s interval,
0.03 % of one core: nothing the mail path can measure), a full one under 60 ms, and the inner
agent handles a full one in under 60 ms (so a catch-up of one report a second stays under a
tenth of a core on each side).

Run: ``.venv/bin/python tests/benchmarks/bench_report.py``. Writes the "## Status report"
section of docs/performance.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agentkit.audit import AuditLog  # noqa: E402
from agentkit.control import MAX_EVENTS_PER_REPORT  # noqa: E402
from agentkit.hostfigures import HostSampler  # noqa: E402
from inner_agent.reports import ControlHandler, ReportStore  # noqa: E402
from outer_agent.delivery import DeliveryQueue, OutboundItem  # noqa: E402
from outer_agent.report import ReportCursor, ReportSources, StatusReporter  # noqa: E402
from protocol import FolderTransport, Kind, ReceivedBundle, Sender, SigningKey  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

ROUNDS = 21
AUDIT_EVENTS = 30_000  # a busy day of the outer agent: 10 000 mails, three events each
SPOOL_MAILS = 200  # a backlog waiting to be rendered
QUEUED_OUTBOUND = 20
QUIET_LINE_MS = 10.0
FULL_LINE_MS = 60.0
INNER_LINE_MS = 60.0
INTERVAL_S = 30


def _cpu_ms(action: Callable[[], object]) -> float:
    started = time.process_time()
    action()
    return (time.process_time() - started) * 1000


def _outer(root: Path) -> tuple[StatusReporter, AuditLog, Sender]:
    audit = AuditLog(root / "audit.db", agent="outer")
    for n in range(AUDIT_EVENTS):
        audit.record(f"01JGZ8Q2M3N4P5Q6R7S8T{n:05d}", "received", bundle_id="ab" * 16,
                     mail_from="kim@partner.example", rcpts=["lee@corp.example"], rcpt_count=1,
                     bytes=18231, client="203.0.113.9", helo="mx.partner.example", tls=True)  # fmt: skip
    received = root / "spool/inbound/received"
    received.mkdir(parents=True)
    for n in range(SPOOL_MAILS):
        (received / f"m{n}.0").write_bytes(b"x" * 4096)
    queue = DeliveryQueue(root / "spool/outbound")
    for n in range(QUEUED_OUTBOUND):
        queue.store(OutboundItem(f"o{n}", n.to_bytes(16, "big"), "a@corp.example",
                                 ("x@ext.example",), ["x@ext.example"], b"m" * 20_000,
                                 first_seen=time.time() - 60, attempts=n % 2))  # fmt: skip
    sender = Sender(root / "sender", "inbound", SigningKey.generate(),
                    FolderTransport(root / "link/send"))  # fmt: skip
    sources = ReportSources(HostSampler(root), root / "spool/inbound", root / "spool/outbound",
                            sender, None, audit)  # fmt: skip
    reporter = StatusReporter(sources, ReportCursor(root / "spool/cursor.json"),
                              interval_s=INTERVAL_S)  # fmt: skip
    return reporter, audit, sender


def measure(root: Path) -> dict[str, float]:
    reporter, audit, sender = _outer(root)
    full, bundles = [], []
    published: list[bytes] = []
    original = sender.publish

    def keep(bundle: bytes, bundle_id: bytes, kind: Kind = Kind.DATA) -> object:
        published.append(bundle)
        return original(bundle, bundle_id, kind)

    sender.publish = keep  # type: ignore[method-assign]
    for _ in range(ROUNDS):  # each takes the next 200 events of the backlog
        full.append(_cpu_ms(reporter.publish_once))
        bundles.append(len(published[-1]))
    reporter._last_event_id = audit.last_id()  # caught up: the quiet reports that follow
    quiet = [_cpu_ms(reporter.publish_once) for _ in range(ROUNDS)]
    quiet_bytes = len(published[-1])
    inner = []
    for round_ in range(ROUNDS):
        store = ReportStore(root / f"inner-{round_}/reports.db")
        handler = ControlHandler(store, AuditLog(root / f"inner-{round_}/audit.db", agent="inner"))
        bundle = ReceivedBundle("inbound", 1, b"r" * 16, Kind.CONTROL, published[round_],
                                int(time.time() * 1000), 1)  # fmt: skip
        inner.append(_cpu_ms(lambda h=handler, b=bundle: h(b)))  # type: ignore[misc]
    sender.close()
    return {
        "quiet_ms": statistics.median(quiet), "full_ms": statistics.median(full),
        "inner_ms": statistics.median(inner), "quiet_bytes": quiet_bytes,
        "full_bytes": statistics.median(bundles),
    }  # fmt: skip


def report(figures: dict[str, float]) -> str:
    share = figures["quiet_ms"] / (INTERVAL_S * 1000) * 100
    return "\n".join(
        [
            f"{ROUNDS} reports each, median CPU time of the process; the outer agent's audit log "
            f"holds {AUDIT_EVENTS} events, its spool {SPOOL_MAILS} mails, its delivery queue "
            f"{QUEUED_OUTBOUND}; a full report carries {MAX_EVENTS_PER_REPORT} events:",
            "",
            "| figure | value | line |",
            "| --- | --- | --- |",
            f"| outer: a quiet report (no new events), CPU ms | {figures['quiet_ms']:.1f} | "
            f"< {QUIET_LINE_MS:.0f} |",
            f"| outer: its share of one core at the default {INTERVAL_S} s interval | "
            f"{share:.3f} % | - |",
            f"| outer: a full report (200 events), CPU ms | {figures['full_ms']:.1f} | "
            f"< {FULL_LINE_MS:.0f} |",
            f"| inner: decoding, importing and storing a full report, CPU ms | "
            f"{figures['inner_ms']:.1f} | < {INNER_LINE_MS:.0f} |",
            f"| bytes of a quiet / full report | {figures['quiet_bytes']:.0f} / "
            f"{figures['full_bytes']:.0f} | - |",
        ]
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-report-") as folder:
        figures = measure(Path(folder))
    problems = []
    for key, line, what in (("quiet_ms", QUIET_LINE_MS, "a quiet report"),
                            ("full_ms", FULL_LINE_MS, "a full report"),
                            ("inner_ms", INNER_LINE_MS, "the inner side")):  # fmt: skip
        if figures[key] >= line:
            problems.append(f"{what} costs {figures[key]:.1f} ms")
    text = (
        report(figures)
        + "\n\nResult of this run: "
        + ("all targets met." if not problems else "BELOW TARGET: " + "; ".join(problems) + ".")
    )
    print(text)
    if not args.no_doc:
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        replace_section(
            f"## Status report\n\n`tests/benchmarks/bench_report.py` ({stamp}):\n\n{text}\n"
        )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
