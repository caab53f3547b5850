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
