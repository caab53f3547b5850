"""Every finding carries where it was (issue 19.3): the part, the file, the page, the
characters of the extracted text, and for pictures read by OCR the word boxes.

The boxes are checked by drawing: a picture (and a scanned PDF page) is drawn here, so the
pixels of each number are known; the finding's boxes, painted over in white, leave none of
the number's ink, and the words around it keep theirs. The painted picture, read again by
OCR, shows no digit of the numbers.
"""

from __future__ import annotations

import email.message
import io
import json
from pathlib import Path

import msgpack
import pytest
from PIL import Image, ImageDraw, ImageFont

from maildiode.cli import main
from mailsafe.extract import ExtractLimits, Location
from mailsafe.extract.isolated import AttachmentReader, _decode
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import picture_text
from mailsafe.limited import ChildFailed
from mailsafe.mime import parse_message
from mailsafe.mupdf import pymupdf
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.positions import Position, TextLayout, joined, position_in
from mailsafe.render.masking import Masker
from mailsafe.render.masking.pictures import paint
from mailsafe.render.options import RenderOptions
from mailsafe.scan import LocatedFinding, scan_message
from tests.support.documents import SCREEN_FONT, make_mail, make_screenshot, make_zip

ON = ExtractLimits(ocr_languages="kor+eng")
SENDER = SenderInfo("kim@corp.example")
RRN = "800101-1234560"
PHONE = "010-1234-5678"
LINES = ("고객 명단", f"김철수 주민등록번호 {RRN}", f"연락처 {PHONE} 담당 영업부")
NUMBERS = {"rrn": RRN, "phone": PHONE}
WHITE = (255, 255, 255)
# A pixel darker than this is ink (the text is black on white, anti-aliased at its edges).
INK = 128
LEFT, TOP, LINE_PX, FONT_PX = 20, 20, 28, 18


def _font() -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(SCREEN_FONT), FONT_PX)


def _screenshot() -> tuple[bytes, dict[str, tuple[int, int, int, int]]]:
    """A screenshot of LINES and, for each number, the box of its ink in the picture."""
    font = _font()
    picture = Image.new("RGB", (460, 2 * TOP + LINE_PX * len(LINES)), "white")
    draw = ImageDraw.Draw(picture)
    ink: dict[str, tuple[int, int, int, int]] = {}
    for number, line in enumerate(LINES):
        y = TOP + LINE_PX * number
        draw.text((LEFT, y), line, fill="black", font=font)
        for kind, value in NUMBERS.items():
            if value in line:
                x = LEFT + font.getlength(line[: line.index(value)])
                left, top, right, bottom = draw.textbbox((x, y), value, font=font)
                ink[kind] = (int(left), int(top), int(right) + 1, int(bottom) + 1)
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue(), ink


def _has_ink(picture: Image.Image, box: tuple[int, int, int, int]) -> bool:
    region = picture.convert("L").crop(box)
    return region.getextrema()[0] < INK


def _erased(picture: Image.Image, positions: list[Position]) -> Image.Image:
    return paint(picture, [box for position in positions for box in position.boxes], fill=WHITE)


def _positions(raw: bytes) -> dict[str, Position]:
    result = scan_message(raw, default_rules(), SENDER, limits=ON)
    return {located.finding.type: located.position for located in result.findings}


# ------------------------------------------------------------------------------ pictures


def test_a_pictures_findings_carry_word_boxes_that_cover_the_numbers_pixels() -> None:
    shot, ink = _screenshot()
    found = _positions(make_mail(attachments=[("고객.png", shot)]))
    picture = Image.open(io.BytesIO(shot))
    assert set(found) >= {"rrn", "phone"}, found
    for kind in ("rrn", "phone"):
        position = found[kind]
        assert (position.part, position.file, position.page) == ("attachment", "고객.png", 0)
        assert position.pixels == picture.size
        assert position.boxes, position
        assert _has_ink(picture, ink[kind])  # the control: the number is drawn there
    erased = _erased(picture, [found["rrn"], found["phone"]])
    for kind in ("rrn", "phone"):
        assert not _has_ink(erased, ink[kind]), f"{kind}: ink left inside the number's box"
    name_line = (LEFT, TOP, LEFT + 60, TOP + LINE_PX - 4)
    assert _has_ink(erased, name_line)  # "고객 명단" stays
    read = picture_text(_png(erased), Budget(ON))
    assert "명단" in read
    squeezed = "".join(read.split())
    assert "1234560" not in squeezed, read
    assert "12345678" not in squeezed, read


