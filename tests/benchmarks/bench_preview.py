"""What an approval preview costs (issue 18.3): a held mail drawn as its pages, redacted, by
the preview's render worker (``inner_agent.outbound.preview``), as the agent does it.

The mail: a resident number in the body, an XLSX, a DOCX and a PNG screenshot
(``tests.support.outbound.held_mail_everywhere``). Measured, in one run:

- **cold**: the first preview of a fresh worker (its LibreOffice starts with the first office
  document): what the first held mail after an agent start waits;
- **warm**: the median of ROUNDS previews after that (the worker and LibreOffice kept);
- **body only**: the same mail without attachments, warm.

Lines: warm <= WARM_LINE_S and cold <= COLD_LINE_S: the approvers' mail must not wait tens of
seconds.

Run: ``.venv/bin/python tests/benchmarks/bench_preview.py [--no-write]``. Writes the
"## Approval previews" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import datetime
import email
import email.policy
import os
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from inner_agent.outbound.preview import Previewer, preview_pool  # noqa: E402
from inner_agent.outbound.scanning import Scanner  # noqa: E402
from inner_agent.outbound.spool import SpooledMail  # noqa: E402
from mailsafe.policy import default_rules  # noqa: E402
from tests.support.outbound import held_mail_everywhere  # noqa: E402

ROUNDS = 5
WARM_LINE_S = 5.0
COLD_LINE_S = 15.0


def _body_only(data: bytes) -> bytes:
    message = email.message_from_bytes(data, policy=email.policy.default)
    plain = email.message.EmailMessage()
    for name in ("From", "To", "Subject"):
        plain[name] = message[name]
    body = message.get_body(preferencelist=("plain",))
    plain.set_content(body.get_content() if body is not None else "")
    return plain.as_bytes(policy=email.policy.SMTP)


def _timed(previewer: Previewer, data: bytes) -> tuple[float, int]:
    mail = SpooledMail("bench", "kim@corp.example", ("p@example.com",), 0.0, "127.0.0.1", "mx")
    scanned = Scanner(default_rules()).scan(mail, data, lambda _address: None)
    started = time.perf_counter()
    preview = previewer.preview(data, scanned)
    return time.perf_counter() - started, len(preview.pages)


def main() -> int:
    parser = argparse.ArgumentParser(description="approval preview cost")
    parser.add_argument("--no-write", action="store_true", help="do not touch performance.md")
    args = parser.parse_args()
    data = held_mail_everywhere()
    with preview_pool("kor+eng") as pool:
        previewer = Previewer(pool)
        cold, pages = _timed(previewer, data)
        warm = statistics.median(_timed(previewer, data)[0] for _ in range(ROUNDS))
        body = statistics.median(_timed(previewer, _body_only(data))[0] for _ in range(ROUNDS))
    ok = warm <= WARM_LINE_S and cold <= COLD_LINE_S
    section = "\n".join([
        "## Approval previews",
        "",
        f"`tests/benchmarks/bench_preview.py`, {datetime.date.today()}, {platform.machine()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}. A held mail with a resident "
        "number in its body, an XLSX, a DOCX and a PNG screenshot, drawn as "
        f"{pages} pages by the preview's render worker (LibreOffice in its sandbox, OCR of the "
        "picture, every finding painted over); the scan is not counted.",
        "",
        "| preview | seconds |",
        "|---|---|",
        f"| first after start (cold worker, LibreOffice starting) | {cold:.2f} |",
        f"| warm, median of {ROUNDS} | {warm:.2f} |",
        f"| body only, warm, median of {ROUNDS} | {body:.2f} |",
        "",
        f"Lines: warm <= {WARM_LINE_S:.0f} s, cold <= {COLD_LINE_S:.0f} s: "
        f"{'met' if ok else 'MISSED'}.",
    ])  # fmt: skip
    print(section)
    if not args.no_write:
        from tests.support.perfdoc import replace_section

        replace_section(section)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
