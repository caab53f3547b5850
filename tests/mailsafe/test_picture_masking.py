"""Inbound masking reads a picture as the outbound scan does (A4): one reading
(``mailsafe.extract.ocr_words``) with ocr4's re-read of a passport number's letter from its
word's pixels (D84) and the read-back's repaired lines (D77, D79), each finding's words placed
with their boxes. Before, the renderer read Tesseract's word boxes alone: a passport number
whose letter the Korean model read as a digit was found by the scan and shown unmasked.

Each case is a 15 px screenshot (the labelled set's font); the number's place in the picture
is measured from the font, not from the code under test.
"""

from __future__ import annotations

import io

import pytest
from PIL import Image, ImageFont

from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_words
from mailsafe.pii import detect
from mailsafe.positions import TextLayout, position_in
from mailsafe.render.masking import Masker
from mailsafe.render.masking.pictures import PAINT
from mailsafe.render.options import RenderOptions
from tests.support.documents import SCREEN_FONT, make_screenshot

READ = ExtractLimits(ocr_languages="kor+eng")
PASSPORTS = RenderOptions(mask_types=frozenset({"passport"}))
# make_screenshot's layout: 15 px text from (20, 20), a line every 24 px.
_LEFT, _TOP, _LINE, _SIZE = 20, 20, 24, 15

CASES = [
    # ocr4's Latin re-read of the word: the Korean model read 647693842
    ("G47693842 / 운전면허번호: 146549672429", "G47693842"),
    # ocr4's width rule: a leading O as wide as a letter, read 068953794
    ("명단: 최수진, O68953794, 개발팀", "O68953794"),
    # ocr4's twin rule: S drawn unlike the word's 5s, read 511292554
    ("S11292554", "S11292554"),
    # the read-back under a passport label: read 605452849 at its own size
    ("여권번호: G05452849", "G05452849"),
]


def _inside(line: str, value: str) -> tuple[int, int, int, int]:
    """The inside of ``value``'s characters where make_screenshot draws ``line`` first: its
    width from the font, a band of pixels around the middle of the text's height."""
    font = ImageFont.truetype(str(SCREEN_FONT), _SIZE)
    start = line.index(value)
    left = _LEFT + font.getlength(line[:start])
    right = _LEFT + font.getlength(line[: start + len(value)])
    return round(left) + 2, _TOP + 5, round(right) - 2, _TOP + 11


def _painted_share(image: Image.Image, box: tuple[int, int, int, int]) -> float:
    pixels = [image.getpixel((x, y)) for x in range(box[0], box[2]) for y in range(box[1], box[3])]
    return sum(pixel == PAINT for pixel in pixels) / len(pixels)


@pytest.mark.parametrize(("line", "value"), CASES)
def test_a_passport_number_the_scan_finds_in_a_picture_is_painted_inbound(
    line: str, value: str
) -> None:
    shot = make_screenshot([line])
    text, layout = picture_words(shot, Budget(READ))
    found = [f for f in detect(text) if f.type == "passport"]
    assert [f.text for f in found] == [value], text  # the outbound scan finds it
    masker = Masker(PASSPORTS)
    shown = masker.picture(Image.open(io.BytesIO(shot)).convert("RGB"), "attachment:a.png")
    assert _painted_share(shown, _inside(line, value)) == 1.0
    masked, unchecked, _notes = masker.report()
    assert [(m.type, m.method, m.count) for m in masked] == [("passport", "ocr", 1)]
    assert unchecked == ()
    # the scan's own position of the finding has boxes too, over the same characters
    boxes = position_in("attachment:a.png", TextLayout(pictures=(layout,)),
                        found[0].start, found[0].end).boxes  # fmt: skip
    inside = _inside(line, value)
    assert any(b[0] <= inside[0] and inside[2] <= b[2] for b in boxes), boxes


def test_the_rest_of_the_picture_stays_as_it_was() -> None:
    """The control: the words around the number are not painted (the check above can fail)."""
    line = "명단: 최수진, O68953794, 개발팀"
    shot = Image.open(io.BytesIO(make_screenshot([line]))).convert("RGB")
    shown = Masker(PASSPORTS).picture(shot, "a.png")
    for word in ("명단", "최수진", "개발팀"):
        inside = _inside(line, word)
        assert shown.crop(inside).tobytes() == shot.crop(inside).tobytes(), word
    assert _painted_share(shot, _inside(line, "O68953794")) < 0.5  # black text is not paint


def test_a_scanned_pdf_page_has_such_a_number_redacted_too() -> None:
    """The PDF path (a page placing a picture, read by OCR before rasterising) takes the same
    reading: the passport number is redacted, its neighbours are not. Placed so that the page
    drawn at SCAN_DPI shows the screenshot at its own pixels (drawn larger, the Korean model
    read 468953794, which nothing takes for a passport, outbound either). Before, the
    masking undid O as 0 before searching: 068953794."""
    from mailsafe.extract.pdf import SCAN_DPI
    from mailsafe.mupdf import pymupdf
    from mailsafe.render.masking.pdf import mask_page

    line = "명단: 최수진, O68953794, 개발팀"
    shot = make_screenshot([line])
    width, height = (side * 72 / SCAN_DPI for side in Image.open(io.BytesIO(shot)).size)
    with pymupdf.open() as document:
        page = document.new_page()
        placed = pymupdf.Rect(36, 36, 36 + width, 36 + height)
        page.insert_image(placed, stream=shot)
        done = mask_page(page, frozenset({"passport"}), Budget(READ), SCAN_DPI)
        zoom = pymupdf.Matrix(SCAN_DPI / 72, SCAN_DPI / 72)
        drawn = page.get_pixmap(matrix=zoom, clip=placed).tobytes("png")
    assert done.counts == {("passport", "ocr"): 1}
    shown = Image.open(io.BytesIO(drawn)).convert("RGB")  # the screenshot's own pixels
    assert _painted_share(shown, _inside(line, "O68953794")) == 1.0
    for word in ("최수진", "개발팀"):
        assert _painted_share(shown, _inside(line, word)) < 0.5, word  # black text, not paint
