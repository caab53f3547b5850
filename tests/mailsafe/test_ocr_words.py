"""A reading's repaired lines keep their words' boxes (``mailsafe.extract.ocr_words``): a finding
only the read-back makes is painted over, and positioned, where its characters were read."""

from __future__ import annotations

from mailsafe.extract.ocr_reading import read_back, read_back_lines
from mailsafe.extract.ocr_words import WordReading, read_back_placed
from mailsafe.pii import detect
from mailsafe.positions import PlacedWord, boxes_over
from mailsafe.render.masking.pictures import boxes_to_paint


def _reading(lines: list[list[str]]) -> tuple[str, list[PlacedWord]]:
    """Words on lines, a space between words; word n of line m boxed (10n, 20m, 10n+9, 20m+9)."""
    text, words = "", []
    for row, line in enumerate(lines):
        if row:
            text += "\n"
        for column, word in enumerate(line):
            if column:
                text += " "
            words.append(PlacedWord(len(text), len(text) + len(word),
                                    (10 * column, 20 * row, 10 * column + 9, 20 * row + 9)))  # fmt: skip
            text += word
    return text, words


def _boxes_of(reading: WordReading, kind: str) -> list[tuple[int, int, int, int]]:
    (finding,) = [f for f in detect(reading.text) if f.type == kind]
    return list(boxes_over(reading.words, finding.start, finding.end))


def test_a_line_repaired_in_place_places_each_word_where_its_characters_went() -> None:
    text, words = _reading([["고객", "명단"], ["여권번호:", "605452849"]])
    reading = read_back_placed(text, words)
    assert reading.text == f"{text}\n여권번호: G05452849"
    assert reading.words[: len(words)] == tuple(words)  # the reading's own places stay
    assert [reading.text[w.start : w.end] for w in reading.words[len(words) :]] == [
        "여권번호:", "G05452849"]  # fmt: skip
    assert _boxes_of(reading, "passport") == [words[3].box]


def test_digits_joined_by_the_read_back_have_every_digits_box() -> None:
    digits = "5 3 5 9 6 7 6 0 7".split()
    text, words = _reading([["출장자", "여권번호", *digits, "입니다."]])
    reading = read_back_placed(text, words)
    assert "S35967607" in reading.text
    assert _boxes_of(reading, "passport") == [w.box for w in words[2:11]]


def test_a_zone_read_back_whole_covers_its_source_lines() -> None:
    name = "PKKORHONGCCMINII KKK KEE"
    number = "M760483264KORG009 164F27040362213309¢<<<<<<40".split()
    text, words = _reading([["Passport", "scan:"], name.split(), number])
    reading = read_back_placed(text, words)
    found = [f for f in detect(reading.text) if f.type == "passport_mrz"]
    assert len(found) == 2
    name_boxes = set(boxes_over(reading.words, found[0].start, found[0].end))
    number_boxes = set(boxes_over(reading.words, found[1].start, found[1].end))
    assert name_boxes == {w.box for w in words[2:5]}
    assert number_boxes == {w.box for w in words[5:]}
    painted, counts = boxes_to_paint(reading, {"passport_mrz"})
    assert set(painted) == {w.box for w in words[2:]}
    assert counts == {"passport_mrz": 2}


def test_nothing_repaired_or_nothing_new_adds_no_line() -> None:
    text, words = _reading([["고객", "명단"], ["주민번호", "800101-1234560"]])
    assert read_back_placed(text, words) == WordReading(text, tuple(words))
    # a repair that finds nothing new (a reading already holding the number) adds nothing
    text, words = _reading([["여권번호:", "G05452849", "/", "여권번호:", "605452849"]])
    assert read_back_placed(text, words).text == text


def test_the_lines_read_back_name_their_source_and_join_into_read_back() -> None:
    text = "Passport scan:\nPKKORHONGCCMINII KKK KEE\nM760483264KORG009 164F27040362213309¢<<<<<<40"
    lines = read_back_lines(text)
    assert [(line.source, line.repaired) for line in lines] == [
        (0, True), (1, True), (2, True), (1, False), (2, False)]  # fmt: skip
    assert "\n".join(line.text for line in lines) == read_back(text)
