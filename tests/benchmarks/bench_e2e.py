"""End to end: mails/s and latency from the outer agent's SMTP 250 to the notification accepted
by Postfix, beside the bare rendering ceiling measured in the same run.

* ceiling: ``mailsafe.render.render_message`` + ``encode_package`` of the same mails in as many
  worker processes as the outer agent has (no SMTP, spool, link, inner agent or Postfix);
* throughput: a burst of typical HTML mails sent by Postfix's ``smtp-source`` over 8 concurrent
  SMTP sessions (a real client that costs little CPU: the load generator shares the cores)
  through the whole path (outer agent -> carrier -> inner agent -> Postfix on loopback), from
  the first 250 to the last notification Postfix accepted;
* latency: mails paced at half the measured end-to-end rate; per mail, the outer agent's
  ``received`` audit event (written when it answers 250) to the inner agent's ``injected`` event
  (written when Postfix answered 250 to the notification);
* the same throughput for a mix of typical mails (HTML, plain text, a PDF attachment).

The line of the inbound issue (end to end at least 0.60 of the rendering ceiling) was withdrawn
by issue 14: it compared the whole path with the renderer alone, so every speed-up of rendering
lowered it. The ratio is still printed, for reference; what the agents cost is judged against
Postfix in bench_agents.py. The line here is the latency's: p99 under 2 s at half the rate.

Run: ``.venv/bin/python tests/benchmarks/bench_e2e.py``. Writes "## End to end" of
docs/performance.md.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from agentkit.readonly import query_read_only  # noqa: E402
from maildiode.trial.stack import wait_for  # noqa: E402
from mailsafe.render.pool import tune_allocator  # noqa: E402
from tests.support.inbound import DOMAIN, InboundStack  # noqa: E402
from tests.support.mailmaker import newsletter_html  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402
from tests.support.proccpu import cmdline, descendants, snapshot, thread_cpu  # noqa: E402

RENDER_PROCESSES = 2  # the target machine has 2 cores
# Mails per throughput burst. The figure runs from the first 250 to the last notification, so
# it includes filling and draining the pipeline (one mail's latency, ~0.3 s): with 120 mails
# that was a tenth of the run; at 360 it weighs about 4 %.
BURST_MAILS = 360
CLIENTS = 8  # concurrent SMTP clients during the burst
LATENCY_SECONDS = 25.0  # how long mails are paced at half the end-to-end rate
# Mails per ceiling measurement: 60 (under a second) swung by ±15 % within one run.
CEILING_MAILS = 180
WARM_UP_MAILS = 8  # every kind of mail, in every worker, before timing
# The inbound issue's line (e2e >= 60 % of the bare rendering ceiling), withdrawn by issue 14:
# shown for reference, not judged.
REFERENCE_RATIO = 0.60
TARGET_P99_S = 2.0


def html_mail(number: int) -> bytes:
    """A typical newsletter-style HTML mail: headings, a table, Korean and English text."""
    html = newsletter_html(number)
    message = _message(number, f"월간 소식 {number}")
    message.set_content(html, subtype="html", cte="quoted-printable")
    return message.as_bytes(policy=SMTP)


def text_mail(number: int) -> bytes:
    message = _message(number, f"회의 일정 {number}")
    message.set_content("안녕하세요.\n다음 주 회의 일정을 알려 드립니다.\n" * 10)
    return message.as_bytes(policy=SMTP)


def pdf_mail(number: int) -> bytes:
    from maildiode.demo.samples import quote_pdf

    message = _message(number, f"견적서 {number}")
    message.set_content("견적서를 첨부합니다.")
    message.add_attachment(quote_pdf(), maintype="application", subtype="pdf", filename="q.pdf")
    return message.as_bytes(policy=SMTP)


def _message(number: int, subject: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = "뉴스레터 <news@ext.example>"
    message["To"] = f"user@{DOMAIN}"
    message["Subject"] = subject
    message["Message-ID"] = f"<bench-{number}@ext.example>"
    return message


def mixed_load(count: int) -> list[tuple[bytes, int]]:
    """Half HTML newsletters, a quarter plain text, a quarter with a PDF attachment."""
    return [(html_mail(10_000), count // 2), (text_mail(10_001), count // 4),
            (pdf_mail(10_002), count - count // 2 - count // 4)]  # fmt: skip


# --------------------------------------------------------------------------- ceiling


def _render_one(raw: bytes) -> int:
    from mailsafe.payload import encode_package
    from mailsafe.render import RenderOptions, render_message

    return len(encode_package(render_message(raw, RenderOptions())))


def laid_out_ceiling(raw: bytes) -> float:
    """The rendering benchmark's stricter ceiling for ``raw`` (bench_render.py, issue 3): only
    rasterising and encoding its pages, already laid out (no MIME parsing, HTML composition,
    layout, text layer or package), 2 processes. Shown for reference beside the target's."""
    from tests.benchmarks import bench_render
    from tests.benchmarks.bench_render import OPTIONS, compose, parse_message

    composed = compose(parse_message(raw), OPTIONS).html
    rate, _pages = bench_render.ceiling(("html", composed, 0.0), CEILING_MAILS)
    return rate


