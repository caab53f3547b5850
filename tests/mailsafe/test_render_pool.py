"""mailsafe.render.pool.RenderPool: limits turn into not-displayable notices; the pool goes on."""

from __future__ import annotations

import io
import os
import signal
import threading

from PIL import Image

from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import REASONS, RenderPool, headers_only
from tests.support.mailmaker import (
    KOREAN,
    cpu_heavy_pdf,
    html_mail,
    korean_legacy_mail,
    mail_with_attachment,
    pdf_of_sizes,
    pdf_pages,
)

KOREAN_MAIL = korean_legacy_mail("ks_c_5601-1987")
PDF_MAIL = mail_with_attachment(pdf_pages(10), "보고서.pdf", "application", "pdf")


def test_renders_in_a_worker() -> None:
    with RenderPool(RenderOptions(), processes=1) as pool:
        rendered = pool.render(KOREAN_MAIL)
    assert rendered.manifest.status == "rendered"
    assert rendered.manifest.headers.subject == KOREAN
    assert rendered.images


def test_wall_clock_timeout_gives_notice_with_headers_and_pool_goes_on() -> None:
    with RenderPool(RenderOptions(), processes=1, wall_seconds=0.05) as pool:
        first = pool.render(PDF_MAIL)
        assert first.manifest.status == "not_displayable"
        assert first.manifest.reason == "timeout"
        assert first.manifest.headers.subject == "with 보고서.pdf"
        pool.wall_seconds = 30.0
        assert pool.render(KOREAN_MAIL).manifest.status == "rendered"


def test_cpu_limit_kills_a_runaway_render() -> None:
    bomb = mail_with_attachment(cpu_heavy_pdf(40000), "보고서.pdf", "application", "pdf")
    with RenderPool(RenderOptions(), processes=1, cpu_seconds=1, wall_seconds=60) as pool:
        rendered = pool.render(bomb)
        assert rendered.manifest.status == "not_displayable"
        assert rendered.manifest.reason == "cpu_limit"
        assert [w.filename for w in rendered.manifest.withheld] == ["보고서.pdf"]  # summary kept
        assert pool.render(KOREAN_MAIL).manifest.status == "rendered"


def test_memory_limit_gives_notice() -> None:
    buffer = io.BytesIO()
    Image.new("RGB", (4800, 4800), (40, 90, 200)).save(buffer, "PNG")  # 23 Mpx: 66 MB decoded
    big = mail_with_attachment(buffer.getvalue(), "big.png", "image", "png")
    # a worker idles at ~135 MiB of address space (Python, PyMuPDF, Pillow; ~540 MiB while
    # PyMuPDF's ML add-ons were loaded, D15); 220 MiB is too little for the picture
    with RenderPool(RenderOptions(), processes=1, memory_bytes=220 << 20) as pool:
        rendered = pool.render(big)
        assert rendered.manifest.status == "not_displayable"
        assert rendered.manifest.reason == "memory_limit"
        assert [w.filename for w in rendered.manifest.withheld] == ["big.png"]
        assert pool.render(KOREAN_MAIL).manifest.status == "rendered"


def test_killed_worker_is_replaced() -> None:
    with RenderPool(RenderOptions(), processes=1) as pool:
        (worker,) = list(pool._all)
        os.kill(worker.process.pid, signal.SIGKILL)
        worker.process.wait()
        rendered = pool.render(KOREAN_MAIL)
        assert rendered.manifest.status == "not_displayable"
        assert rendered.manifest.reason == "worker_crash"
        assert rendered.manifest.headers.subject == KOREAN
        assert pool.render(KOREAN_MAIL).manifest.status == "rendered"


