"""Masking personal data before it becomes pixels (issue 17 item 3): each piece alone (HTML text
against attributes, PDF redaction, OCR boxes painted), what is said when a picture could not be
checked, nothing at all when masking is off, and a mail through render_message and RenderPool
whose pictures and text layer, read back by OCR, hold no resident number."""

from __future__ import annotations

import io
import re
from email.message import EmailMessage
from email.policy import SMTP
from typing import Any

import pytest
from PIL import Image

from mailsafe.errors import InternalError
from mailsafe.extract import ocr
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import OcrWord, parse_tsv, picture_text, words_as_text
from mailsafe.extract.ocr_words import WordReading
from mailsafe.mupdf import pymupdf
from mailsafe.notes import translate
from mailsafe.payload import RenderedMail
from mailsafe.render import render_message
from mailsafe.render.masking import Masker
from mailsafe.render.masking.pdf import mask_page
from mailsafe.render.masking.pictures import PAINT, boxes_to_paint, paint
from mailsafe.render.masking.text import Hiding, mask_html, mask_plain
from mailsafe.render.options import RenderOptions
from mailsafe.render.pool import RenderPool, headers_only
from tests.support.documents import make_screenshot
from tests.support.mailmaker import cpu_heavy_pdf

RRN = "800101-1234560"  # a valid date and check digit
RRN_MASKED = "800101-1******"
CARD = "4111-1111-1111-1111"
UNIQUE = frozenset({"rrn", "foreigner_id", "driver_license", "passport"})  # the default rule's
MASKING = RenderOptions(mask_types=UNIQUE)
READ = ExtractLimits(ocr_languages="kor+eng")
# What must not be read back anywhere: 13 digits in a row, or 6 and 7 around a hyphen.
RESIDENT_NUMBER_RE = re.compile(r"\d{13}|\d{6}-\d{7}")


def _unmasked_numbers(text: str) -> list[str]:
    return RESIDENT_NUMBER_RE.findall(re.sub(r"\s", "", text))


def _ocr(image: bytes) -> str:
    return picture_text(image, Budget(READ))


# ------------------------------------------------------------------------------------ HTML


def test_html_is_masked_in_its_text_across_inline_elements_not_in_its_markup() -> None:
    safe = (
        '<style>td > p { color: #333 }</style><table><tr><td style="width: 80px">'
        "<p>주민번호 <b>800101</b>-1234560 카드 " + CARD + "</p></td></tr></table>"
    )
    masked, findings = mask_html(safe, UNIQUE)
    assert [f.type for f in findings] == ["rrn"]
    assert masked == safe.replace("<b>800101</b>-1234560", "<b>800101</b>-1******")
    assert mask_html(safe, frozenset({"credit_card"}))[0] == safe.replace(
        CARD, "4111-****-****-1111"
    )


def test_visible_attributes_are_masked_other_attributes_are_not() -> None:
    safe = f'<p title="신청인 {RRN}" style="margin: 1px">x</p><img src="data:x" alt="{RRN}">'
    masked, findings = mask_html(safe, UNIQUE)
    assert len(findings) == 2
    assert RRN not in masked
    assert f'title="신청인 {RRN_MASKED}"' in masked
    assert f'alt="{RRN_MASKED}"' in masked
    assert 'style="margin: 1px"' in masked
    assert 'src="data:x"' in masked
    # CSS content is drawn by a browser: the style sheet is masked, and stays CSS
    sheet = f'<style>p.x::before {{ content: "{RRN}" }} td > p {{ color: red }}</style><p>x</p>'
    assert mask_html(sheet, UNIQUE)[0] == sheet.replace(RRN, RRN_MASKED)
    # a number in an attribute nobody sees is markup: left as it is
    hidden = f'<p style="width: 1px" lang="{RRN}">x</p>'
    assert mask_html(hidden, UNIQUE) == (hidden, [])


def test_block_elements_and_cells_keep_numbers_apart_and_escapes_survive() -> None:
    apart = "<p>800101</p><p>1234560</p><table><tr><td>800101</td><td>1234560</td></tr></table>"
    assert mask_html(apart, UNIQUE) == (apart, [])
    escaped = f"<p>a &lt;b&gt; &amp; {RRN}</p>"
    assert mask_html(escaped, UNIQUE)[0] == f"<p>a &lt;b&gt; &amp; {RRN_MASKED}</p>"


