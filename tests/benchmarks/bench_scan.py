"""Scanning benchmark: our personal-data detection beside Microsoft Presidio, same run.

1. Quality on the labelled set (tests/data/pii/labelled.jsonl): recall and false-positive
   rate per type, ours and Presidio's (presidio-analyzer with its Korean recognizers
   KrRrn/KrFrn/KrDriverLicense/KrPassport plus CreditCardRecognizer; it has none for bank
   accounts). Presidio runs offline on a blank spaCy pipeline (no model can be downloaded
   here), which is how its pattern recognizers work anyway.
2. Throughput in MB/s of mixed mail: the real-world corpus (/work/shared/corpus, read in
   place) plus generated Korean business mails with CSV, xlsx, docx, pdf, HWP, HWPX and ZIP
   attachments. Ours is timed on the whole job (parse, extract every attachment, detect,
   decide); Presidio only on analysing the text our extraction produced (it has no MIME or
   attachment reader), which flatters Presidio. Megabytes are of raw mail in both cases.
   Both sides are single-threaded and CPU-bound, so both are timed in process CPU time:
   on a shared two-core machine wall-clock time mostly measures the neighbours. Each
   figure is the median of REPEATS rounds, ours and Presidio's interleaved.

Run: ``.venv/bin/python tests/benchmarks/bench_scan.py`` (needs presidio-analyzer: the
``bench`` extra). Writes the figures into the "## Scanning" section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from mailsafe.extract import Location, extract_locations  # noqa: E402
from mailsafe.mime import parse_message  # noqa: E402
from mailsafe.pii import detect  # noqa: E402
from mailsafe.policy import SenderInfo, default_rules  # noqa: E402
from mailsafe.scan import scan_message  # noqa: E402
from tests.support import documents  # noqa: E402
from tests.support.perfdoc import replace_section  # noqa: E402
from tests.support.pii_eval import TYPES, evaluate, load_examples, mailsafe_detector  # noqa: E402

CORPUS = Path("/work/shared/corpus")
SEED = 5
GENERATED_MAILS = 120  # about 6 MB of generated mail beside the 15 MiB corpus
PRESIDIO_CHUNK_CHARS = 100_000  # spaCy refuses texts over 1M characters; keep chunks small
THROUGHPUT_TARGET = 10.0  # issue 5: at least 10x Presidio
PROSE_SHARE = 0.5  # of the lines of generated bodies
WARM_UP_MAILS = 20  # scanned once, untimed, before measuring
# Rounds of every timing (ours and Presidio's interleaved); medians are reported, so one
# round slowed by a neighbour on the shared machine does not decide the result.
REPEATS = 3
PRESIDIO_TYPES = {
    "KR_RRN": "rrn",
    "KR_FRN": "foreigner_id",
    "KR_DRIVER_LICENSE": "driver_license",
    "KR_PASSPORT": "passport",
    "CREDIT_CARD": "credit_card",
}


# ---- Presidio, offline ------------------------------------------------------------------------


def presidio_analyzer() -> Any:
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        KrDriverLicenseRecognizer,
        KrFrnRecognizer,
        KrPassportRecognizer,
        KrRrnRecognizer,
    )

    class BlankEngine(SpacyNlpEngine):  # type: ignore[misc]
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "ko", "model_name": "blank"}])
            blank = spacy.blank("xx")
            blank.max_length = PRESIDIO_CHUNK_CHARS * 2
            self.nlp = {"ko": blank}

        def load(self) -> None:
            return None

    registry = RecognizerRegistry(supported_languages=["ko"])
    for recognizer in (
        KrRrnRecognizer, KrFrnRecognizer, KrDriverLicenseRecognizer, KrPassportRecognizer,
        CreditCardRecognizer,
    ):  # fmt: skip
        registry.add_recognizer(recognizer(supported_language="ko"))
    return AnalyzerEngine(registry=registry, nlp_engine=BlankEngine(), supported_languages=["ko"])


def presidio_detector(analyzer: Any) -> Any:
    def run(text: str) -> list[tuple[str, int, int]]:
        results = analyzer.analyze(text=text, language="ko")
        return [
            (PRESIDIO_TYPES[r.entity_type], r.start, r.end)
            for r in results
            if r.entity_type in PRESIDIO_TYPES
        ]

    return run


# ---- mixed mail --------------------------------------------------------------------------------

KOREAN_FILLER = (
    "안녕하세요. 지난주 회의에서 논의한 하반기 영업 계획과 예산안을 첨부와 같이 송부드립니다. "
    "검토 후 의견 주시면 반영하겠습니다. 문의사항은 연락처 02-3456-7890 으로 연락 바랍니다. "
    "납품 일정은 2024-07-15 기준이며 주문번호 ORD-20240715-001234 를 참고해 주세요. "
)


def generated_mails(examples: list[dict[str, object]]) -> list[bytes]:
    rng = random.Random(SEED)
    texts = [str(e["text"]) for e in examples]
    mails: list[bytes] = []
    for index in range(GENERATED_MAILS):
        # Half the lines are prose, half come from the labelled set (numbers, half of them
        # personal data): far denser than real mail, so the detectors are not idle.
        body = "\n".join(
            KOREAN_FILLER if rng.random() < PROSE_SHARE else rng.choice(texts)
            for _ in range(rng.randrange(20, 120))
        )
        rows = [["이름", "부서", "주민등록번호", "계좌"]] + [
            [
                f"직원{i}",
                "영업팀",
                rng.choice(texts)[:40],
                f"신한은행 110-{i:03d}-{rng.randrange(10**6):06d}",
            ]
            for i in range(rng.randrange(50, 400))
        ]
        csv_text = "\n".join(",".join(str(c) for c in row) for row in rows)
        kind = index % 8
        attachments: list[tuple[str, bytes]] = []
        if kind == 1:
            attachments = [("명단.csv", csv_text.encode("cp949", errors="replace"))]
        elif kind == 2:
            attachments = [("명단.xlsx", documents.make_xlsx(rows))]  # type: ignore[arg-type]
        elif kind == 3:
            attachments = [("보고서.docx", documents.make_docx(body))]
        elif kind == 4:
            attachments = [("보고서.pdf", documents.make_pdf(body[:3000]))]
        elif kind == 5:
            attachments = [
                ("보고서.hwp", documents.make_hwp(body)),
                ("보고서.hwpx", documents.make_hwpx(body)),
            ]
        elif kind == 6:
            attachments = [
                (
                    "자료.zip",
                    documents.make_zip(
                        {"명단.csv": csv_text.encode(), "a/보고서.docx": documents.make_docx(body)}
                    ),
                )
            ]
        html = (
            f"<html><body><p>{body.replace(chr(10), '<br>')}</p></body></html>"
            if kind in (0, 7)
            else None
        )
        mails.append(
            documents.make_mail(
                subject=f"자료 송부 {index}", text=body, html=html, attachments=attachments
            )
        )
    return mails


def corpus_mails() -> list[bytes]:
    return [
        p.read_bytes() for p in sorted(CORPUS.iterdir()) if p.is_file() and p.name != "README.md"
    ]


def location_texts(mails: list[bytes]) -> tuple[list[str], float]:
    """The text of every place in the mails (chunked for spaCy), and the CPU seconds parsing
    and extraction took: the part of the pipeline Presidio would need from us."""
    texts: list[str] = []
    started = time.process_time()
    for raw in mails:
        for item in extract_locations(parse_message(raw)):
            if isinstance(item, Location) and item.text:
                texts.extend(_chunks(item.text))
    return texts, time.process_time() - started


def _chunks(text: str) -> list[str]:
    return [text[i : i + PRESIDIO_CHUNK_CHARS] for i in range(0, len(text), PRESIDIO_CHUNK_CHARS)]


# ---- measuring ---------------------------------------------------------------------------------


def quality(analyzer: Any) -> dict[str, Any]:
    examples = load_examples()
    ours = evaluate(mailsafe_detector, examples)
    theirs = evaluate(presidio_detector(analyzer), examples)
    return {"examples": len(examples), "ours": ours, "presidio": theirs}


def seconds(analyzer: Any, mails: list[bytes]) -> dict[str, float]:
    """CPU seconds of each side on ``mails`` (the median of ``REPEATS`` interleaved rounds),
    and their size."""
    rules, sender = default_rules(), SenderInfo("bench@corp.example")
    for raw in mails[:WARM_UP_MAILS]:  # imports and caches, on both sides
        scan_message(raw, rules, sender)
        analyzer.analyze(text=raw[:2000].decode("latin-1"), language="ko")
    rounds: dict[str, list[float]] = {"ours": [], "pipeline": [], "ours_detect": [], "presidio": []}
    texts: list[str] = []
    for _ in range(REPEATS):
        started = time.process_time()
        for raw in mails:
            scan_message(raw, rules, sender)
        rounds["ours"].append(time.process_time() - started)
        texts, pipeline = location_texts(mails)
        rounds["pipeline"].append(pipeline)
        started = time.process_time()
        for text in texts:
            detect(text)
        rounds["ours_detect"].append(time.process_time() - started)
        started = time.process_time()
        for text in texts:
            analyzer.analyze(text=text, language="ko")
        rounds["presidio"].append(time.process_time() - started)
    median = {key: statistics.median(values) for key, values in rounds.items()}
    return {
        "mails": len(mails),
        "megabytes": sum(len(m) for m in mails) / 1e6,
        "text_megachars": sum(len(t) for t in texts) / 1e6,
        "ours": median["ours"],
        "presidio_pipeline": median["pipeline"] + median["presidio"],
        "pipeline": median["pipeline"],
        "ours_detect": median["ours_detect"],
        "presidio": median["presidio"],
    }


def throughput(measured: dict[str, float]) -> dict[str, float]:
    """Seconds to MB/s (counts and sizes kept)."""
    rates = dict(measured)
    for key in ("ours", "presidio_pipeline", "pipeline", "ours_detect", "presidio"):
        rates[key] = measured["megabytes"] / measured[key]
    return rates


def combined(parts: list[dict[str, float]]) -> dict[str, float]:
    return {key: sum(part[key] for part in parts) for key in parts[0]}


def report(q: dict[str, Any], t: dict[str, float]) -> str:
    lines = [
        f"Labelled set: {q['examples']} examples (half look-alikes), tests/data/pii/labelled.jsonl.",
        "",
        "| type | recall (ours) | recall (Presidio) | false-positive rate (ours) | false-positive rate (Presidio) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for kind in TYPES:
        ours, theirs = q["ours"][kind], q["presidio"][kind]
        lines.append(
            f"| `{kind}` | {ours.recall:.3f} | {theirs.recall:.3f} | "
            f"{ours.false_positive_rate:.4f} | {theirs.false_positive_rate:.4f} |"
        )
    ratio = t["ours"] / t["presidio_pipeline"]
    lines += [
        "",
        f"Throughput on {t['mails']:.0f} mixed mails, {t['megabytes']:.1f} MB raw "
        f"({t['text_megachars']:.1f} M characters of extracted text), CPU time of one process:",
        "",
        "| side | MB/s of raw mail | ratio to Presidio |",
        "| --- | --- | --- |",
        f"| ours: parse, extract, detect, decide | {t['ours']:.2f} | {ratio:.1f} |",
        f"| Presidio in the same pipeline (our parse and extraction, its analyzer) (peer) | {t['presidio_pipeline']:.2f} | 1.0 |",
        f"| detection alone, ours | {t['ours_detect']:.2f} | {t['ours_detect'] / t['presidio']:.1f} |",
        f"| detection alone, Presidio (peer) | {t['presidio']:.2f} | 1.0 |",
        f"| parsing and extraction alone (part of both pipeline rows) | {t['pipeline']:.2f} | - |",
        "",
        "Presidio has no MIME or attachment reader, so in the pipeline row it is given ours. "
        f"Our whole scan against Presidio's analysis alone (parsing and extraction free for it): "
        f"{t['ours'] / t['presidio']:.1f}x.",
        "",
        f"Target: recall >= 0.99 and false-positive rate <= 0.01 for every type, each at least as "
        f"good as Presidio's; throughput >= {THROUGHPUT_TARGET:.0f}x Presidio's in the same pipeline.",
    ]
    return "\n".join(lines)


def verdict(q: dict[str, Any], t: dict[str, float]) -> list[str]:
    problems = []
    for kind in TYPES:
        ours, theirs = q["ours"][kind], q["presidio"][kind]
        if ours.recall < 0.99 or ours.recall < theirs.recall:
            problems.append(f"{kind}: recall {ours.recall:.3f} (Presidio {theirs.recall:.3f})")
        if ours.false_positive_rate > 0.01 or ours.false_positive_rate > theirs.false_positive_rate:
            problems.append(
                f"{kind}: false-positive rate {ours.false_positive_rate:.4f} "
                f"(Presidio {theirs.false_positive_rate:.4f})"
            )
    if t["ours"] < THROUGHPUT_TARGET * t["presidio_pipeline"]:
        problems.append(f"throughput only {t['ours'] / t['presidio_pipeline']:.1f}x Presidio's")
    return problems


METHOD = """How: the labelled set is `tests/data/pii/labelled.jsonl` (made by `generate.py`
beside it, fixed seed): 300 texts with personal data of the six types in Korean and English
contexts, full-width digits and odd separators, and 300 look-alikes (phone numbers, dates,
order and invoice numbers, business and corporate registration numbers, Luhn-failing card
numbers, impossible dates and gender digits, wrong licence regions, product codes). A labelled
span is found when the same type is reported over it; the false-positive rate of a type is
the share of texts without that type in which it is reported. Presidio (presidio-analyzer
with KrRrn, KrFrn, KrDriverLicense, KrPassport and CreditCard recognizers, on a blank spaCy
pipeline since no model can be downloaded) runs on the same texts in the same process.
Mixed mail is the real-world corpus (/work/shared/corpus, 359 messages, read in place) plus
120 generated Korean business mails whose bodies are half prose, half lines of the labelled
set, a third of them carrying 50-400-row staff lists (CSV, xlsx, ZIP) and the rest docx,
PDF, HWP and HWPX attachments: far denser in personal data than real outbound mail."""


CHANGES = """**What won back issue 19's cost (12-05, second-generation detection).** The new kinds
made the scan a fifth to a quarter slower (8.5x Presidio in a loaded run; section "Detection,
second generation" below). Findings are unchanged: every finding (type, span, value, mask,
confidence) of the labelled set, the corpus and the generated mails was recorded before and
compared after each step, with 80 000 random texts against the previous detector, and
`tests/mailsafe/test_pii_fast_paths.py` checks each shortcut against the slow way.

