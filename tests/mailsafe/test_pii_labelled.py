"""The labelled set: its shape, that it is what the generator makes, and our scores on it.

Issue 5 asks recall >= 0.99 and a false-positive rate <= 1% for every type.
(Presidio's figures on the same set are measured in tests/benchmarks/bench_scan.py.)
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.support.pii_eval import LABELLED_SET, TYPES, evaluate, load_examples, mailsafe_detector

MIN_RECALL = 0.99
MAX_FALSE_POSITIVE_RATE = 0.01


@pytest.fixture(scope="module")
def examples() -> list[dict[str, object]]:
    return load_examples()


def test_set_has_500_examples_half_lookalikes(examples: list[dict[str, object]]) -> None:
    assert len(examples) >= 500
    lookalikes = [e for e in examples if e["kind"] == "lookalike"]
    assert len(lookalikes) * 2 >= len(examples)
    categories = Counter(str(e["category"]) for e in lookalikes)
    for needed in (
        "phone", "date", "order_number", "invoice_number", "business_registration",
        "luhn_failing_card", "impossible_date",
    ):  # fmt: skip
        assert categories[needed] >= 20, needed


def test_every_type_is_labelled_often(examples: list[dict[str, object]]) -> None:
    labelled = Counter(lab["type"] for e in examples for lab in e["labels"])  # type: ignore[attr-defined]
    for kind in TYPES:
        assert labelled[kind] >= 50, kind


def test_labels_point_at_digits(examples: list[dict[str, object]]) -> None:
    for example in examples:
        text = str(example["text"])
        for label in example["labels"]:  # type: ignore[attr-defined]
            value = text[label["start"] : label["end"]]
            assert value.strip() == value, example
            assert any(ch.isdigit() for ch in value), example


def test_committed_set_is_what_the_generator_makes() -> None:
    path = LABELLED_SET.parent / "generate.py"
    spec = importlib.util.spec_from_file_location("pii_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in module.generate()]
    committed = Path(LABELLED_SET).read_text(encoding="utf-8").splitlines()
    assert generated == committed


def test_recall_and_false_positive_rate_per_type(examples: list[dict[str, object]]) -> None:
    scores = evaluate(mailsafe_detector, examples)
    report = {
        kind: (
            round(s.recall, 4),
            round(s.false_positive_rate, 4),
            s.misses[:3],
            s.false_positives[:3],
        )
        for kind, s in scores.items()
    }
    for kind, score in scores.items():
        assert score.labelled >= 50
        assert score.recall >= MIN_RECALL, report[kind]
        assert score.false_positive_rate <= MAX_FALSE_POSITIVE_RATE, report[kind]
