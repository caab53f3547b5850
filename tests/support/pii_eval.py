"""Score a detector against the labelled set in tests/data/pii/labelled.jsonl.

A labelled span counts as found when the detector reports the same type over an overlapping
span. A reported finding that overlaps no labelled span of its type is a false positive.
Per type:
    recall = labelled spans found / labelled spans
    false-positive rate = examples with at least one false positive of that type
                          / examples carrying no label of that type
(so an RRN reported as a foreigner number counts against ``foreigner_id``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

LABELLED_SET = Path(__file__).resolve().parent.parent / "data" / "pii" / "labelled.jsonl"
TYPES = ("rrn", "foreigner_id", "driver_license", "passport", "credit_card", "bank_account")
# Issue 19's set: every kind the detector reports, scored inside every container.
LABELLED_KINDS = LABELLED_SET.with_name("labelled_kinds.jsonl")
ALL_KINDS = (
    *TYPES, "health_insurance", "passport_mrz", "phone", "email", "secret",
)  # fmt: skip

Span = tuple[str, int, int]  # type, start, end
Detector = Callable[[str], Iterable[Span]]


def load_examples(path: Path = LABELLED_SET) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


@dataclass
class TypeScore:
    labelled: int = 0
    found: int = 0
    negatives: int = 0
    false_positive_examples: int = 0
    misses: list[str] = field(default_factory=list)
    false_positives: list[str] = field(default_factory=list)

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def false_positive_rate(self) -> float:
        return self.false_positive_examples / self.negatives if self.negatives else 0.0


def _overlaps(a: Span, b: Span) -> bool:
    return a[0] == b[0] and a[1] < b[2] and b[1] < a[2]


def evaluate(
    detector: Detector, examples: list[dict[str, object]], kinds: tuple[str, ...] = TYPES
) -> dict[str, TypeScore]:
    scores = {kind: TypeScore() for kind in kinds}
    for example in examples:
        text = str(example["text"])
        labels: list[Span] = [
            (str(lab["type"]), int(lab["start"]), int(lab["end"]))  # type: ignore[index]
            for lab in example["labels"]  # type: ignore[attr-defined]
        ]
        reported = [span for span in detector(text) if span[0] in scores]
        for label in labels:
            if label[0] not in scores:  # a kind not measured here (Presidio has no e-mail)
                continue
            score = scores[label[0]]
            score.labelled += 1
            if any(_overlaps(label, span) for span in reported):
                score.found += 1
            else:
                score.misses.append(text)
        labelled_types = {label[0] for label in labels}
        for kind, score in scores.items():
            if kind in labelled_types:
                wrong = [
                    s
                    for s in reported
                    if s[0] == kind and not any(_overlaps(s, lab) for lab in labels)
                ]
                if wrong:
                    score.false_positives.append(text)
                continue
            score.negatives += 1
            if any(span[0] == kind for span in reported):
                score.false_positive_examples += 1
                score.false_positives.append(text)
    return scores


def mailsafe_detector(text: str) -> list[Span]:
    from mailsafe.pii import detect

    return [(f.type, f.start, f.end) for f in detect(text)]


# ---- inside containers (issue 19.6) -----------------------------------------------------------
#
# Each row of the set is put alone into a file of each kind the scanner reads, built in memory
# with the libraries the project uses; the scanner's own extraction reads it back and the
# detector runs on every place it returns. A finding is placed back on the row's text by its
# value (exactly, then letters and digits only after NFKC, then, for OCR's misreadings, the
# longest common run of at least OCR_MATCH_SHARE of it, else a stretch of the row at least
# OCR_SIMILAR_SHARE similar to it); a finding that cannot be placed is a false positive of
# its kind.

CONTAINERS = ("plain", "html", "xlsx", "docx", "pdf", "hwpx", "zip", "png")
OCR_MATCH_SHARE = 0.6
# Else a stretch of the row as long as the value, this similar to it (difflib's ratio): a long
# token with three or four characters misread here and there (D64, second round).
OCR_SIMILAR_SHARE = 0.8
PDF_PAGE_WIDTH = 1400  # points: the longest row stays on the page, no row is wrapped
XLSX_HEADER = ["순번", "내용"]  # neutral column headers: the row's own words give context


def container_file(container: str, text: str) -> tuple[str, bytes]:
    """``text`` as the only content of a file of ``container``'s kind: (file name, bytes)."""
    from tests.support import documents

    if container == "plain":
        return "메모.txt", text.encode()
    if container == "html":
        body = documents._xml_escape(text).replace("\n", "<br>\n")
        return "본문.html", f"<html><body><p>{body}</p></body></html>".encode()
    if container == "xlsx":
        return "명단.xlsx", documents.make_xlsx([XLSX_HEADER, [1, text]])
    if container == "docx":
        return "보고서.docx", documents.make_docx(text)
    if container == "pdf":
        return "보고서.pdf", _wide_pdf(text)
    if container == "hwpx":
        return "보고서.hwpx", documents.make_hwpx(text)
    if container == "zip":
        return "자료.zip", documents.make_zip({"자료/메모.txt": text.encode()})
    if container == "png":
        return "화면.png", documents.make_screenshot(text.split("\n"))
    raise ValueError(f"no container {container!r}: one of {', '.join(CONTAINERS)}")