# ------------------------------------------------------------------------------------ PDF


def _pdf_page_with(text_spans: list[tuple[str, str]]) -> tuple[Any, Any]:
    document = pymupdf.open()
    page = document.new_page()
    x = 72.0
    for text, font in text_spans:
        page.insert_text((x, 72), text, fontname=font, fontsize=11)
        x += pymupdf.get_text_length(text, fontname=font, fontsize=11)
    return document, page


def _page_png(page: Any) -> bytes:
    pixmap = page.get_pixmap(matrix=pymupdf.Matrix(2, 2))
    return bytes(pixmap.tobytes("png"))


def test_pdf_redaction_removes_the_digits_from_the_text_and_the_pixels() -> None:
    # the number split across two spans of two fonts: extraction (and the detector) sees one
    document, page = _pdf_page_with([("주민번호 800101-", "korea"), ("1234560 end", "helv")])
    page.insert_text((72, 120), f"card {CARD}", fontname="helv", fontsize=11)
    assert RRN in page.get_text()
    assert RRN in _ocr(_page_png(page)).replace(" ", "")
    done = mask_page(page, UNIQUE, None, 96)
    assert done.counts == {("rrn", "text"): 1}
    text = page.get_text()
    assert "800101-1" in text
    assert "1234560" not in text
    assert CARD in text
    read = _ocr(_page_png(page))
    assert not _unmasked_numbers(read), read
    assert "4111" in read  # the card, not masked, is still drawn
    document.close()


# ------------------------------------------------------------ hiding whole, known numbers
# (approval previews, issue 18.3: OCR of a preview finds no digit of a found number)

KNOWN = Hiding(whole=True, known=(("rrn", RRN.replace("-", "")),))


def test_hidden_whole_leaves_no_digit_of_a_finding_in_text_or_html() -> None:
    masked, found = mask_plain(f"주민번호 {RRN} 끝", UNIQUE, hiding=Hiding(whole=True))
    assert masked == "주민번호 ******-******* 끝"
    assert [f.masked for f in found] == ["******-*******"]
    html, _ = mask_html("<p>주민번호 <b>800101</b>-1234560</p>", UNIQUE, hiding=Hiding(whole=True))
    assert html == "<p>주민번호 <b>******</b>-*******</p>"


def test_a_known_number_is_hidden_where_only_a_piece_of_it_is_drawn() -> None:
    # A spreadsheet cell drawn cut short: the detector sees no number, the scan had found one.
    text = "홍길동 800101-12서울 주문 2026-0042"
    assert mask_plain(text, UNIQUE, hiding=Hiding(whole=True))[0] == text
    masked, found = mask_plain(text, UNIQUE, hiding=KNOWN)
    assert masked == "홍길동 ******-**서울 주문 2026-0042"
    assert [(f.type, f.text) for f in found] == [("rrn", "800101-12")]


def test_a_pdf_page_showing_a_piece_of_a_known_number_is_redacted() -> None:
    document, page = _pdf_page_with([("홍길동 800101-12 서울", "korea")])
    assert mask_page(page, UNIQUE, None, 96, hiding=Hiding(whole=True)).counts == {}
    done = mask_page(page, UNIQUE, None, 96, hiding=KNOWN)
    assert done.counts == {("rrn", "text"): 1}
    text = page.get_text()
    assert "800101" not in text
    assert "서울" in text
    document.close()


def test_known_numbers_are_types_and_ascii_digits_or_refused() -> None:
    assert RenderOptions(mask_known=[["rrn", "8001011234560"]]).mask_known == (
        ("rrn", "8001011234560"),
    )
    for bad in ([["phone-ish", "123456"]], [["rrn", "800101-1234560"]], [["rrn", "８００１０１"]]):
        with pytest.raises(InternalError):
            RenderOptions(mask_known=bad)


def test_pdf_notes_and_form_fields_holding_a_number_are_removed() -> None:
    document, page = _pdf_page_with([("신청서", "korea")])
    page.add_text_annot((300, 300), f"주민번호 {RRN}")
    page.add_text_annot((300, 400), "확인했습니다")
    done = mask_page(page, UNIQUE, None, 96)
    assert done.counts == {("rrn", "text"): 1}
    assert [a.info["content"] for a in page.annots()] == ["확인했습니다"]
    document.close()


