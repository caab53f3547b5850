"""What the receive filters save by reading a mail's documents once (D105).

When a receive-filter rule reads the mail's text (``needs_mail_text``), the filters read
every attachment for the rules; masking then reads the office documents and PDFs again for
their values (D97). Masking now takes the rules' reading of a file with the same name and
bytes, and the detector's findings of a text it searched (``FirstReading``).
The mail: a 10-page DOCX (a staff table a page) and a 10-page text PDF; the rules: the
built-in ones and a condition on the attachments' text. In one process, medians of ROUNDS
alternating rounds, CPU milliseconds per mail:

- **masking's reading alone**: ``with_document_values`` without and with the first reading;
- **the whole filter job**: ``filter_message`` (the rules' reading, masking's, the PDF drawn
  in-process: no LibreOffice, the DOCX is withheld as it would be without a converter) with
  the first reading dropped (as before) and taken.

Run: ``.venv/bin/python tests/benchmarks/bench_filter_reading.py [--no-write]``. Writes the
"## Receive filters: the documents read once" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import io
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

import mailsafe.inbound_filter as inbound_filter  # noqa: E402
from mailsafe.extract import FileReadings, extract_locations  # noqa: E402
from mailsafe.inbound_filter import (  # noqa: E402
    FILTER_EXTRACT_LIMITS,
    FilterJob,
    filter_message,
    parse_published,
)
from mailsafe.inbound_rules import (  # noqa: E402
    DEFAULT_INBOUND_RULES_TOML,
    UNIQUE_IDENTIFIERS,
    published_text,
)
from mailsafe.mime import parse_message  # noqa: E402
from mailsafe.pii import Finding  # noqa: E402
from mailsafe.render import with_document_values  # noqa: E402
from mailsafe.render.masking.documents import FirstReading  # noqa: E402
from mailsafe.render.options import RenderOptions  # noqa: E402
from mailsafe.scan import read_mail  # noqa: E402
from tests.benchmarks.bench_masking import _text_pdf  # noqa: E402
from tests.support.documents import make_mail  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

TYPES = frozenset(UNIQUE_IDENTIFIERS)
ON = RenderOptions(mask_types=TYPES, mask_document_text=True, ocr_languages="")
RRN = "800101-1234560"
RULES = (
    DEFAULT_INBOUND_RULES_TOML
    + """
[[rule]]
id = "never-matches"
action = "block"
[[rule.condition]]
field = "attachment_content"
contains = "NEVER-IN-THIS-MAIL"
"""
)
JOB = FilterJob(1, None, "p@partner.example", ("user@corp.example",))


def ten_page_docx() -> bytes:
    """Ten pages, each a heading and a 30-row staff table, a page break between them."""
    import docx

    document = docx.Document()
    for page in range(10):
        document.add_paragraph(f"직원 명단 {page + 1}")
        table = document.add_table(rows=30, cols=4)
        for row in range(30):
            for column, value in enumerate(
                (f"김철수{row}", RRN, f"kim{row}@partner.example", "영업부")
            ):
                table.cell(row, column).text = value
        if page < 9:
            document.add_page_break()
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def per_mail(action: Callable[[], object], count: int) -> float:
    """CPU seconds of this process per call: the machine is shared (load 10-14 while this was
    written), and wall time there measures the neighbours."""
    started = time.process_time()
    for _ in range(count):
        action()
    return (time.process_time() - started) / count


def _without_first_reading(mail: Any, options: Any, types: Any, _read_before: Any = None) -> Any:
    return with_document_values(mail, options, types)  # the code before: reads again


def measure(rounds: int, count: int) -> dict[str, float]:
    raw = make_mail(attachments=[("명단.docx", ten_page_docx()), ("신청서.pdf", _text_pdf(10, 1))])
    mail = parse_message(raw)
    files: FileReadings = {}
    detected: dict[str, list[Finding]] = {}
    read_mail(mail, extract_locations(mail, FILTER_EXTRACT_LIMITS, readings=files), detected)
    first = FirstReading(files, detected)
    rules = parse_published(published_text(RULES, {}, {}), 1)
    results: dict[str, list[float]] = {k: [] for k in ("step_before", "step_after",
                                                       "job_before", "job_after")}  # fmt: skip
    real = inbound_filter.with_document_values
    for number in range(rounds):
        results["step_before"].append(
            per_mail(lambda: with_document_values(mail, ON, TYPES), count)
        )
        results["step_after"].append(
            per_mail(lambda: with_document_values(mail, ON, TYPES, first), count))  # fmt: skip
        for old in (True, False) if number % 2 == 0 else (False, True):
            inbound_filter.with_document_values = _without_first_reading if old else real  # type: ignore[assignment]
            took = per_mail(lambda: filter_message(raw, rules, JOB, ON), max(3, count // 4))
            results["job_before" if old else "job_after"].append(took)
        inbound_filter.with_document_values = real  # type: ignore[assignment]
    medians = {k: statistics.median(v) for k, v in results.items()}
    print({k: f"{v * 1000:.2f} ms" for k, v in medians.items()})
    return medians


def section(found: dict[str, float], rounds: int) -> str:
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC")

    def ms(key: str) -> str:
        return f"{found[key] * 1000:.1f} ms"

    saved = (found["job_before"] - found["job_after"]) * 1000
    return "\n".join([
        f"`tests/benchmarks/bench_filter_reading.py`, {when}, {platform.system()} "
        f"{platform.machine()}, Python {platform.python_version()}, 2 cores (shared with other "
        f"jobs). A mail with a 10-page DOCX (a 30-row staff table a page) and a 10-page text "
        f"PDF, under rules that read the attachments' text; one process, CPU time, medians of "
        f"{rounds} rounds (D105).",
        "",
        "| | read again (before) | the rules' reading taken (now) |",
        "| --- | --- | --- |",
        f"| masking's reading of the documents alone | {ms('step_before')} | {ms('step_after')} |",
        f"| the whole filter job (no LibreOffice) | {ms('job_before')} | {ms('job_after')} |",
        "",
        f"Saved per such mail: {saved:.1f} ms of the render worker's CPU. The first reading "
        "is found by the file's name and the SHA-256 of its bytes, and its texts' findings by "
        "the text; what is left of masking's step is hashing the two files and reading over "
        "each page break.",
    ])  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else "")
    parser.add_argument("--rounds", type=int, default=5, help="rounds (default 5)")
    parser.add_argument("--count", type=int, default=8, help="mails per measurement")
    parser.add_argument("--no-write", action="store_true", help="do not update the doc")
    options = parser.parse_args()
    text = section(measure(options.rounds, options.count), options.rounds)
    print(text)
    if not options.no_write:
        replace_section(f"## Receive filters: the documents read once\n\n{text}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