def ceiling(mails: list[bytes]) -> float:
    context = multiprocessing.get_context("forkserver")
    # The same allocator settings as the outer agent's render workers (tune_allocator).
    with context.Pool(RENDER_PROCESSES, initializer=tune_allocator) as pool:
        pool.map(_render_one, mails[:WARM_UP_MAILS], chunksize=1)  # imports, fonts, each kind
        started = time.perf_counter()
        pool.map(_render_one, mails, chunksize=1)
        return len(mails) / (time.perf_counter() - started)


# --------------------------------------------------------------------------- end to end


def _send(port: int, raw: bytes) -> None:
    with smtplib.SMTP("127.0.0.1", port, timeout=60) as client:
        client.sendmail("news@ext.example", [f"user@{DOMAIN}"], raw)


def _events(path: Path, step: str, since: float) -> dict[str, float]:
    """First ``step`` event per mail since ``since``; {} while the agent has not created its log
    (read-only, so polling never creates an empty file the agent would then find)."""
    return dict(query_read_only(
        path,
        "SELECT mail_id, MIN(ts) FROM events WHERE step = ? AND ts >= ? GROUP BY mail_id",
        (step, since),
    ))  # fmt: skip


def injected_since(stack: InboundStack, since: float) -> dict[str, float]:
    """Mail id -> when the internal server took its notification, for mails since ``since``."""
    return _events(stack.root / "inner" / "audit.db", "injected", since)


def _received(stack: InboundStack, since: float) -> dict[str, float]:
    return _events(stack.root / "outer" / "audit.db", "received", since)


