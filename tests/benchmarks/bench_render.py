"""Render throughput through RenderPool beside the bare PyMuPDF rasterise-and-encode ceiling.

Run: ``.venv/bin/python tests/benchmarks/bench_render.py [--no-write]``. Writes the figures into
the "## Rendering" section of docs/performance.md.

Measured on the same machine in the same run, each with 2 processes (the 2 cores):
- ceiling: the pages of the same mail, already laid out into display lists (for HTML, as the
  renderer does) or as the PDF attachment, rasterised by PyMuPDF and encoded by the same
  encoder, in 2 bare processes; nothing else;
- pool: ``RenderPool(processes=2).render(raw)`` from 2 caller threads: parsing, sanitising,
  layout, rasterising, encoding, the package encode in the worker and the strict decode in the
  parent;
- Chromium: the same HTML mail through ``RenderPool`` with the Chromium backend, a fresh
  browser per mail (html2image; see docs/rendering.md on its CDP mode), and one browser kept
  alive per worker (Playwright).
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailsafe.mime import parse_message  # noqa: E402
from mailsafe.render.document import compose  # noqa: E402
from mailsafe.render.encode import encode_image  # noqa: E402
from mailsafe.render.options import RenderOptions  # noqa: E402
from mailsafe.render.pool import RenderPool, tune_allocator  # noqa: E402
from mailsafe.render.story import display_lists, pdf_page_images, raster_list  # noqa: E402
from tests.support.mailmaker import (  # noqa: E402
    TYPICAL_HTML,
    html_mail,
    mail_with_attachment,
    pdf_pages,
    png,
)
from tests.support.perfdoc import replace_section  # noqa: E402

PROCESSES = 2
OPTIONS = RenderOptions()


Pages = tuple[str, "bytes | str", float]  # ("pdf", PDF, dpi) or ("html", composed HTML, 0)


def _mails() -> dict[str, tuple[bytes, Pages]]:
    """name -> (raw mail, the pages the ceiling rasterises)."""
    html_raw = html_mail(TYPICAL_HTML, subject="주간 소식", images={"logo": png(120, 40)})
    composed = compose(parse_message(html_raw), OPTIONS).html
    pdf = pdf_pages(10, "분기 보고서 Quarterly report")
    pdf_raw = mail_with_attachment(pdf, "report.pdf", "application", "pdf")
    return {
        "typical HTML mail": (html_raw, ("html", composed, 0.0)),
        "mail with a 10-page PDF": (pdf_raw, ("pdf", pdf, float(OPTIONS.pdf_dpi))),
    }


def _bare(job: tuple[Pages, int]) -> tuple[int, float]:
    """In one process: rasterise + encode the pages ``repeat`` times (HTML laid out once,
    untimed: the ceiling is rasterising and encoding alone)."""
    (kind, source, dpi), repeat = job
    lists = display_lists(str(source), OPTIONS, 8)[0] if kind == "html" else []
    pages = 0
    started = time.perf_counter()
    for _ in range(repeat):
        if kind == "html":
            images = (raster_list(listing) for listing in lists)
        else:
            images = (image for image, _ in pdf_page_images(bytes(source), OPTIONS, 100, dpi))
        for image in images:
            encode_image(image, OPTIONS.jpeg_quality)
            pages += 1
    return pages, time.perf_counter() - started


def ceiling(source: Pages, count: int) -> tuple[float, int]:
    """Mails per second when only rasterising + encoding the mail's pages, 2 processes.

    Each process loops over its share of the mails; no per-mail inter-process traffic.
    """
    share = count // PROCESSES
    # The ceiling's processes get the render workers' allocator settings (tune_allocator).
    with ProcessPoolExecutor(PROCESSES, initializer=tune_allocator) as executor:
        list(executor.map(_bare, [(source, 1)] * PROCESSES))  # warm up imports
        results = list(executor.map(_bare, [(source, share)] * PROCESSES))
    elapsed = max(seconds for _, seconds in results)
    pages = sum(p for p, _ in results)
    return share * PROCESSES / elapsed, pages // (share * PROCESSES)


def through_pool(raw: bytes, count: int, options: RenderOptions) -> tuple[float, int]:
    """Mails per second through RenderPool from 2 caller threads; and images per mail."""
    with RenderPool(options, processes=PROCESSES, wall_seconds=60) as pool:
        with ThreadPoolExecutor(PROCESSES) as callers:
            warm = list(callers.map(pool.render, [raw] * PROCESSES))
            started = time.perf_counter()
            results = list(callers.map(pool.render, [raw] * count))
            elapsed = time.perf_counter() - started
    statuses = {r.manifest.status for r in [*warm, *results]}
    if statuses != {"rendered"}:
        raise SystemExit(f"benchmark mail did not render: {statuses}")
    return count / elapsed, len(results[0].images)


def single_process(raw: bytes, source: Pages, count: int) -> tuple[float, float]:
    """Seconds per mail in this one process: bare rasterise+encode, and render_message."""
    from mailsafe.render import render_message

    _bare((source, 1))
    render_message(raw, OPTIONS)
    _, bare_seconds = _bare((source, count))
    started = time.perf_counter()
    for _ in range(count):
        render_message(raw, OPTIONS)
    return bare_seconds / count, (time.perf_counter() - started) / count


def measure(rounds: int, count: int, chromium_count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, (raw, source) in _mails().items():
        ceilings, pools = [], []
        pages = images = 0
        for _ in range(rounds):  # alternate, so drift on the shared machine hits both
            rate, pages = ceiling(source, count)
            ceilings.append(rate)
            rate, images = through_pool(raw, count, OPTIONS)
            pools.append(rate)
        row: dict[str, object] = {
            "name": name,
            "pages": pages,
            "images": images,
            "ceiling": statistics.median(ceilings),
            "pool": statistics.median(pools),
            "bytes": len(raw),
            "single": single_process(raw, source, count),
        }
        print(
            f"{name}: ceiling {row['ceiling']:.1f} mails/s, pool {row['pool']:.1f} mails/s, "
            f"ratio {row['pool'] / row['ceiling']:.2f} (rounds: "  # type: ignore[operator]
            f"{', '.join(f'{c:.1f}/{p:.1f}' for c, p in zip(ceilings, pools, strict=True))})"
        )
        rows.append(row)
    raw = _mails()["typical HTML mail"][0]
    rate, _ = through_pool(raw, chromium_count, RenderOptions(backend="chromium"))
    rows.append({"name": "chromium", "pool": rate})
    print(f"typical HTML mail, Chromium backend: {rate:.2f} mails/s")
    kept = RenderOptions(backend="chromium", chromium_keep_alive=True)
    rate, _ = through_pool(raw, chromium_count * 3, kept)
    rows.append({"name": "chromium-kept-alive", "pool": rate})
    print(f"typical HTML mail, Chromium kept alive (Playwright): {rate:.2f} mails/s")
    return rows


def section(rows: list[dict[str, object]], rounds: int, count: int) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"`tests/benchmarks/bench_render.py`, {when}, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, 2 cores (shared). "
        f"{count} mails per measurement, {PROCESSES} processes on each side, medians of {rounds} "
        "alternating rounds.",
        "",
        "| mail | images | bare PyMuPDF rasterise+encode (ceiling) | RenderPool, PyMuPDF backend "
        "| ratio | one process: bare / render_message | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    chromium = kept_alive = 0.0
    html_pool = 1.0
    for row in rows:
        if row["name"] == "chromium":
            chromium = float(row["pool"])  # type: ignore[arg-type]
            continue
        if row["name"] == "chromium-kept-alive":
            kept_alive = float(row["pool"])  # type: ignore[arg-type]
            continue
        if row["name"] == "typical HTML mail":
            html_pool = float(row["pool"])  # type: ignore[arg-type]
        ratio = float(row["pool"]) / float(row["ceiling"])  # type: ignore[arg-type]
        bare_s, render_s = row["single"]  # type: ignore[misc]
        lines.append(
            f"| {row['name']} | {row['images']} | {row['ceiling']:.1f} mails/s "
            f"| {row['pool']:.1f} mails/s | {ratio:.2f} "
            f"| {bare_s * 1000:.0f} ms / {render_s * 1000:.0f} ms | {bare_s / render_s:.2f} |"
        )
    lines += [
        "",
        f"Chromium backend (html2image, a fresh browser per mail, 2 workers), typical HTML mail: "
        f"{chromium:.2f} mails/s, {chromium / html_pool:.2f} of the PyMuPDF backend's rate. "
        f"One browser kept alive per worker (`chromium_keep_alive = true`, Playwright, a fresh "
        f"context per mail): {kept_alive:.2f} mails/s, {kept_alive / chromium:.1f}x the fresh "
        f"browser, {kept_alive / html_pool:.2f} of the PyMuPDF backend.",
        "",
        "The ceiling is only PyMuPDF rasterising the mail's pages (for the HTML mail: the pages "
        "already laid out by `Story`) and our encoder, in 2 bare processes. The pool does all of "
        "it: parse, sanitise, lay out, rasterise, encode, package in the worker, and the strict "
        "package decode in the parent. Target: the pool at least 0.70 of the ceiling.",
        "",
        "The machine is shared with other jobs (load average 5-8 while this ran), so single "
        "rounds vary two- to threefold and either side can 'win' a round; medians of alternating "
        "rounds are compared, and the one-process columns (same process, back to back, no "
        "inter-process traffic) show the cost of everything besides rasterise+encode without "
        "that noise. Where the time goes: for the HTML mail Story layout and the PNG encoder, for "
        "the PDF mail PyMuPDF rasterising and the PNG encoder (zlib level 1, grey or 256-colour "
        "palette); parsing, sanitising and the package round trip are a few milliseconds.",
    ]
    return "\n".join(lines)


def write_section(text: str) -> None:
    replace_section(f"## Rendering\n\n{text}\n")


def main() -> int:
    tune_allocator()  # the one-process rows run here: the render workers' allocator settings
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (default 3)")
    parser.add_argument("--count", type=int, default=40, help="mails per measurement")
    parser.add_argument("--chromium-count", type=int, default=8, help="mails through Chromium")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    options = parser.parse_args()
    rows = measure(options.rounds, options.count, options.chromium_count)
    text = section(rows, options.rounds, options.count)
    if not options.no_write:
        write_section(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
