"""Text in pictures read by the real Tesseract (installed by .ci/run): screenshots of a list are
found wherever the picture sits, within a per-mail budget, and OCR that is asked for but not
installed is a clear refusal."""

from __future__ import annotations

import base64
import io

import pytest
from PIL import Image

from mailsafe.extract import ExtractLimits, Location, extract_locations, ocr
from mailsafe.extract.attachments import attachment_locations
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import OcrUnavailable, picture_text, resolve_ocr
from mailsafe.mime import parse_message
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.scan import scan_message
from tests.support.documents import make_mail, make_screenshot, make_zip

LINES = ["고객 명단", "김철수 주민등록번호 800101-1234560", "여권 M12345678"]
ON = ExtractLimits(ocr_languages="kor+eng")


def test_a_screenshot_is_read_in_korean_and_english() -> None:
    for image_format in ("png", "jpg"):
        text = picture_text(make_screenshot(LINES, image_format), Budget(ON))
        assert "800101-1234560" in text, text
        assert "명단" in text, text  # sparse mode: words in no particular order
        assert "M12345678" in text, text


def test_a_screenshot_anywhere_in_a_mail_holds_it_for_approval() -> None:
    """Attached, inside a ZIP, or inline in the HTML body as a data: URI."""
    shot = make_screenshot(LINES)
    inline = base64.b64encode(shot).decode()
    mails = {
        "attachment:shot.png": make_mail(attachments=[("shot.png", shot)]),
        "attachment:shots.zip/a/shot.png": make_mail(
            attachments=[("shots.zip", make_zip({"a/shot.png": shot}))]
        ),
        "attachment:body.html/data-1.png": make_mail(
            html=f'<p>보세요</p><img src="data:image/png;base64,{inline}">'
        ),
    }
    for place, raw in mails.items():
        result = scan_message(raw, default_rules(), SenderInfo("kim@corp.example"), limits=ON)
        assert (place, "rrn") in [(f.where, f.finding.type) for f in result.findings], place
        assert result.decision.action == "approve"
        off = scan_message(raw, default_rules(), SenderInfo("kim@corp.example"))
        assert off.findings == ()  # OCR is off unless the limits name languages


def test_the_reader_child_reads_pictures_too() -> None:
    parsed = parse_message(make_mail(attachments=[("shot.png", make_screenshot(LINES))]))
    with AttachmentReader(ON) as reader:
        found = reader.read(parsed)
    assert found == extract_locations(parsed, ON)
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:shot.png"]


def test_ocr_stays_within_its_budget_and_skips_what_holds_no_text() -> None:
    shot = make_screenshot(LINES)
    budget = Budget(ExtractLimits(ocr_languages="kor+eng", ocr_max_pictures=1))
    assert "800101-1234560" in picture_text(shot, budget)
    assert picture_text(shot, budget) == ""  # the second picture is past the budget
    assert budget.ocr_pictures == 1
    assert budget.ocr_seconds > 0
    spent = Budget(ExtractLimits(ocr_languages="kor+eng", ocr_max_seconds=0.5))
    assert picture_text(shot, spent) == ""  # less than a second left: not started
    assert spent.ocr_pictures == 0
    assert picture_text(shot, Budget(ExtractLimits())) == ""  # off


def _png(width: int, height: int) -> bytes:
    out = io.BytesIO()
    Image.new("L", (width, height), 255).save(out, format="PNG")
    return out.getvalue()


def test_hostile_and_useless_pictures_give_no_text_and_no_crash() -> None:
    budget = Budget(ON)
    assert picture_text(_png(60, 20), budget) == ""  # a logo: too small for a line
    assert picture_text(_png(4000, 4), budget) == ""  # a rule line
    huge = bytearray(_png(100, 100))
    huge[16:24] = (20000).to_bytes(4, "big") * 2  # 400 Mpx declared in the IHDR
    assert picture_text(bytes(huge), budget) == ""
    assert picture_text(b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, budget) == ""
    assert picture_text(make_screenshot(LINES)[:2000], budget) == ""  # cut off: nothing read
    assert budget.ocr_pictures == 0  # none of these cost an OCR run
    found = attachment_locations("cut.png", make_screenshot(LINES)[:2000], Budget(ON))
    assert found == []


def test_ocr_is_resolved_from_the_setting() -> None:
    assert resolve_ocr(False) == ""
    assert resolve_ocr("auto") == "kor+eng"  # installed here (.ci/run installs it)
    assert resolve_ocr(True) == "kor+eng"
    assert resolve_ocr("eng") == "eng"
    with pytest.raises(OcrUnavailable, match="no data for zzz"):
        resolve_ocr("kor+zzz")


def test_missing_tesseract_is_off_for_auto_and_a_refusal_for_true(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ocr, "tesseract_path", lambda: None)
    ocr.ocr_languages_available.cache_clear()
    try:
        assert resolve_ocr("auto") == ""
        with pytest.raises(OcrUnavailable, match="apt-get install tesseract-ocr"):
            resolve_ocr(True)
        assert picture_text(make_screenshot(LINES), Budget(ON)) == ""  # removed while running
    finally:
        ocr.ocr_languages_available.cache_clear()


def _scanned_pdf(text_layer: str = "") -> bytes:
    """A PDF page that is a picture of a form (a scanned copy), with an optional text layer."""
    from mailsafe.mupdf import pymupdf

    document = pymupdf.open()
    page = document.new_page()
    page.insert_image(pymupdf.Rect(50, 50, 410, 150), stream=make_screenshot(LINES))
    if text_layer:
        page.insert_text((50, 300), text_layer)
    data: bytes = document.tobytes()
    document.close()
    return data


def test_a_scanned_pdf_page_is_read_by_ocr() -> None:
    budget = Budget(ON)
    found = attachment_locations("사본.pdf", _scanned_pdf(), budget)
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:사본.pdf"]
    assert budget.ocr_pictures == 1
    assert attachment_locations("사본.pdf", _scanned_pdf(), Budget(ExtractLimits())) == [
        Location("attachment:사본.pdf", "")
    ]  # OCR off: the page has no text


def test_a_pdf_page_with_text_is_not_ocr_read() -> None:
    budget = Budget(ON)
    found = attachment_locations(
        "보고서.pdf", _scanned_pdf("Quarterly sales report, figure 1"), budget
    )
    assert budget.ocr_pictures == 0
    assert "800101" not in "".join(f.text for f in found if isinstance(f, Location))


def test_a_screenshot_pasted_into_a_word_file_is_read() -> None:
    import docx

    document = docx.Document()
    document.add_paragraph("주간 보고")
    document.add_picture(io.BytesIO(make_screenshot(LINES)))
    out = io.BytesIO()
    document.save(out)
    found = attachment_locations("보고.docx", out.getvalue(), Budget(ON))
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:보고.docx/word/media/image1.png"]
    assert "주간 보고" in texts["attachment:보고.docx"]


def test_scan_command_reads_pictures_unless_told_not_to(tmp_path, capsys) -> None:
    import json

    from maildiode.cli import main

    mail = tmp_path / "shot.eml"
    mail.write_bytes(make_mail(attachments=[("명단.png", make_screenshot(LINES))]))
    assert main(["scan", str(mail), "--json"]) == 0  # auto: Tesseract is installed here
    found = json.loads(capsys.readouterr().out)["findings"]
    assert {"type": "rrn", "where": "attachment:명단.png"}.items() <= found[0].items()
    assert main(["scan", str(mail), "--json", "--ocr", "off"]) == 0
    assert json.loads(capsys.readouterr().out)["findings"] == []