def smtp_source(port: int, raw: bytes, count: int, sessions: int, folder: Path) -> None:
    """Postfix's ``smtp-source`` sends ``raw`` ``count`` times over ``sessions`` connections: a
    real SMTP client whose own CPU is small (the load generator shares the 2 cores)."""
    path = folder / f"mail-{hashlib.sha256(raw).hexdigest()[:16]}.eml"
    path.write_bytes(raw.replace(b"\r\n", b"\n"))  # smtp-source appends CRLF to each line
    command = ["smtp-source", "-s", str(sessions), "-m", str(count), "-F", str(path),
               "-f", "news@ext.example", "-t", f"user@{DOMAIN}", f"127.0.0.1:{port}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"smtp-source failed: {done.stderr.strip()}")


def burst(stack: InboundStack, load: list[tuple[bytes, int]]) -> float:
    """``load``: (mail, how many times); one smtp-source per mail, CLIENTS sessions in all."""
    mails = [raw for raw, count in load for _ in range(count)]
    since = time.time()
    with (
        tempfile.TemporaryDirectory(prefix="bench-e2e-load-") as folder,
        ThreadPoolExecutor(len(load)) as pool,
    ):
        share = max(1, CLIENTS // len(load))
        jobs = [pool.submit(smtp_source, stack.ports.smtp, raw, count, share, Path(folder))
                for raw, count in load]  # fmt: skip
        for job in jobs:
            job.result()
    wait_for(lambda: len(injected_since(stack, since)) >= len(mails), 300, "the burst's notifications",
             step_s=0.2)  # fmt: skip
    received = _received(stack, since)
    injected = sorted(injected_since(stack, since).values())
    # Also the output rate once the pipeline is full (first to last notification), which leaves
    # out the fill time (one mail's latency): printed beside the figure, not used for the target.
    steady = (len(injected) - 1) / (injected[-1] - injected[0])
    whole = len(mails) / (injected[-1] - min(received.values()))
    print(f"  burst of {len(mails)}: {whole:.2f} mails/s from the first 250 to the last "
          f"notification; {steady:.2f} mails/s first to last notification")  # fmt: skip
    return whole


# --------------------------------------------------------------------------- CPU per component


def cpu_by_component(stack: InboundStack) -> dict[str, float]:
    table = snapshot()
    outer, inner = stack.outer.process.pid, stack.inner.process.pid  # type: ignore[union-attr]
    master = int((stack.postfix.queue_dir / "pid" / "master.pid").read_text().split()[0])
    children = descendants(table, [outer]) - {outer}
    workers = {p for p in children if b"mailsafe.render.pool" in cmdline(p)}
    carrier = thread_cpu(getattr(getattr(stack.carrier, "_thread", None), "native_id", None))
    groups = {
        "render workers": workers,
        "outer agent (incl. its SMTP acceptor process)": {outer} | (children - workers),
        "inner agent": descendants(table, [inner]),
        "Postfix": descendants(table, [master]),
        "load generator (smtp-source, this script)": {os.getpid()},
    }
    cpu = {name: sum(table[p].total_s for p in pids if p in table) for name, pids in groups.items()}
    cpu["load generator (smtp-source, this script)"] -= carrier
    cpu["carrier (the linkage's stand-in, a thread here)"] = carrier
    return cpu


def paced(stack: InboundStack, rate: float, seconds: float, start: int) -> list[float]:
    since = time.time()
    count = int(rate * seconds)
    senders: list[threading.Thread] = []
    for index in range(count):
        due = since + index / rate
        time.sleep(max(0.0, due - time.time()))
        thread = threading.Thread(target=_send, args=(stack.ports.smtp, html_mail(start + index)))
        thread.start()
        senders.append(thread)
    for thread in senders:
        thread.join()
    wait_for(
        lambda: len(injected_since(stack, since)) >= count, 120, "paced notifications", step_s=0.2
    )
    received, injected = _received(stack, since), injected_since(stack, since)
    return sorted(injected[m] - received[m] for m in injected if m in received)


def percentile(values: list[float], fraction: float) -> float:
    return values[min(len(values) - 1, round(fraction * (len(values) - 1)))]


_EXPLANATION = """\
CPU time per mail during the HTML burst, by component (from /proc, same run):

| component | CPU ms per mail |
| --- | --- |
{cpu_rows}

**Why the ratio is what it is.** On 2 cores everything competes for the same CPU, so even with
every stage overlapped the end-to-end rate is at most 2 cores / (sum of the rows above), while
the ceiling is 2 cores / (the render row alone). The "CPU bound" row of the first table is that
quotient: the best ratio this design can reach on a perfectly busy machine (measured rates
reach about 0.9 of it). Outside rendering the path costs {rest} ms per mail in this run:

- {theirs} ms are not ours: Postfix's smtpd/cleanup/qmgr/virtual taking the notification, the
  load generator, and the carrier standing in for the linkage product. With both agents at zero
  CPU the ratio could be at most the "bound if both agents cost no CPU" row.
- {ours} ms are the two agents (figures per process in this table include the outer agent's
  acceptor process; the agents' line is measured and judged in "Agents against Postfix").

**The ratio rewards a slower renderer.** Every speed-up of rendering lowers it, because it is
rendering's share of all the work; that is why issue 14 withdrew it as a line. The history,
each step measured on this machine:

| when | change | effect |
| --- | --- | --- |
| 11-22 | a build pool instead of one bundle at a time | ratio 0.23 -> 0.45 |
| 11-22 | notifications without the email package's object model | 3.7 -> 1.2 ms per mail |
| 11-22 | display lists instead of a PDF round trip (rendering 27 -> 18 ms) | rate +1/3, ratio 0.46 -> 0.39 |
| 11-23 | inner re-encodes plain PNG pages from inflated rows (D11); pipelined injection; fewer thread switches | inner agent 16 -> 7.5 ms, outer 6.5 -> 5.5; 38.6 -> 52.8 mails/s (ratio 0.47) |
| 11-23 | packages to the link in memory (D12); own header encoder; C base64; MAIL/RCPT parsing | both agents 12.3 -> ~11 ms |
| 12-02 | direct injection (D16); single-chunk bundles held in memory; intake segment renamed into the spool | CPU bound 0.57 -> 0.59 |
| 12-03 | render workers pinned to a CPU each | rendering -8 % CPU; ratio 0.52-0.56 at ~55 mails/s |
| 12-03 | our own PNG writer for page images (D17: 0.9 instead of 7.9 ms per page) | rendering -1/3 CPU; rate up, ratio 0.41-0.48 |

A measured rate below the CPU bound means a serial stage or waiting limited it, or the shared
machine was busy with other jobs (a ceiling measured while busy can be a third of one measured
while quiet, which is why it is measured right before and right after each end-to-end run, over
{ceiling_mails} mails each). Latency at half the rate is rendering one mail plus the carrier's
50 ms poll, an inotify-woken link scan (`link.settle_s = 0`, since the carrier renames files
into place), and up to 50 ms that the publisher waits for the packages rendered beside a mail
(group commit, D21).

"""


def write_doc(figures: dict[str, float]) -> None:
    section = f"""## End to end

Measured by `tests/benchmarks/bench_e2e.py` on {os.cpu_count()} cores, everything on one machine:
outer agent ({RENDER_PROCESSES} render workers), a carrier, the inner agent and a private
Postfix 3.7 on loopback. Ceiling: bare `render_message` + `encode_package` of the same mails in
{RENDER_PROCESSES} processes, measured in the same run right before and right after each end-to-end
run (the better of the two is kept, which makes the ratio stricter). Latency: from the outer agent's
`received` audit event (its SMTP 250) to the inner agent's `injected` event (Postfix's 250).

| measure | figure | ceiling / target | ratio |
| --- | --- | --- | --- |
| bare rendering ceiling, typical HTML mail | {figures["ceiling"]:.2f} mails/s | | 1.00 |
| end to end, typical HTML mail ({BURST_MAILS} mails, {CLIENTS} clients) | {figures["e2e_html"]:.2f} mails/s | {figures["ceiling"]:.2f} mails/s | {figures["e2e_html"] / figures["ceiling"]:.2f} (the withdrawn line: ≥ {REFERENCE_RATIO:.2f}) |
| end to end, mix (HTML, text, PDF attachment) | {figures["e2e_mix"]:.2f} mails/s | {figures["ceiling_mix"]:.2f} mails/s (mix ceiling) | {figures["e2e_mix"] / figures["ceiling_mix"]:.2f} |
| latency p50 at {figures["paced_rate"]:.2f} mails/s (half the e2e rate) | {figures["p50"]:.2f} s | | |
| latency p99 at {figures["paced_rate"]:.2f} mails/s | {figures["p99"]:.2f} s | {TARGET_P99_S:.1f} s | {figures["p99"] / TARGET_P99_S:.2f} of the limit |
| CPU bound: render CPU / all CPU per mail (best ratio on a dedicated machine) | | | {figures["cpu_bound"]:.2f} |
| bound if both agents cost no CPU at all: render / (render + the parts not ours) | | | {figures["bound_without_agents"]:.2f} |
| for reference: rasterise + encode only, pages already laid out (the rendering benchmark's stricter ceiling) | {figures["laid_out_ceiling"]:.2f} mails/s | | e2e HTML {figures["e2e_html"] / figures["laid_out_ceiling"]:.2f} |

The line judged here is the latency's (p99 under {TARGET_P99_S:.1f} s at half the rate). The ratio
to the rendering ceiling was the inbound issue's line; issue 14 withdrew it, because it
compared the whole path with the renderer alone and so fell with every speed-up of rendering.
It is kept for reference, against the first row: the whole of what the outer agent's workers
do per mail (parse, compose, lay out, rasterise, encode, package). The last row is the
rendering benchmark's ceiling for the same mail, which leaves out everything but rasterising
and encoding. What the two agents cost is judged against Postfix (section "Agents against
Postfix", bench_agents.py).

"""
    cpu_rows = "\n".join(
        f"| {name[4:]} | {value:.1f} |"
        for name, value in figures.items()
        if name.startswith("cpu:")
    )
    render = figures["cpu:render workers"]
    rest = sum(v for k, v in figures.items() if k.startswith("cpu:")) - render
    ours = sum(v for k, v in figures.items() if k.startswith(("cpu:outer", "cpu:inner")))
    explanation = _EXPLANATION.replace("{cpu_rows}", cpu_rows)
    explanation = explanation.replace("{rest}", f"{rest:.1f}")
    explanation = explanation.replace("{ours}", f"{ours:.1f}")
    explanation = explanation.replace("{theirs}", f"{rest - ours:.1f}")
    explanation = explanation.replace("{ceiling_mails}", str(CEILING_MAILS))
    section = section.rstrip("\n") + "\n\n" + explanation
    replace_section(section)


def bracketed(mails: list[bytes], run: Callable[[], float], name: str) -> tuple[float, float]:
    """``run()`` between two ceiling measurements of ``mails``: (figure, ceiling).

    The machine is shared, and background load moves within seconds, so the ceiling is measured
    right before and right after the end-to-end run and the better one kept (a higher ceiling
    only makes the ratio stricter)."""
    before = ceiling(mails[:CEILING_MAILS])
    figure = run()
    after = ceiling(mails[:CEILING_MAILS])
    print(f"{name}: {figure:.2f} mails/s; ceiling before / after {before:.2f} / {after:.2f}, "
          f"ratio {figure / max(before, after):.2f}")  # fmt: skip
    return figure, max(before, after)


def main() -> int:
    html = [(html_mail(0), BURST_MAILS)]
    mix = mixed_load(BURST_MAILS)
    html_ceiling = [html_mail(n) for n in range(CEILING_MAILS)]
    kinds = [raw for raw, _ in mix]
    mix_ceiling = [kinds[(0, 1, 0, 2)[n % 4]] for n in range(CEILING_MAILS)]  # each kind early
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="bench-e2e-") as folder:
        stack = InboundStack(Path(folder) / "stack", render_processes=RENDER_PROCESSES)
        with stack:
            burst(stack, [(html_mail(90_000), 4), *((raw, 1) for raw, _ in mix)])  # warm up
            before = cpu_by_component(stack)
            figures["e2e_html"], figures["ceiling"] = bracketed(
                html_ceiling, lambda: burst(stack, html), "end to end html"
            )
            after = cpu_by_component(stack)
            figures["laid_out_ceiling"] = laid_out_ceiling(html[0][0])
            print(f"rasterise+encode only (bench_render's ceiling): "
                  f"{figures['laid_out_ceiling']:.2f} mails/s, e2e ratio "
                  f"{figures['e2e_html'] / figures['laid_out_ceiling']:.2f}")  # fmt: skip
            for name in before:
                figures[f"cpu:{name}"] = (after[name] - before[name]) / BURST_MAILS * 1000
            print("CPU per mail: " + ", ".join(f"{n} {figures['cpu:' + n]:.1f} ms" for n in before))
            figures["e2e_mix"], figures["ceiling_mix"] = bracketed(
                mix_ceiling, lambda: burst(stack, mix), "end to end mix"
            )
            figures["paced_rate"] = figures["e2e_html"] / 2
            latencies = paced(stack, figures["paced_rate"], LATENCY_SECONDS, 50_000)
            figures["p50"], figures["p99"] = percentile(latencies, 0.5), percentile(latencies, 0.99)
            print(f"latency at {figures['paced_rate']:.2f} mails/s over {len(latencies)} mails: "
                  f"p50 {figures['p50']:.2f} s, p99 {figures['p99']:.2f} s (limit {TARGET_P99_S} s)")  # fmt: skip
    cpu_total = sum(v for k, v in figures.items() if k.startswith("cpu:"))
    figures["cpu_bound"] = figures["cpu:render workers"] / cpu_total
    agents = sum(v for k, v in figures.items() if k.startswith(("cpu:outer", "cpu:inner")))
    figures["bound_without_agents"] = figures["cpu:render workers"] / (cpu_total - agents)
    print(
        f"ratio html {figures['e2e_html'] / figures['ceiling']:.2f}, "
        f"mix {figures['e2e_mix'] / figures['ceiling_mix']:.2f}; "
        f"CPU bound (render CPU / all CPU per mail) {figures['cpu_bound']:.2f}; "
        f"with both agents at zero CPU {figures['bound_without_agents']:.2f}"
    )
    write_doc(figures)
    ok = figures["p99"] < TARGET_P99_S
    print("latency line met" if ok else "latency line NOT met")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
