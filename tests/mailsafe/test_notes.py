"""The note catalogue: every note made from it reads back in Korean, nothing else is changed."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from mailsafe.mime import parse_message
from mailsafe.notes import NOTES, REASONS, note, note_code, reason_words, translate

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
SAMPLE = {"limit": 8, "count": 3, "page": 2, "shown": 10, "total": 42,
          "error": "HeaderParseError", "defect": "missing header body separator defect",
          "header": "from", "name": "견적서 (최종): 2026.pdf", "width": 14400,
          "height": 14400}  # fmt: skip


def _fields(template: str) -> list[str]:
    return sorted(re.findall(r"\{(\w+)\}", template))


@pytest.mark.parametrize("code", sorted(NOTES))
def test_every_note_reads_back_in_korean(code: str) -> None:
    english, korean = NOTES[code]
    assert _fields(english) == _fields(korean)
    values = {name: SAMPLE[name] for name in _fields(english)}
    text = note(code, **values)
    assert translate(text, "ko") == korean.format(**values)
    assert translate(text, "en") == text
    assert note_code(text) == code  # the outbound scan tells notes apart by their code


def test_text_from_no_template_has_no_code() -> None:
    assert note_code("a note from somewhere else") is None


def test_reason_codes_have_words_and_unknown_codes_stay() -> None:
    for code, (english, korean) in REASONS.items():
        assert reason_words(code, "ko") == korean
        assert reason_words(code, "en") == english
        assert translate(english, "ko") == korean  # a worker failure also travels as a note
    assert reason_words("executable", "ko") == "executable"


def test_text_that_matches_no_template_is_left_alone() -> None:
    for text in ("", "something new from a newer outer agent", "3 remote reference(s)",
                 "more than many MIME parts: the rest is not shown"):  # fmt: skip
        assert translate(text, "ko") == text


def test_hostile_notes_match_quickly() -> None:
    """Notes come from the (possibly compromised) outer agent: no pattern may backtrack badly."""
    hostile = [
        ": " * 250,
        "a: 1 of 2 pages shown (page cap " * 15,
        "x: page " * 60,
        "MIME defect: " * 38,
        "the " * 120 + "header is not a valid address list!",
    ]
    started = time.process_time()
    for text in hostile * 20:
        translate(text[:500], "ko")
    assert time.process_time() - started < 1.0


def test_every_parse_note_of_the_corpus_comes_from_the_catalogue() -> None:
    files = sorted(p for p in CORPUS.iterdir() if p.name != "README.md")
    assert len(files) >= 350, f"corpus not found at {CORPUS}"
    seen = 0
    for path in files:
        for text in parse_message(path.read_bytes()).defects:
            seen += 1
            assert translate(text, "ko") != text, f"{path.name}: {text!r} has no template"
    assert seen > 50  # the corpus is full of broken mail