@pytest.mark.parametrize("rotation", [0, 90])
def test_a_scanned_pdf_page_is_read_by_ocr_and_painted(rotation: int) -> None:
    document = pymupdf.open()
    page = document.new_page()
    shot = make_screenshot(["고객 명단", f"김철수 주민등록번호 {RRN}", f"카드 {CARD}"])
    page.insert_image(pymupdf.Rect(36, 36, 36 + 300, 36 + 112), stream=shot)
    page.set_rotation(rotation)  # shown turned: OCR must read it upright
    assert page.get_text().strip() == ""  # a scan: no text layer
    done = mask_page(page, UNIQUE, Budget(READ), 96)
    assert done.counts == {("rrn", "ocr"): 1}
    assert page.rotation == rotation
    page.set_rotation(0)  # read back upright
    read = _ocr(_page_png(page))
    assert not _unmasked_numbers(read), read
    assert "4111" in read
    document.close()


# ------------------------------------------------------------------------------------ OCR


def _word(text: str, left: int, line: int = 1) -> OcrWord:
    return OcrWord(text, (left, 10 * line, left + 8 * len(text), 10 * line + 8), (1, 1, line))


def _reading(words: list[OcrWord]) -> WordReading:
    """A reading of ``words`` as Tesseract's text lays them out (a space between the words of
    a line, a newline between lines)."""
    return WordReading(*words_as_text(words))


def test_ocr_words_holding_personal_data_are_the_boxes_painted() -> None:
    words = [_word("주민번호", 0), _word(f"{RRN}'", 50), _word("카드", 0, 2), _word(CARD, 30, 2)]
    boxes, counts = boxes_to_paint(_reading(words), UNIQUE)
    assert boxes == [words[1].box]
    assert counts == {"rrn": 1}
    both, _ = boxes_to_paint(_reading(words), UNIQUE | {"credit_card"})
    assert both == [words[1].box, words[3].box]
    # split over words, and misread (O for 0, l for 1), and a date OCR got wrong: still painted
    split = [_word("800101", 0), _word("-", 50), _word("1234560", 60)]
    assert boxes_to_paint(_reading(split), UNIQUE)[0] == [w.box for w in split]
    assert boxes_to_paint(_reading([_word("8OO1O1-l23456O", 0)]), UNIQUE)[1] == {"rrn": 1}
    assert boxes_to_paint(_reading([_word("809901-1234560", 0)]), UNIQUE)[1] == {"rrn": 1}
    assert boxes_to_paint(_reading([_word("809901-1234560", 0)]), frozenset({"passport"}))[0] == []


@pytest.mark.parametrize(
    ("read", "digit_off"),
    [
        ("8550315-2749188'", True),  # a digit read twice: Tesseract's TSV of a 15 px screenshot
        ("85315-2749188", True),  # a digit lost before the hyphen
        ("850315-274918", True),  # and after it
        ("850315-27491888", True),
        ("850315 — 2749l88", False),  # the hyphen read as a dash, spaced
        ("850315—274918", True),
        ("781 123-2145478", False),  # the digits split into two words, as Tesseract's TSV does
        ("870628-206 1356", False),
        ("85031 5-274918", True),
    ],
)
def test_a_registration_number_misread_by_a_digit_is_painted_too(
    read: str, digit_off: bool
) -> None:
    words = [_word("주민등록번호", 0), *(_word(piece, 60 + 40 * n) for n, piece in
                                       enumerate(read.split(" ")))]  # fmt: skip
    boxes, counts = boxes_to_paint(_reading(words), UNIQUE)
    assert boxes == [w.box for w in words[1:]]
    assert counts == {"rrn": 1}
    assert boxes_to_paint(_reading(words), frozenset({"rrn"}))[1] == {"rrn": 1}
    assert boxes_to_paint(_reading(words), frozenset({"passport"}))[0] == []
    # a number a digit off may have lost its gender digit: painted whichever type is masked
    foreigner = boxes_to_paint(_reading(words), frozenset({"foreigner_id"}))[1]
    assert foreigner == ({"foreigner_id": 1} if digit_off else {})


@pytest.mark.parametrize(
    "shown",
    ["123-456789-01234", "123456-78-901234", "1002-123-456789", "010-1234-5678",
     "2026-12-05", "123-45-67890", "8503152-7491883-1"],
)  # fmt: skip
def test_account_phone_and_date_groupings_are_not_taken_for_a_misread_number(shown: str) -> None:
    assert boxes_to_paint(_reading([_word("번호", 0), _word(shown, 40)]), UNIQUE) == ([], {})


