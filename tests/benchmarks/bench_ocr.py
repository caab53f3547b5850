"""OCR benchmark: screenshots of customer lists through our picture reader, beside bare Tesseract.

Each screenshot (generated: a table of names, resident numbers, card numbers and phone numbers
drawn in NanumGothic as a screen shows it) is read two ways in the same run,
alternating, best of ROUNDS:

- **ours**: ``mailsafe.extract.ocr.picture_text`` on the PNG as attached (open, size checks,
  grey, shrink, PNG, Tesseract) and the detector on its text;
- **ceiling**: the ``tesseract`` program alone on each grey PNG ours hands it (the picture at
  its own size and, a small picture, enlarged too: D77), with the same arguments: what OCR
  costs with no reader around it.

Recall: the share of the resident and card numbers drawn in the pictures that the scan finds.
Lines: our time at most 1/0.85 of the ceiling (the reader adds little to OCR), recall >= 0.9.

Run: ``.venv/bin/python tests/benchmarks/bench_ocr.py``. Writes the "## OCR" section of
docs/performance.md unless ``--no-doc``.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailsafe.extract.limits import Budget, ExtractLimits  # noqa: E402
from mailsafe.extract.ocr import (  # noqa: E402
    enlarged,
    grey_picture,
    picture_text,
    resolve_ocr,
    tesseract_command,
    tesseract_path,
)
from mailsafe.pii import detect  # noqa: E402
from mailsafe.pii.checks import luhn_ok, registration_check_digit_ok  # noqa: E402
from tests.support.documents import make_screenshot  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402

SCREENSHOTS = 8
ROWS = 6  # customers per screenshot
ROUNDS = 3
RATIO_LINE = 0.85
RECALL_LINE = 0.9
SEED = 11
NAMES = ["김철수", "이영희", "박민수", "최지우", "정하늘", "강서준", "윤보라", "임도윤"]


def _rrn(rng: random.Random) -> str:
    while True:
        digits = f"{rng.randint(60, 99):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
        digits += str(rng.choice((1, 2))) + "".join(str(rng.randint(0, 9)) for _ in range(6))
        if registration_check_digit_ok(digits):
            return f"{digits[:6]}-{digits[6:]}"


def _card(rng: random.Random) -> str:
    while True:
        digits = "4" + "".join(str(rng.randint(0, 9)) for _ in range(15))
        if luhn_ok(digits):
            return "-".join(digits[i : i + 4] for i in range(0, 16, 4))


def screenshots() -> list[tuple[bytes, set[str]]]:
    """(PNG, the numbers drawn in it)."""
    rng = random.Random(SEED)
    made = []
    for _ in range(SCREENSHOTS):
        lines, numbers = ["이름  주민등록번호  카드번호  전화"], set()
        for _row in range(ROWS):
            rrn, card = _rrn(rng), _card(rng)
            phone = f"010-{rng.randint(1000, 9999)}-{rng.randint(1000, 9999)}"
            lines.append(f"{rng.choice(NAMES)}  {rrn}  {card}  {phone}")
            numbers |= {rrn, card}
        made.append((make_screenshot(lines), numbers))
    return made


def measure(shots: list[tuple[bytes, set[str]]], languages: str) -> dict[str, float]:
    limits = ExtractLimits(ocr_languages=languages, ocr_max_pictures=10**6, ocr_max_seconds=3000,
                           max_seconds=3600)  # fmt: skip
    program = tesseract_path()
    assert program is not None
    ours, bare = [], []
    found = drawn = 0
    for round_number in range(ROUNDS):
        started = time.perf_counter()
        for png, numbers in shots:
            text = picture_text(png, Budget(limits))
            if round_number == 0:
                values = {finding.text for finding in detect(text)}
                found += len(numbers & values)
                drawn += len(numbers)
        ours.append(time.perf_counter() - started)
        grey = [grey_picture(png, limits.ocr_max_pixels) for png, _ in shots]
        grey += [enlarged(picture, limits.ocr_max_pixels) for picture in grey if picture]
        grey = [picture for picture in grey if picture is not None]
        started = time.perf_counter()
        for picture in grey:
            subprocess.run(
                tesseract_command(program, languages),
                input=picture, capture_output=True, check=True,
                env={"PATH": "/usr/bin:/bin", "OMP_THREAD_LIMIT": "1"},
            )  # fmt: skip
        bare.append(time.perf_counter() - started)
    return {
        "pictures": len(shots),
        "ours_s": min(ours) / len(shots),
        "bare_s": min(bare) / len(shots),
        "recall": found / drawn,
        "drawn": drawn,
    }


def report(figures: dict[str, float]) -> str:
    ratio = figures["bare_s"] / figures["ours_s"]
    return "\n".join(
        [
            f"{figures['pictures']:.0f} screenshots of {ROWS} customers each (resident and card "
            "numbers), best of "
            f"{ROUNDS} alternating rounds, one core (`OMP_THREAD_LIMIT=1`):",
            "",
            "| figure | value | line |",
            "| --- | --- | --- |",
            f"| ours: seconds per screenshot (reader + Tesseract) | {figures['ours_s']:.2f} | - |",
            f"| ceiling: bare `tesseract` on the same grey PNGs | {figures['bare_s']:.2f} | - |",
            f"| ratio ceiling / ours | {ratio:.2f} | >= {RATIO_LINE} |",
            f"| recall of the {figures['drawn']:.0f} numbers drawn | {figures['recall']:.2f} | "
            f">= {RECALL_LINE} |",
        ]
    )


def write_doc(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    replace_section(f"## OCR\n\n`tests/benchmarks/bench_ocr.py` ({stamp}):\n\n{text}\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    figures = measure(screenshots(), resolve_ocr(True))
    problems = []
    if figures["bare_s"] / figures["ours_s"] < RATIO_LINE:
        problems.append("the reader costs more than the line allows")
    if figures["recall"] < RECALL_LINE:
        problems.append(f"recall {figures['recall']:.2f}")
    text = report(figures)
    text += "\n\nResult of this run: " + (
        "all targets met." if not problems else "BELOW TARGET: " + "; ".join(problems) + "."
    )
    print(text)
    if not args.no_doc:
        write_doc(text)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
