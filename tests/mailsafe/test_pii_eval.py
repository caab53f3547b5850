"""The evaluation of issue 19.6 itself: its arithmetic on a tiny set, the placing of findings
read out of containers, each container's round trip, the committed set and the bench's lines."""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from pathlib import Path

import pytest

from tests.benchmarks.bench_detect import Speed, speed, verdict
from tests.support.pii_eval import (
    ALL_KINDS,
    CONTAINERS,
    LABELLED_KINDS,
    ReadingClock,
    Span,
    TypeScore,
    container_detector,
    evaluate,
    evaluate_containers,
    load_examples,
    overall,
    place_on,
    stratified_sample,
)

CARD = "4111-1111-1111-1111"
TINY: list[dict[str, object]] = [
    {"text": f"카드번호 {CARD}", "labels": [{"type": "credit_card", "start": 5, "end": 24}]},
    {"text": "연락처 010-1234-5678", "labels": [{"type": "phone", "start": 4, "end": 17}]},
    {"text": "주문번호 2024-0715-0012", "labels": []},
    {"text": "사번 20190123", "labels": []},
]


def test_evaluate_counts_recall_and_false_positives() -> None:
    def detector(text: str) -> list[Span]:
        if text.startswith("카드"):
            return [("credit_card", 5, 24)]
        if text.startswith("주문"):
            return [("credit_card", 5, 19)]  # a false alarm on a look-alike
        return []  # the phone is missed

    scores = evaluate(detector, TINY, ("credit_card", "phone"))
    assert (scores["credit_card"].found, scores["credit_card"].labelled) == (1, 1)
    assert (scores["phone"].found, scores["phone"].labelled) == (0, 1)
    assert scores["credit_card"].false_positive_rate == pytest.approx(1 / 3)
    assert scores["phone"].false_positive_rate == 0.0
    assert overall(scores) == (pytest.approx(0.5), pytest.approx(1 / 6))


def test_evaluate_measures_a_subset_of_kinds() -> None:
    scores = evaluate(lambda _text: [("credit_card", 5, 24)], TINY, ("credit_card",))
    assert list(scores) == ["credit_card"]
    assert scores["credit_card"].recall == 1.0
    assert scores["credit_card"].false_positive_rate == 1.0  # every other row is a false alarm


def test_place_on_finds_values_as_containers_return_them() -> None:
    text = "주민번호 ９００１０１－１２３４５６７ 입니다"
    assert place_on(text, "rrn", "９００１０１－１２３４５６７") == ("rrn", 5, 19)
    assert place_on(text, "rrn", "900101-1234567") == ("rrn", 5, 19)  # folded back
    # OCR misread one digit: the longest common run, which overlaps the value
    assert place_on(text, "rrn", "900101-1284567") == ("rrn", 5, 14)
    assert place_on(text, "rrn", "8812250000000") == ("rrn", -1, -1)  # nowhere in the row


def test_place_on_finds_a_long_value_with_misreadings_scattered_over_it() -> None:
    """Three characters misread across a token (O/0, J/s, J/I): no common run is 60 % of it,
    but the stretch of the row it stands for is; a value of the row's other half is not."""
    text = "OPENAI_API_KEY: sk-proj-qtORhlpnkNq07nrX0Jv4geOXVnQ8ZNJSEzzkk4d5 / 연락처 01027641559"
    read = "sk-proj-qtORhlpnkNqO7nrX0sv4geOXVnQ8ZNISEzzkk4d5"
    assert place_on(text, "secret", read) == ("secret", 16, 64)
    assert place_on(text, "secret", "sk-proj-UeLWaCjdkiTBeCDE") == ("secret", -1, -1)


@pytest.mark.parametrize("container", [c for c in CONTAINERS if c != "png"])
def test_every_container_reads_the_rows_back(container: str) -> None:
    scores = evaluate(container_detector(container), TINY, ("credit_card", "phone"))
    assert scores["credit_card"].recall == 1.0, container
    assert scores["phone"].recall == 1.0, container
    assert overall(scores)[1] == 0.0, container