def test_concurrent_callers_share_the_pool() -> None:
    results = []
    with RenderPool(RenderOptions(), processes=2) as pool:
        threads = [
            threading.Thread(target=lambda: results.append(pool.render(KOREAN_MAIL)))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert [r.manifest.status for r in results] == ["rendered"] * 6


def test_close_stops_every_worker() -> None:
    pool = RenderPool(RenderOptions(), processes=2)
    processes = [w.process for w in pool._all]
    pool.close()
    assert all(p.poll() is not None for p in processes)


def test_headers_only_last_resort() -> None:
    rendered = headers_only(KOREAN_MAIL, "worker_crash")
    assert rendered.manifest.headers.subject == KOREAN
    assert rendered.manifest.reason == "worker_crash"
    assert REASONS["worker_crash"] in rendered.manifest.notes


def _affinity(worker: object) -> set[int]:
    return os.sched_getaffinity(worker.process.pid)  # type: ignore[attr-defined]


def test_pinned_workers_each_hold_one_cpu_and_a_replacement_takes_the_same_one() -> None:
    allowed = sorted(os.sched_getaffinity(0))
    with RenderPool(RenderOptions(), processes=2, pin_cpus=True) as pool:
        by_slot = {w.slot: _affinity(w) for w in pool._all}
        assert by_slot == {0: {allowed[0]}, 1: {allowed[1 % len(allowed)]}}
        first = next(w for w in pool._all if w.slot == 0)
        os.kill(first.process.pid, signal.SIGKILL)
        first.process.wait()
        for _ in range(2):  # whichever worker the call takes, the dead one is met and replaced
            pool.render(KOREAN_MAIL)
        replacement = next(w for w in pool._all if w.slot == 0)
        assert replacement is not first
        assert _affinity(replacement) == {allowed[0]}


def test_unpinned_and_chromium_workers_keep_every_cpu() -> None:
    allowed = os.sched_getaffinity(0)
    with RenderPool(RenderOptions(), processes=1) as pool:
        assert [_affinity(w) for w in pool._all] == [allowed]
    chromium = RenderOptions(backend="chromium")
    pool = RenderPool(chromium, processes=1, pin_cpus=True)
    try:
        assert pool.pin_cpus is False
        assert [_affinity(w) for w in pool._all] == [allowed]
    finally:
        pool.close()


def test_a_huge_pdf_page_is_refused_alone_and_the_mail_is_shown() -> None:
    """Issue 15.8: one 14,400 x 14,400 pt page (the largest PDF allows) between two A4 pages
    made the whole mail, body included, "not displayable". Now that page alone is refused with
    a note naming its size; the body and the other pages are shown."""
    pdf = pdf_of_sizes([(595, 842), (14_400, 14_400), (595, 842)])
    raw = mail_with_attachment(pdf, "plan.pdf", "application", "pdf")
    with RenderPool(RenderOptions(), processes=1) as pool:
        rendered = pool.render(raw)
    manifest = rendered.manifest
    assert (manifest.status, manifest.reason) == ("rendered", None)
    assert [p.source for p in manifest.pages] == ["body"] + ["attachment:plan.pdf"] * 2
    assert [(p.width, p.height) for p in manifest.pages[1:]] == [(794, 1123)] * 2
    assert "plan.pdf: page 2 is 14400 x 14400 pt, too large to show" in manifest.notes
    assert not any("pages shown" in n for n in manifest.notes)  # no page cap was reached
    assert manifest.withheld == ()
    assert "See the attachment." in (rendered.text or "")


def test_mupdf_warnings_do_not_break_the_reply_pipe() -> None:
    """Broken inline CSS makes MuPDF print a warning through the stdout PyMuPDF kept from its
    import; in a worker that was the reply pipe, and the mail came out "not displayable"
    (bad_package) — two mails of the shared corpus did."""
    cell = '<td style="font-size:16px; padding:5px; color="#333333"> Zeile {n}</td>'
    rows = "".join(f"<tr>{cell.format(n=n)}</tr>" for n in range(20))
    raw = html_mail(f"<html><body><table>{rows}</table></body></html>")
    with RenderPool(RenderOptions(), processes=1) as pool:
        first = pool.render(raw)
        second = pool.render(raw)
    assert first.manifest.status == "rendered", first.manifest.reason
    assert second.manifest.status == "rendered", second.manifest.reason
    assert first.images