def test_boxes_are_in_the_pixels_of_the_picture_as_attached_when_ocr_read_it_shrunk() -> None:
    """OCR reads a large picture shrunk to ocr_max_pixels; the boxes are scaled back."""
    shot, ink = _screenshot()
    big = Image.open(io.BytesIO(shot)).resize((1380, 348), Image.Resampling.LANCZOS)
    limits = ExtractLimits(ocr_languages="kor+eng", ocr_max_pixels=big.width * big.height // 3)
    result = scan_message(make_mail(attachments=[("big.png", _png(big))]), default_rules(),
                          SENDER, limits=limits)  # fmt: skip
    position = next(f.position for f in result.findings if f.finding.type == "rrn")
    assert position.pixels == big.size
    left, top, right, bottom = (value * 3 for value in ink["rrn"])
    erased = _erased(big, [position])
    assert _has_ink(big, (left, top, right, bottom))
    assert not _has_ink(erased, (left, top, right, bottom))


def _png(picture: Image.Image) -> bytes:
    out = io.BytesIO()
    picture.save(out, format="PNG")
    return out.getvalue()


# ------------------------------------------------------------------------------ PDF pages


def _pdf_with_a_scanned_second_page(shot: bytes) -> tuple[bytes, pymupdf.Rect]:
    """Page 1 typed text, page 2 a scan (the screenshot placed at 72 dpi, one point a pixel)."""
    width, height = Image.open(io.BytesIO(shot)).size
    document = pymupdf.open()
    first = document.new_page()
    first.insert_text((50, 72), "Quarterly report, cover page: nothing personal here.")
    placed = pymupdf.Rect(60, 80, 60 + width, 80 + height)
    document.new_page().insert_image(placed, stream=shot)
    data: bytes = document.tobytes()
    document.close()
    return data, placed


def test_a_scanned_pdf_pages_findings_carry_the_page_and_boxes_that_cover_the_numbers() -> None:
    shot, ink = _screenshot()
    data, placed = _pdf_with_a_scanned_second_page(shot)
    found = _positions(make_mail(attachments=[("사본.pdf", data)]))
    assert set(found) >= {"rrn", "phone"}, found
    with pymupdf.open(stream=data, filetype="pdf") as document:
        page = document[1]
        position = found["rrn"]
        zoom = position.pixels[0] / page.rect.width  # drawn as the scan drew it for OCR
        pixmap = page.get_pixmap(matrix=pymupdf.Matrix(zoom, zoom))
        drawn = Image.frombytes("RGB", (pixmap.width, pixmap.height), pixmap.samples)
    assert abs(drawn.width - position.pixels[0]) + abs(drawn.height - position.pixels[1]) <= 1
    erased = _erased(drawn, [found["rrn"], found["phone"]])
    for kind in ("rrn", "phone"):
        assert (found[kind].part, found[kind].file, found[kind].page) == (
            "attachment",
            "사본.pdf",
            2,
        )
        left, top, right, bottom = ink[kind]
        on_page = tuple(round(v * zoom) for v in (placed.x0 + left, placed.y0 + top,
                                                  placed.x0 + right, placed.y0 + bottom))  # fmt: skip
        assert _has_ink(drawn, on_page)
        assert not _has_ink(erased, on_page), f"{kind}: ink left on the page"
    name_line = tuple(round(v * zoom) for v in (placed.x0 + LEFT, placed.y0 + TOP,
                                                placed.x0 + LEFT + 60, placed.y0 + TOP + 20))  # fmt: skip
    assert _has_ink(erased, name_line)


def test_a_text_pdf_names_the_page_each_finding_is_on() -> None:
    document = pymupdf.open()
    for text in ("Cover page", "", f"Contact {PHONE}", f"ID {RRN}"):
        page = document.new_page()
        if text:
            page.insert_text((50, 72), text)
    data = document.tobytes()
    document.close()
    found = _positions(make_mail(attachments=[("report.pdf", data)]))
    assert (found["phone"].page, found["rrn"].page) == (3, 4)  # the empty page 2 counts
    assert found["phone"].boxes == ()  # typed text: its characters, no pixels


# ------------------------------------------------------------------------------ text


def test_a_text_parts_finding_carries_its_span_in_the_parts_text() -> None:
    body = f"안내드립니다.\n고객 홍길동 {PHONE} 입니다.\n"
    listed = f"이름,연락처\n김영희,{PHONE}\n".encode()
    raw = make_mail(text=body, attachments=[("lists.zip", make_zip({"a/list.csv": listed}))])
    result = scan_message(raw, default_rules(), SENDER)
    places = {(f.position.part, f.position.file): f.position for f in result.findings}
    in_body = places["body.text", ""]
    assert (parse_message(raw).text or "")[in_body.start : in_body.end] == PHONE
    assert (in_body.page, in_body.boxes) == (0, ())
    in_zip = places["attachment", "lists.zip/a/list.csv"]
    assert listed.decode()[in_zip.start : in_zip.end] == PHONE


def test_places_name_their_part_and_file() -> None:
    cases = {
        "subject": ("subject", ""),
        "header:From": ("header:From", ""),
        "attachment:a.zip/b.pdf": ("attachment", "a.zip/b.pdf"),
        "attachment-name:x].y:z.txt": ("attachment-name", "x].y:z.txt"),
        "forwarded[2].body.text": ("forwarded[2].body.text", ""),
        "forwarded[1].forwarded[3].attachment:c.png": (
            "forwarded[1].forwarded[3].attachment",
            "c.png",
        ),
    }
    for where, expected in cases.items():
        position = position_in(where, TextLayout(), 3, 9)
        assert (position.part, position.file, position.start, position.end) == (*expected, 3, 9)


def test_joined_texts_keep_their_pages_and_words_in_place() -> None:
    from mailsafe.positions import PictureLayout, PlacedWord

    words = PictureLayout(2, (100, 50), (PlacedWord(0, 3, (1, 2, 3, 4)),))
    text, layout = joined([("info", TextLayout()), ("", TextLayout((0,))),
                           ("abc", TextLayout((0,), (words,)))])  # fmt: skip
    assert text == "info\nabc"
    assert layout.pages == (5, 5)  # the empty page 1 starts where page 2 does
    assert position_in("attachment:x.pdf", layout, 5, 8).page == 2
    assert position_in("attachment:x.pdf", layout, 5, 8).boxes == ((1, 2, 3, 4),)
    assert position_in("attachment:x.pdf", layout, 0, 4).boxes == ()
    text, layout = joined([("abc", TextLayout((0,))), ("", TextLayout((0,)))])
    assert layout.pages == (0, 3)  # an empty last page starts at the end, not past it


# ------------------------------------------------------------------------------ the reader child


def test_the_reader_child_sends_the_layout_and_the_parent_checks_it() -> None:
    shot, _ink = _screenshot()
    document = pymupdf.open()
    document.new_page().insert_text((50, 72), f"ID {RRN}")
    document.new_page()  # an empty last page: it starts at the end of the text
    pdf = document.tobytes()
    document.close()
    parsed = parse_message(make_mail(attachments=[("shot.png", shot), ("a.pdf", pdf)]))
    with AttachmentReader(ON) as reader:
        found = reader.read(parsed)
    from mailsafe.extract import extract_locations

    here = {f.where: f.layout for f in extract_locations(parsed, ON) if isinstance(f, Location)}
    there = {f.where: f.layout for f in found if isinstance(f, Location)}
    assert there["attachment:shot.png"].pictures[0].words
    text = next(f.text for f in found if isinstance(f, Location) and f.where == "attachment:a.pdf")
    assert there["attachment:a.pdf"].pages == (0, len(text))
    assert there == here


@pytest.mark.parametrize(
    "pictures",
    [
        [[0, 100, 50, [0, 3, 1, 2, 300, 4]]],  # a box past the picture's right edge
        [[0, 100, 50, [0, 99, 1, 2, 3, 4]]],  # a word past the end of the text
        [[0, 100, 50, [3, 0, 1, 2, 3, 4]]],  # a word ending before it starts
        [[0, 100, 50, [0, 3, 1, 2, 3]]],  # not six numbers a word
        [[0, 100, 50, [0, 3, True, 2, 3, 4]]],  # a bool for a number
        [[-1, 100, 50, []]],  # a negative page
    ],
)
def test_a_tampered_layout_from_the_child_is_refused(pictures: list[object]) -> None:
    reply = msgpack.packb([[["L", "attachment:x.png", "abc def", [], pictures]]])
    with pytest.raises(ChildFailed):
        _decode(reply, ON, 1)
    good = msgpack.packb(
        [[["L", "attachment:x.png", "abc def", [0], [[0, 100, 50, [0, 3, 1, 2, 3, 4]]]]]]
    )
    assert _decode(good, ON, 1)[0][0].layout.pictures[0].words[0].box == (1, 2, 3, 4)


# ------------------------------------------------------------------------------ scan --json


def test_scan_json_shows_each_findings_position(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    shot, _ink = _screenshot()
    mail = tmp_path / "m.eml"
    mail.write_bytes(make_mail(text=f"담당 {PHONE}", attachments=[("shot.png", shot)]))
    assert main(["scan", str(mail), "--json", "--ocr", "on"]) == 0
    report = json.loads(capsys.readouterr().out)
    by_place = {(f["where"], f["type"]): f for f in report["findings"]}
    body = by_place["body.text", "phone"]
    assert set(body) >= {"type", "text", "masked", "where"}  # the fields scripts read stay
    assert body["position"] == {"part": "body.text", "file": "", "page": 0, "start": 3,
                                "end": 16, "boxes": [], "pixels": [0, 0]}  # fmt: skip
    pictured = by_place["attachment:shot.png", "rrn"]["position"]
    assert (pictured["part"], pictured["file"]) == ("attachment", "shot.png")
    assert pictured["pixels"] == list(Image.open(io.BytesIO(shot)).size)
    assert pictured["boxes"]
    assert all(len(box) == 4 for box in pictured["boxes"])


# ------------------------------------------------------------------------------ painting


def test_the_renderer_paints_the_scans_boxes_scaled_to_the_picture_it_draws() -> None:
    """The preview worker draws a picture shrunk (max_picture_side_px) and, without OCR of
    its own here, paints the scan's boxes over it at the drawn size."""
    shot, ink = _screenshot()
    found = _positions(make_mail(attachments=[("고객.png", shot)]))
    options = RenderOptions(
        mask_types=frozenset({"rrn", "phone"}),
        ocr_languages="",
        mask_positions=(("rrn", found["rrn"]), ("phone", found["phone"])),
    )
    picture = Image.open(io.BytesIO(shot)).convert("RGB")
    half = picture.resize((picture.width // 2, picture.height // 2), Image.Resampling.LANCZOS)
    masker = Masker(options)
    drawn = masker.picture(half, "attachment:고객.png")
    for kind in ("rrn", "phone"):
        left, top, right, bottom = (value // 2 for value in ink[kind])
        box = (left, top, right + 1, bottom + 1)
        assert _has_ink(half, box)
        lightest = drawn.convert("L").crop(box).getextrema()[1]
        assert lightest < INK  # painted black, all of it
    assert _has_ink(drawn, (LEFT // 2, TOP // 2, (LEFT + 60) // 2, (TOP + 20) // 2))
    masked, _unchecked, _notes = masker.report()
    assert {(m.type, m.method) for m in masked} == {("rrn", "ocr"), ("phone", "ocr")}
    other = Masker(options).picture(half, "attachment:다른.png")
    assert other.tobytes() == half.tobytes()  # another picture's boxes are not its


def test_positions_cross_to_a_worker_as_json_and_nonsense_is_refused() -> None:
    from mailsafe.errors import InternalError

    position = Position("attachment", "a.png", 0, 0, 5, ((1, 2, 3, 4),), (10, 10))
    options = RenderOptions(mask_types=frozenset({"rrn"}), mask_positions=(("rrn", position),))
    assert RenderOptions.from_json(options.to_json()).mask_positions == (("rrn", position),)
    outside = Position("attachment", "a.png", 0, 0, 5, ((1, 2, 30, 4),), (10, 10))
    for bad in (("rrn", outside), ("name", position)):
        with pytest.raises(InternalError):
            RenderOptions(mask_positions=(bad,))  # type: ignore[arg-type]


def test_a_located_finding_made_without_a_layout_still_says_where() -> None:
    from mailsafe.pii import detect

    finding = detect(f"고객 {PHONE}")[0]
    located = LocatedFinding("header:Subject", finding)
    assert located.position == Position("header:Subject", "", 0, finding.start, finding.end)


def test_the_scan_and_the_renderers_masking_pick_the_same_words_of_a_picture() -> None:
    """One reading of OCR words (``ocr_words.WordReading``) for the scan's positions and for
    the boxes the renderer paints when it reads a picture itself (receive filters, previews)."""
    from mailsafe.extract.ocr import OcrWord, words_as_text
    from mailsafe.extract.ocr_words import WordReading
    from mailsafe.pii import detect
    from mailsafe.positions import PictureLayout
    from mailsafe.render.masking.pictures import boxes_to_paint

    words = [
        OcrWord("김철수", (10, 10, 50, 24), (1, 1, 1)),
        OcrWord("주민번호", (60, 10, 100, 24), (1, 1, 1)),
        OcrWord(RRN, (110, 10, 210, 24), (1, 1, 1)),
        OcrWord("연락처", (10, 40, 50, 54), (1, 1, 2)),
        OcrWord(PHONE, (60, 40, 160, 54), (1, 1, 2)),
        OcrWord("영업부", (170, 40, 210, 54), (1, 1, 2)),
    ]
    text, placed = words_as_text(words)
    layout = TextLayout(pictures=(PictureLayout(0, (300, 80), placed),))
    scanned = {
        box
        for f in detect(text)
        for box in position_in("attachment:a.png", layout, f.start, f.end).boxes
    }
    painted, counts = boxes_to_paint(WordReading(text, placed), {"rrn", "phone"})
    assert set(painted) == scanned == {words[2].box, words[4].box}
    assert counts == {"rrn": 1, "phone": 1}


@pytest.mark.parametrize("rotation", [0, 270])
def test_the_renderer_redacts_the_scans_boxes_on_a_scanned_page_turned_or_not(
    rotation: int,
) -> None:
    """A scanned page shown turned (/Rotate, the scan upright as a reader sees it): the scan's
    boxes are in the page as shown; the renderer, without OCR of its own here, redacts them
    in the page's own coordinates, and the page as shown no longer reads the numbers."""
    shot, _ink = _screenshot()
    width, height = Image.open(io.BytesIO(shot)).size
    document = pymupdf.open()
    page = document.new_page()
    if rotation:
        page.insert_image(pymupdf.Rect(60, 80, 60 + height, 80 + width), stream=shot,
                          rotate=rotation)  # fmt: skip
        page.set_rotation(rotation)
    else:
        page.insert_image(pymupdf.Rect(60, 80, 60 + width, 80 + height), stream=shot)
    data = document.tobytes()
    document.close()
    found = _positions(make_mail(attachments=[("사본.pdf", data)]))
    assert {"rrn", "phone"} <= set(found), found
    options = RenderOptions(mask_types=frozenset({"rrn", "phone"}), ocr_languages="",
                            mask_positions=(("rrn", found["rrn"]), ("phone", found["phone"])))  # fmt: skip
    with pymupdf.open(stream=data, filetype="pdf") as opened:
        shown = opened[0]
        Masker(options).pdf_page(shown, 1, "attachment:사본.pdf")
        read = picture_text(shown.get_pixmap(matrix=pymupdf.Matrix(2, 2)).tobytes("png"),
                            Budget(ON))  # fmt: skip
    squeezed = "".join(read.split())
    assert "명단" in squeezed, read
    assert "1234560" not in squeezed, read
    assert "12345678" not in squeezed, read


def test_a_render_worker_paints_the_positions_it_is_given_with_the_mail() -> None:
    """Through the pool's job frame: a worker with no OCR of its own paints the boxes the
    scan found over the attached picture it draws."""
    from mailsafe.render.pool import RenderPool

    shot, _ink = _screenshot()
    message = email.message.EmailMessage()
    message["From"], message["To"], message["Subject"] = "a@corp.example", "b@x.example", "명단"
    message.set_content("첨부를 보세요.")
    message.add_attachment(shot, maintype="image", subtype="png", filename="명단.png")
    raw = message.as_bytes()
    found = _positions(raw)
    positions = (("rrn", found["rrn"]), ("phone", found["phone"]))
    options = RenderOptions(mask_types=frozenset({"rrn", "phone"}), ocr_languages="")
    with RenderPool(options, processes=1) as pool:
        rendered = pool.render(raw, positions=positions)
        plain = pool.render(raw)  # the control: nothing told, nothing read, nothing painted
    pages = rendered.manifest.pages
    index = next(i for i, page in enumerate(pages) if page.source == "attachment:명단.png")
    shown = "".join(picture_text(rendered.images[index], Budget(ON)).split())
    assert "명단" in shown, shown
    assert "1234560" not in shown, shown
    assert "12345678" not in shown.replace("-", ""), shown
    unpainted = "".join(picture_text(plain.images[index], Budget(ON)).split())
    assert "1234560" in unpainted, unpainted


def test_the_scans_text_of_a_picture_is_tesseracts_text_with_every_word_placed_in_it() -> None:
    """Positions do not change what the detector reads: the text is Tesseract's own (Hangul
    it split into one word per syllable stays joined, blocks a blank line apart), and every
    word of the same reading's TSV is found in it."""
    from mailsafe.extract.ocr import picture_words

    shot = make_screenshot(["고객 명단", f"홍길동0 {RRN} {PHONE} 서울시 중구", "담당 영업부"])
    text, layout = picture_words(shot, Budget(ON))
    assert text == picture_text(shot, Budget(ON))
    assert "\n\n" in text  # Tesseract's blank line between blocks, kept
    assert layout.words
    assert all(text[w.start : w.end].strip() == text[w.start : w.end] != "" for w in layout.words)
    assert RRN in [text[w.start : w.end] for w in layout.words]


def test_a_word_the_two_outputs_disagree_on_stays_unplaced() -> None:
    from mailsafe.extract.ocr import OcrWord, _placed, _split_tsv_and_text

    header = "\t".join(["level", *"abcdefghij", "text"])
    row = "5\t1\t1\t1\t1\t1\t20\t22\t27\t14\t90.0\t고객"
    tsv, text = _split_tsv_and_text(f"{header}\n{row}\n고객 명단\n\n끝\n")
    assert tsv == f"{header}\n{row}"
    assert text == "고객 명단\n\n끝\n"
    words = [
        OcrWord(t, (i, 0, i + 1, 1), (1, 1, 1))
        for i, t in enumerate(["고객", "없음", "명단", "끝"])
    ]
    placed = _placed(words, text)
    assert [(p.start, p.end, p.box[0]) for p in placed] == [(0, 2, 0), (3, 5, 2), (7, 8, 3)]
    # a word found only past other text is not taken
    assert _placed([OcrWord("끝", (0, 0, 1, 1), (1, 1, 1))], text) == ()