- The secrets' start search is one pattern whose branches each begin with a literal (the
  engine then enters only the branch of the character it found), and it also finds the token
  prefixes `sk-`, `npm_` and `rk_live_` (three substring searches per text before).
- Phone patterns are tried only at starts whose first digit is `0` (numeric licences at `1`
  or `2`): phones were a quarter of all pattern tries.
- A candidate with no context word within its window asks only the column header; the
  context words of a window are remembered by its content (a quoted signature, a template line).
- The text finders run in one call, each behind its cheap test; MRZ lines are searched from
  their first character.
- Masked forms, counting keys of values and masked place names are remembered by value.

**What made the scan faster (12-05, issue 14's line kept with a margin for issue 19).**
The generated half was the slow one: about 20 000 findings, each paying Python calls, and
Korean text, which every whole-text regex search tests character by character against a class.
No finding changed on the corpus or the labelled set, and a fuzz of 200 000 random texts
gave the same findings before and after; the one change in behaviour is the last point.

- Searches skip to a literal or a small class instead of trying every position: the number
  starts begin with the digit and skip the rest of a chain ("110-012-345678") and every run
  that can begin no pattern; the four-digit pre-check is written out (`\\d{4}` gets no
  first-character test); uuencode's `begin` is searched for rather than `^` at every position.
- ASCII text (most real mail) skips the look-alike search and is searched through its
  *shape*, a same-length copy with every digit `0`, every passport letter `M`, every other
  letter `a`: the four-digit check, number runs and passports then start with a literal.
- Per finding: masks by `str.translate`, check digits (Luhn, resident numbers) summed from
  the bytes in C, context decided from flags, no lambdas or repeated slicing in the overlap
  pass, confidences rounded once per score, a text standing in several places detected once,
  the policy matching each place once rather than each finding.
- Parsing: the MIME fast path parses header blocks itself (feedparser's rules, defects
  included) and reads each node's content type once; the header block's end and bare CRs are
  found by one search each; base64 bodies are decoded without splitting them into lines;
  headers are indexed once per message; values without encoded words skip RFC 2047 decoding.
  A "From " line ending a header block is now the body's first line, as in the standard
  parser (the fast path dropped it, so the scan did not read it)."""


def write_doc(text: str) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    replace_section(
        f"## Scanning\n\n`tests/benchmarks/bench_scan.py` ({stamp}), one run "
        f"(each timing the median of {REPEATS} rounds):\n\n{text}\n"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--no-doc", action="store_true", help="do not update docs/performance.md")
    args = parser.parse_args()
    analyzer = presidio_analyzer()
    q = quality(analyzer)
    real = seconds(analyzer, corpus_mails())
    generated = seconds(analyzer, generated_mails(load_examples()))
    t = throughput(combined([real, generated]))
    text = (
        report(q, t)
        + "\n\n"
        + subsets({"real-world corpus": real, "generated, PII-dense": generated})
    )
    print(text)
    problems = verdict(q, t)
    outcome = "all targets met" if not problems else "BELOW TARGET: " + "; ".join(problems)
    text += f"\n\nResult of this run: {outcome}."
    print(text)
    if not args.no_doc:
        write_doc(METHOD + "\n\n" + text + "\n\n" + CHANGES)
    return 1 if problems else 0


def subsets(parts: dict[str, dict[str, float]]) -> str:
    lines = [
        "The two halves of the mix, measured in the same run:",
        "",
        "| part | mails | MB | findings-heavy? | ours MB/s | Presidio pipeline MB/s | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, measured in parts.items():
        rates = throughput(measured)
        dense = "yes" if "generated" in name else "no"
        lines.append(
            f"| {name} | {rates['mails']:.0f} | {rates['megabytes']:.1f} | {dense} | {rates['ours']:.2f} | "
            f"{rates['presidio_pipeline']:.2f} | {rates['ours'] / rates['presidio_pipeline']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