def test_painted_boxes_are_solid_and_the_rest_is_untouched() -> None:
    image = Image.new("RGB", (100, 40), "white")
    painted = paint(image, [(10, 10, 30, 20)])
    assert painted.getpixel((20, 15)) == PAINT
    assert painted.getpixel((8, 8)) == PAINT  # a little wider than the box
    assert painted.getpixel((50, 15)) == (255, 255, 255)
    assert image.getpixel((20, 15)) == (255, 255, 255)  # the original is not changed


def test_tesseract_tsv_rows_become_words_with_boxes() -> None:
    tsv = (
        b"level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight"
        b"\tconf\ttext\n1\t1\t0\t0\t0\t0\t0\t0\t200\t100\t-1\t\n"
        b"5\t1\t2\t1\t1\t1\t10\t20\t30\t8\t96.1\t800101-1234560\n5\t1\t2\t1\t1\t2\tx\t1\t1\t1\t1\tbad\n"
    )
    assert parse_tsv(tsv, 2.0) == (OcrWord("800101-1234560", (20, 40, 80, 56), (2, 1, 1)),)


# ------------------------------------------------------------------------------- the mail


def _mail(*, html: bool = True) -> bytes:
    document = pymupdf.open()
    document.new_page().insert_text(
        (72, 72), f"주민등록번호 {RRN} 카드 {CARD}", fontname="korea", fontsize=11
    )
    pdf = document.tobytes()
    shot = make_screenshot(["고객 명단", f"김철수 주민등록번호 {RRN}", f"카드 {CARD}"])
    message = EmailMessage()
    message["From"] = "민원 <a@example.com>"
    message["To"] = "b@example.org"
    message["Subject"] = f"신청서 {RRN}"
    message.set_content(f"주민번호 {RRN}\n카드 {CARD}\n")
    if html:
        message.add_alternative(
            f"<p>주민번호 <b>{RRN[:6]}</b>{RRN[6:]}</p><p>카드 {CARD}</p>", subtype="html"
        )
    message.add_attachment(pdf, maintype="application", subtype="pdf", filename=f"{RRN}.pdf")
    message.add_attachment(shot, maintype="image", subtype="png", filename="shot.png")
    return message.as_bytes(policy=SMTP)


def _assert_nothing_unmasked_is_shown(rendered: RenderedMail) -> str:
    """Every picture and the text layer read back hold no resident number; returns what was
    read (the card numbers must still be there)."""
    manifest = rendered.manifest
    assert manifest.status == "rendered"
    assert [page.source for page in manifest.pages] == [
        "body",
        f"attachment:{RRN_MASKED}.pdf",
        "attachment:shot.png",
    ]
    read = [_ocr(image) for image in rendered.images]
    for source, text in zip([p.source for p in manifest.pages], read, strict=True):
        assert not _unmasked_numbers(text), (source, text)
    text = rendered.text or ""
    assert not _unmasked_numbers(text), text
    assert RRN_MASKED in text
    assert manifest.headers.subject == f"신청서 {RRN_MASKED}"
    assert RRN not in repr(manifest)
    return "\n".join([*read, text])


def test_a_mail_with_a_resident_number_everywhere_is_shown_masked_cards_are_not() -> None:
    raw = _mail()
    plain = render_message(raw, RenderOptions())
    assert RRN in (plain.text or "")  # masking is off unless asked for
    assert any(RRN in _ocr(image).replace(" ", "") for image in plain.images[1:])
    masked = render_message(raw, MASKING)
    read = _assert_nothing_unmasked_is_shown(masked)
    assert read.count("4111") >= 3, read  # body, PDF page and screenshot show the card
    assert {(m.type, m.source, m.page, m.method) for m in masked.manifest.masked} == {
        ("rrn", "header", 0, "text"),
        ("rrn", "body", 0, "text"),
        ("rrn", "attachment-name", 0, "text"),
        ("rrn", f"attachment:{RRN_MASKED}.pdf", 1, "text"),
        ("rrn", "attachment:shot.png", 0, "ocr"),
    }
    assert masked.manifest.unchecked == ()
    (said,) = [n for n in masked.manifest.notes if "resident registration" in n]
    assert said.startswith("5 resident registration number(s) masked in ")
    assert translate(said, "ko").endswith("주민등록번호 5건을 가렸습니다")


