"""What reading a mail's documents before drawing them costs the receive side (D97).

The outer agent's render workers read the text of a mail's office documents and PDFs first
(``RenderOptions.mask_document_text``, ``mailsafe.render.with_document_values``) so that a
value a page breaks over lines is still hidden. Per mail, in one process, medians of ROUNDS
alternating rounds:

- **the step alone**: ``with_document_values`` on the parsed mail (the extraction and the
  detector over the documents' text), milliseconds per mail;
- **the whole rendering** (``render_message``, no LibreOffice: a PDF is drawn in-process)
  with the reading off and on, for the typical HTML mail and a 10-page text PDF.

Lines: a plain HTML mail pays nothing (the step under 0.05 ms: it only looks at its parts);
an office document costs less to read than LibreOffice takes to draw one page (100 ms, the
"Office documents" section).

Run: ``.venv/bin/python tests/benchmarks/bench_document_values.py [--no-write]``. Writes the
"## Inbound masking: documents read first" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailsafe.inbound_rules import UNIQUE_IDENTIFIERS  # noqa: E402
from mailsafe.mime import parse_message  # noqa: E402
from mailsafe.render import render_message, with_document_values  # noqa: E402
from mailsafe.render.options import RenderOptions  # noqa: E402
from tests.benchmarks.bench_masking import _text_pdf  # noqa: E402
from tests.support.documents import make_narrow_table_docx, make_xlsx  # noqa: E402
from tests.support.mailmaker import TYPICAL_HTML, html_mail, mail_with_attachment, png  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

TYPES = frozenset(UNIQUE_IDENTIFIERS)
OFF = RenderOptions(mask_types=TYPES)
ON = RenderOptions(mask_types=TYPES, mask_document_text=True)
PLAIN_LINE_MS = 0.05
OFFICE_PAGE_MS = 100.0  # docs/performance.md, "Office documents": warm converter, per page
RRN = "800101-1234560"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _staff(rows: int) -> list[list[str]]:
    return [["이름", "주민등록번호", "메일", "부서"]] + [
        [f"김철수{n}", RRN, f"kim{n}@partner.example", "영업부"] for n in range(rows)
    ]


def mails() -> dict[str, bytes]:
    docx_small = make_narrow_table_docx("거래처 담당자", _staff(1))
    docx_list = make_narrow_table_docx("직원 명단", _staff(200))
    xlsx_list = make_xlsx(_staff(400))  # type: ignore[arg-type]
    return {
        "typical HTML mail (120x40 logo)": html_mail(TYPICAL_HTML, "주간 소식", {"logo": png(120, 40)}),
        "DOCX, a 2-row table": mail_with_attachment(docx_small, "a.docx", *DOCX.split("/")),
        "DOCX, a 200-row staff list": mail_with_attachment(docx_list, "b.docx", *DOCX.split("/")),
        "XLSX, a 400-row staff list": mail_with_attachment(xlsx_list, "c.xlsx", *XLSX.split("/")),
        "10-page text PDF, a resident number a page": mail_with_attachment(
            _text_pdf(10, 1), "form.pdf", "application", "pdf"),
    }  # fmt: skip


def per_mail(action: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - started) / count


def measure(rounds: int, count: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for name, raw in mails().items():
        parsed = parse_message(raw)
        step = statistics.median(
            per_mail(lambda: with_document_values(parsed, ON, TYPES), count) for _ in range(rounds)
        )
        offs: list[float] = []
        ons: list[float] = []
        renders = max(5, count // 4)
        if "HTML" in name or "PDF" in name:  # drawn in-process; office needs LibreOffice
            for number in range(rounds):
                pair = [(offs, OFF), (ons, ON)]
                for results, options in pair if number % 2 == 0 else pair[::-1]:
                    results.append(per_mail(lambda o=options: render_message(raw, o), renders))  # type: ignore[misc]
        row: dict[str, object] = {"name": name, "step": step}
        if offs:
            row["off"], row["on"] = statistics.median(offs), statistics.median(ons)
        rows.append(row)
        print(name, {k: v for k, v in row.items() if k != "name"})
    return rows


def _ms(seconds: object) -> str:
    return f"{float(seconds) * 1000:.3f} ms" if seconds is not None else "-"  # type: ignore[arg-type]


def section(rows: list[dict[str, object]], rounds: int) -> tuple[str, bool]:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"`tests/benchmarks/bench_document_values.py`, {when}, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, 2 cores (shared with other "
        f"jobs). The receive side's masking (the unique identifiers) with the documents' text "
        f"read first (D97) and without; one process, medians of {rounds} rounds.",
        "",
        "| mail | reading the documents (the step alone) | rendering, reading off | reading on |",
        "| --- | --- | --- | --- |",
    ]
    for row in rows:
        lines.append(f"| {row['name']} | {_ms(row['step'])} | {_ms(row.get('off'))} "
                     f"| {_ms(row.get('on'))} |")  # fmt: skip
    plain = float(rows[0]["step"]) * 1000  # type: ignore[arg-type]
    office = max(
        float(r["step"]) * 1000 for r in rows if str(r["name"]).startswith(("DOCX", "XLSX"))
    )  # type: ignore[arg-type]
    met = plain < PLAIN_LINE_MS and office < OFFICE_PAGE_MS
    lines += [
        "",
        f"Lines: the plain HTML mail's step {plain:.3f} ms (< {PLAIN_LINE_MS} ms: it only looks "
        f"at its parts' types); the slowest office document's {office:.1f} ms (< "
        f"{OFFICE_PAGE_MS:.0f} ms, LibreOffice's time for one page): "
        f"{'met' if met else 'MISSED'}.",
        "",
        "A document's reading is the outbound scan's extraction (no OCR) and the detector over "
        "its text; the values found then cost the masker a search of each drawn page's text "
        "(`value_spans`), in the rendering columns. Office documents are drawn by LibreOffice "
        "only in the agent's workers, so their rows have the step alone.",
    ]
    return "\n".join(lines), met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    parser.add_argument("--count", type=int, default=40, help="mails per measurement")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    options = parser.parse_args()
    text, met = section(measure(options.rounds, options.count), options.rounds)
    print(text)
    if not options.no_write:
        replace_section(f"## Inbound masking: documents read first\n\n{text}\n")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