def test_png_goes_through_ocr() -> None:
    scores = evaluate_containers(
        TINY[:1], ("png",), ("credit_card",), ocr_sample=lambda rows: rows[:1]
    )
    assert scores["png"]["credit_card"].recall == 1.0


def test_unknown_container_is_refused() -> None:
    with pytest.raises(ValueError, match="no container 'rtf'"):
        container_detector("rtf")("x")


def test_committed_kinds_set_is_what_the_generator_makes() -> None:
    path = LABELLED_KINDS.parent / "generate.py"
    spec = importlib.util.spec_from_file_location("pii_generate", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    generated = [json.dumps(e, ensure_ascii=False, sort_keys=True) for e in module.generate_all()]
    assert generated == Path(LABELLED_KINDS).read_text(encoding="utf-8").splitlines()


def test_kinds_set_covers_every_kind_and_its_look_alikes() -> None:
    examples = load_examples(LABELLED_KINDS)
    assert len(examples) >= 4000
    labelled = Counter(lab["type"] for e in examples for lab in e["labels"])  # type: ignore[attr-defined]
    assert all(labelled[kind] >= 200 for kind in ALL_KINDS), labelled
    lookalikes = Counter(str(e["category"]) for e in examples if e["kind"] == "lookalike")
    assert len(lookalikes) >= 15
    for needed in ("business_number", "masked_number", "label_names_other_kind", "date"):
        assert lookalikes[needed] >= 100, needed


def _scores(recall_found: int, false_alarms: int) -> dict[str, TypeScore]:
    return {"phone": TypeScore(100, recall_found, 100, false_alarms)}


def test_verdict_names_each_missed_line() -> None:
    good = {"plain": _scores(100, 0), "png": _scores(96, 0)}
    assert verdict(good, {}) == []
    bad = {"plain": _scores(98, 2), "png": _scores(90, 0)}
    problems = verdict(bad, {"phone": TypeScore(100, 99)})
    assert "plain: recall 0.9800 < 0.99" in problems
    assert "plain: false-positive rate 0.0200" in problems
    assert "png: recall 0.9000 < 0.95" in problems
    assert "phone: recall 0.980 < Presidio's 0.990" in problems


def test_png_sample_holds_forty_values_of_every_kind() -> None:
    sample = stratified_sample(load_examples(LABELLED_KINDS))
    counts = Counter(str(label["type"]) for row in sample for label in row["labels"])  # type: ignore[attr-defined]
    assert set(counts) == set(ALL_KINDS)
    assert min(counts.values()) >= 40
    assert {row["category"] for row in sample} == {
        row["category"] for row in load_examples(LABELLED_KINDS)
    }


def test_reading_clock_counts_rows_and_cpu_seconds() -> None:
    clock = ReadingClock()
    detector = container_detector("html", clock)
    detector(str(TINY[0]["text"]))
    detector(str(TINY[1]["text"]))
    assert clock.rows == 2
    assert 0.0 < clock.seconds < 5.0
    assert clock.rows_per_second == clock.rows / clock.seconds


def test_verdict_holds_the_speed_line() -> None:
    good = {"plain": _scores(100, 0)}
    fast = Speed(ours=(30_000.0, 16_000.0, 32_000.0), presidio=(2_000.0, 1_000.0, 2_000.0))
    assert fast.ratio == 15.0
    assert verdict(good, {}, fast) == []
    slow = Speed(ours=(60_000.0,), presidio=(16_000.0,))
    assert verdict(good, {}, slow) == ["speed: 3.8 x Presidio's rows per second < 15"]


def test_speed_alternates_and_takes_each_sides_median() -> None:
    calls: list[str] = []

    class Analyzer:
        def analyze(self, text: str, language: str) -> list[object]:
            calls.append("presidio")
            return []

    measured = speed(Analyzer(), ["카드번호 4111-1111-1111-1111"], rounds=3)
    assert len(measured.ours) == len(measured.presidio) == 3
    assert min(measured.ours + measured.presidio) > 0
    assert len(calls) == 1 + 3  # the warm-up, then one row a round
