"""Masking pixels: personal data read by OCR in a picture, painted over with solid boxes.

The words Tesseract read (``mailsafe.extract.ocr.image_reading``) come as the outbound scan
reads them: Tesseract's text, each word placed in it with its box, a passport number's letter
read again from its word's pixels, the read-back's repaired lines after the reading with the
words of their source lines placed in them (``mailsafe.extract.ocr_words.WordReading``). The
text is searched with the same detector as any text, and every word a finding touches is
painted over, whole: a word box says where the word is, not where each of its characters is.

OCR misreads digits (``O`` for 0, ``l`` for 1, a stray quote); a misread digit can break a
date or a check digit, and the detector would then see no number. So in pictures, words that
are mostly digits are read a second time with the usual confusions undone (the text as read
is searched first: ``S12345678`` is a passport number, ``512345678`` is not), and for
resident and foreigner numbers the bare shape (six digits, a hyphen, seven digits) is painted
even when the date or check digit does not hold: in pixels an unchecked shape is safer
painted than shown. OCR also reads a digit twice or loses one (``8550315-2749188`` for
``850315-2749188``, read so from a 15 px screenshot), or splits the digits into two words
(``781 123-2145478``): the shape give or take a digit on either side of the hyphen, a space
anywhere in it, is painted too (*loose*), when no digit or hyphen adjoins it, so account
numbers in their usual groupings (3-6-5, 6-2-6, 4-3-6) and phone numbers do not match.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence, Set
from typing import Final

from PIL import Image, ImageDraw

from mailsafe.extract.ocr_words import WordReading
from mailsafe.positions import PlacedWord, Position, boxes_over
from mailsafe.render.masking.text import PLAIN_HIDING, Hiding, found_in

__all__ = ["PAINT", "boxes_to_paint", "paint", "scaled_boxes"]

# The colour of a painted box: black, as a redaction is.
PAINT: Final = (0, 0, 0)
# Pixels added around a word box: Tesseract's boxes hug the ink, anti-aliased edges lie outside.
PAD_PX: Final = 2
# Characters OCR puts where a digit was, in words that are mostly digits.
_DIGIT_CONFUSIONS: Final = str.maketrans("OoDQIl|!SZB", "00001111528")
# The shape of a resident or foreigner number, checked for nothing but its digits' places.
_REGISTRATION_SHAPE_RE: Final = re.compile(r"(?<!\d)\d{6}[ ]?[-.~][ ]?[1-8]\d{6}(?!\d)")
# The same shape as OCR may misread it: a digit more or fewer on either side of the hyphen
# (which OCR may read as a dash), the digits split into two words (Tesseract's word boxes do
# that to one number in about 25 in 15 px type), with no digit or hyphen next to it.
_LOOSE_REGISTRATION_SHAPE_RE: Final = re.compile(
    r"(?<![\d\-‐‑‒–—])\d(?: ?\d){4,6} ?[-.~‐‑‒–—] ?\d(?: ?\d){5,7}(?![\d\-‐‑‒–—])"
)
_SEPARATOR_RE: Final = re.compile(r"[-.~‐‑‒–—]")

Box = tuple[int, int, int, int]  # as mailsafe.positions.Box


def _as_digits(word: str) -> str:
    """The word with digit look-alikes undone, when most of it is digits (same length)."""
    digits = sum(char.isdigit() for char in word)
    return word.translate(_DIGIT_CONFUSIONS) if digits * 2 >= len(word) else word


def boxes_to_paint(
    reading: WordReading, types: Set[str], hiding: Hiding = PLAIN_HIDING
) -> tuple[list[Box], Counter[str]]:
    """The boxes of the words of ``reading`` that hold personal data of ``types`` (and runs
    of the numbers ``hiding`` knows), and the count per type: found in the text as read,
    then in the text with digit look-alikes undone in mostly-digit words (the same length:
    the words' places hold), where the first found nothing."""
    text = reading.text
    spans: list[tuple[int, int, str]] = [
        (f.start, f.end, f.type) for f in found_in(text, types, hiding=hiding)
    ]
    as_digits = _words_as_digits(text, reading.words)
    if as_digits != text:
        spans += _apart(spans, [(f.start, f.end, f.type)
                                for f in found_in(as_digits, types, hiding=hiding)])  # fmt: skip
    spans += _registration_shapes(as_digits, types, spans)
    counts: Counter[str] = Counter(kind for _, _, kind in spans)
    boxes: dict[Box, None] = {}
    for start, end, _ in spans:
        boxes.update(dict.fromkeys(boxes_over(reading.words, start, end)))
    return list(boxes), counts


def _words_as_digits(text: str, words: Sequence[PlacedWord]) -> str:
    """``text`` with each of its placed words that is mostly digits read as digits."""
    characters = list(text)
    for word in words:
        characters[word.start : word.end] = _as_digits(text[word.start : word.end])
    return "".join(characters)


def _apart(
    taken: Sequence[tuple[int, int, str]], spans: Sequence[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """The ``spans`` that overlap none of ``taken``."""
    return [(start, end, kind) for start, end, kind in spans
            if not any(start < until and begin < end for begin, until, _ in taken)]  # fmt: skip


def _registration_shapes(
    text: str, types: Set[str], found: Sequence[tuple[int, int, str]]
) -> list[tuple[int, int, str]]:
    """Spans of resident and foreigner number shapes the detector did not find: the exact
    shape under the type its gender digit names, when that type is masked; a shape a digit
    off (misread) under a masked type, whatever its digits say."""
    masked = [kind for kind in ("rrn", "foreigner_id") if kind in types]  # residents first
    if not masked:
        return []
    spans: list[tuple[int, int, str]] = []
    for pattern in (_REGISTRATION_SHAPE_RE, _LOOSE_REGISTRATION_SHAPE_RE):
        for match in pattern.finditer(text):
            taken = [*found, *spans]
            if any(match.start() < end and start < match.end() for start, end, _ in taken):
                continue
            kind = _registration_kind(match.group())
            if kind is None:
                spans.append((match.start(), match.end(), masked[0]))
            elif kind in types:
                spans.append((match.start(), match.end(), kind))
    return spans


def _registration_kind(shape: str) -> str | None:
    """The type a shape's gender digit names when it has a registration number's digits
    exactly (six, then seven starting 1-8); None for a shape a digit off."""
    front, back = (part.replace(" ", "") for part in _SEPARATOR_RE.split(shape, maxsplit=1))
    if len(front) != 6 or len(back) != 7 or back[0] not in "12345678":
        return None
    return "foreigner_id" if back[0] in "5678" else "rrn"


def scaled_boxes(
    found: Sequence[tuple[str, Position]], size: tuple[int, int]
) -> tuple[list[Box], Counter[str]]:
    """The boxes of positions found in a picture (in the pixels it was read in), in the
    pixels of the same picture drawn at ``size``; and the count per type."""
    boxes: list[Box] = []
    for _, position in found:
        width, height = position.pixels
        across, down = size[0] / max(width, 1), size[1] / max(height, 1)
        boxes += [
            (math.floor(left * across), math.floor(top * down),
             math.ceil(right * across), math.ceil(bottom * down))
            for left, top, right, bottom in position.boxes
        ]  # fmt: skip
    return boxes, Counter(kind for kind, _ in found)


def paint(
    image: Image.Image, boxes: Iterable[Box], fill: tuple[int, int, int] = PAINT
) -> Image.Image:
    """A copy of ``image`` (RGB) with every box painted over, a little wider than the box."""
    painted = image.convert("RGB") if image.mode != "RGB" else image.copy()
    draw = ImageDraw.Draw(painted)
    for left, top, right, bottom in boxes:
        draw.rectangle((left - PAD_PX, top - PAD_PX, right + PAD_PX, bottom + PAD_PX), fill=fill)
    return painted