def test_through_the_render_pool_with_mask_types_per_mail() -> None:
    with RenderPool(RenderOptions(), processes=1, wall_seconds=60) as pool:
        masked = pool.render(_mail(html=False), mask_types=UNIQUE)
        _assert_nothing_unmasked_is_shown(masked)
        assert RRN in (pool.render(_mail(html=False)).text or "")  # the pool's own: off
        with pytest.raises(InternalError, match="unknown personal-data types \\['rrnn'\\]"):
            pool.render(b"x", mask_types=frozenset({"rrnn"}))


def test_a_mail_that_fails_to_render_gets_a_notice_masked_too() -> None:
    """The worker's summary after a failure masks the header fields and attachment names."""
    bomb = EmailMessage()
    bomb["From"] = "a@example.com"
    bomb["To"] = "b@example.org"
    bomb["Subject"] = f"신청서 {RRN}"
    bomb.set_content("x")
    bomb.add_attachment(cpu_heavy_pdf(40000), maintype="application", subtype="pdf",
                        filename=f"{RRN}.pdf")  # fmt: skip
    with RenderPool(RenderOptions(), processes=1, cpu_seconds=1, wall_seconds=60) as pool:
        notice = pool.render(bomb.as_bytes(policy=SMTP), mask_types=UNIQUE)
    assert (notice.manifest.status, notice.manifest.reason) == ("not_displayable", "cpu_limit")
    assert notice.manifest.headers.subject == f"신청서 {RRN_MASKED}"
    assert [w.filename for w in notice.manifest.withheld] == [f"{RRN_MASKED}.pdf"]
    assert RRN not in repr(notice)


def test_a_picture_that_could_not_be_read_is_shown_and_said_unchecked(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raw = _mail(html=False)
    spent = render_message(raw, RenderOptions(mask_types=UNIQUE, ocr_max_pictures=0))
    assert [(u.source, u.reason) for u in spent.manifest.unchecked] == [
        ("attachment:shot.png", "ocr_budget")
    ]
    assert "attachment:shot.png was not checked for personal data: the mail's OCR budget" in (
        " ".join(spent.manifest.notes)
    )
    monkeypatch.setattr(ocr, "tesseract_path", lambda: None)
    missing = render_message(raw, MASKING)
    assert [(u.source, u.reason) for u in missing.manifest.unchecked] == [
        ("attachment:shot.png", "ocr_unavailable")
    ]
    assert RRN_MASKED in (missing.text or "")  # text is masked without OCR


def test_masking_off_runs_no_detection_and_no_ocr(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("masking ran while it was off")

    monkeypatch.setattr(Masker, "__init__", refuse)
    monkeypatch.setattr(ocr, "_run_tesseract", refuse)
    rendered = render_message(_mail(), RenderOptions())
    assert rendered.manifest.status == "rendered"
    assert rendered.manifest.masked == ()
    assert rendered.manifest.unchecked == ()


def test_the_fallback_notices_mask_the_header_fields_too() -> None:
    raw = _mail()
    last_resort = headers_only(raw, "timeout", UNIQUE)
    assert last_resort.manifest.headers.subject == f"신청서 {RRN_MASKED}"
    assert headers_only(raw, "timeout").manifest.headers.subject == f"신청서 {RRN}"


def test_unknown_mask_types_are_refused_by_name() -> None:
    with pytest.raises(InternalError, match="unknown personal-data types \\['ssn'\\]"):
        RenderOptions(mask_types=frozenset({"ssn", "rrn"}))
    options = RenderOptions(mask_types=frozenset({"passport", "rrn"}))
    assert RenderOptions.from_json(options.to_json()) == options


def test_a_masked_picture_keeps_its_size_and_stays_a_picture() -> None:
    out = io.BytesIO()
    Image.open(io.BytesIO(make_screenshot([f"주민등록번호 {RRN}"]))).save(out, "PNG")
    masker = Masker(MASKING)
    image = Image.open(io.BytesIO(out.getvalue())).convert("RGB")
    painted = masker.picture(image, "attachment:a.png")
    assert painted.size == image.size
    assert painted.tobytes() != image.tobytes()
    masked, unchecked, notes = masker.report()
    assert [(m.type, m.method, m.count) for m in masked] == [("rrn", "ocr", 1)]
    assert unchecked == ()
    assert len(notes) == 1