def _wide_pdf(text: str) -> bytes:
    from mailsafe.mupdf import pymupdf

    document = pymupdf.open()
    page = document.new_page(width=PDF_PAGE_WIDTH, height=842)
    page.insert_text((50, 72), text, fontname="korea", fontsize=11)
    data: bytes = document.tobytes()
    document.close()
    return data


@dataclass
class ReadingClock:
    """CPU seconds the scanner spent reading rows out of one container's files and detecting
    in what it read (building the files not counted), this process and its children (the
    Tesseract it runs), and the rows read."""

    rows: int = 0
    seconds: float = 0.0

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds else 0.0


def cpu_seconds() -> float:
    """CPU time of this process and of its children waited for (Tesseract runs as one)."""
    import resource
    import time

    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def container_detector(container: str, clock: ReadingClock | None = None) -> Detector:
    """The scanner's reading of ``container`` then the detector, spans placed on the row;
    the reading and detecting timed on ``clock`` when one is given."""
    import time

    from mailsafe.extract.attachments import attachment_locations
    from mailsafe.extract.limits import Budget, ExtractLimits
    from mailsafe.extract.ocr import resolve_ocr
    from mailsafe.extract.types import Location
    from mailsafe.pii import detect

    limits = ExtractLimits(ocr_languages=resolve_ocr(True) if container == "png" else "")

    def run(text: str) -> list[Span]:
        name, data = container_file(container, text)
        started = cpu_seconds()
        places = attachment_locations(name, data, Budget(limits, time.monotonic))
        found = [
            (finding.type, finding.text)
            for place in places
            if isinstance(place, Location) and place.text
            for finding in detect(place.text)
        ]
        if clock is not None:
            clock.seconds += cpu_seconds() - started
            clock.rows += 1
        return [place_on(text, kind, value) for kind, value in found]

    return run


def _letters_and_digits(text: str) -> tuple[str, list[int]]:
    """``text`` NFKC-folded to lower-case letters and digits, with each one's index."""
    import unicodedata

    kept, where = [], []
    for index, char in enumerate(text):
        for folded in unicodedata.normalize("NFKC", char).lower():
            if folded.isalnum():
                kept.append(folded)
                where.append(index)
    return "".join(kept), where


def place_on(text: str, kind: str, value: str) -> Span:
    """Where ``value`` (read out of a container) stands in the row ``text``; (kind, -1, -1)
    when it stands nowhere there."""
    exact = text.find(value)
    if exact >= 0:
        return kind, exact, exact + len(value)
    folded, where = _letters_and_digits(text)
    key, _ = _letters_and_digits(value)
    if not key:
        return kind, -1, -1
    found = folded.find(key)
    if found >= 0:
        return kind, where[found], where[found + len(key) - 1] + 1
    from difflib import SequenceMatcher

    match = SequenceMatcher(None, folded, key, autojunk=False).find_longest_match()
    if match.size >= max(4, OCR_MATCH_SHARE * len(key)):
        return kind, where[match.a], where[match.a + match.size - 1] + 1
    window = _closest_window(folded, key)
    if window is not None:
        return kind, where[window], where[min(window + len(key), len(where)) - 1] + 1
    return kind, -1, -1


def _closest_window(folded: str, key: str) -> int | None:
    """Where in ``folded`` a stretch as long as ``key`` reads as ``key`` with a few characters
    misread (OCR's l/I, 0/O, a dropped or doubled letter scattered over a long token: no one
    run is 60 % of it), at a similarity of at least OCR_SIMILAR_SHARE; None when none does."""
    from difflib import SequenceMatcher

    best, best_ratio = None, OCR_SIMILAR_SHARE
    matcher = SequenceMatcher(None, autojunk=False)
    matcher.set_seq2(key)
    for start in range(max(1, len(folded) - len(key) + 1)):
        matcher.set_seq1(folded[start : start + len(key)])
        if matcher.real_quick_ratio() >= best_ratio and matcher.quick_ratio() >= best_ratio:
            ratio = matcher.ratio()
            if ratio >= best_ratio:
                best, best_ratio = start, ratio
    return best


# The PNG sample (OCR costs ~0.8 s a row), taken within each category of the set: every
# OCR_POSITIVE_STEP-th row of a kind's rows (200 a kind: 40 rows, so at least 40 labelled
# values of every kind, enough for one miss to move a kind's recall by 0.025, not 0.07),
# and every OCR_LOOKALIKE_STEP-th of each look-alike's (~15 each: the false alarms).
OCR_POSITIVE_STEP = 5
OCR_LOOKALIKE_STEP = 10


def stratified_sample(examples: list[dict[str, object]]) -> list[dict[str, object]]:
    """Every OCR_POSITIVE_STEP-th row of each positive category and every
    OCR_LOOKALIKE_STEP-th of each look-alike category, in the set's order."""
    seen: dict[object, int] = {}
    sample = []
    for example in examples:
        index = seen[example["category"]] = seen.get(example["category"], -1) + 1
        step = OCR_POSITIVE_STEP if example["kind"] == "positive" else OCR_LOOKALIKE_STEP
        if index % step == 0:
            sample.append(example)
    return sample


Sampler = Callable[[list[dict[str, object]]], list[dict[str, object]]]


def evaluate_containers(
    examples: list[dict[str, object]],
    containers: tuple[str, ...] = CONTAINERS,
    kinds: tuple[str, ...] = ALL_KINDS,
    ocr_sample: Sampler = stratified_sample,
    clocks: dict[str, ReadingClock] | None = None,
) -> dict[str, dict[str, TypeScore]]:
    """Scores per container and kind; PNG (OCR, slow) on ``ocr_sample`` of the rows only.
    The reading of each container but plain timed on ``clocks[container]`` when given."""
    return {
        container: evaluate(
            mailsafe_detector
            if container == "plain"
            else container_detector(container, None if clocks is None else clocks[container]),
            ocr_sample(examples) if container == "png" else examples,
            kinds,
        )
        for container in containers
    }


def overall(scores: dict[str, TypeScore]) -> tuple[float, float]:
    """Recall over every labelled span, false-positive rate over every (row, kind) pair
    whose row carries no label of that kind."""
    labelled = sum(s.labelled for s in scores.values())
    negatives = sum(s.negatives for s in scores.values())
    found = sum(s.found for s in scores.values())
    wrong = sum(s.false_positive_examples for s in scores.values())
    return (found / labelled if labelled else 1.0, wrong / negatives if negatives else 0.0)
