"""What LibreOffice draws of a value it cuts, and what masking leaves of it (D105): an XLSX
made by openpyxl whose narrow cells, not wrapped, show only a value's start (the characters
LibreOffice puts into the page are the ones it shows, and the glyph the border cuts), and a
DOCX whose page break splits a number. Read in the PDF the real sandbox made, after the
masker redacted its pages in order: no character the masked form hides is left."""

from __future__ import annotations

import re

from mailsafe.mupdf import pymupdf
from mailsafe.office.converter import OfficeConverter
from mailsafe.render.masking import Masker
from mailsafe.render.options import RenderOptions
from tests.support.documents import make_clipped_xlsx, make_page_break_docx

RRN = "800101-1234567"
EMAIL = "chulsoo.kim.sales@naver.com"
MASKING = RenderOptions(mask_types=frozenset({"rrn", "email"}), ocr_languages="",
                        mask_values=(("rrn", RRN), ("email", EMAIL)))  # fmt: skip


def _drawn_and_masked(pdf: bytes) -> tuple[list[str], list[str]]:
    """Each page's text as LibreOffice drew it, and after masking (spaces left out)."""
    masker = Masker(MASKING)
    with pymupdf.open(stream=pdf, filetype="pdf") as document:
        drawn = [re.sub(r"\s", "", page.get_text()) for page in document]
        for number, page in enumerate(document, 1):
            masker.pdf_page(page, number, "attachment:명단")
        return drawn, [re.sub(r"\s", "", page.get_text()) for page in document]


def test_a_cells_cut_values_keep_only_what_their_masked_form_shows(
    converter: OfficeConverter,
) -> None:
    rows = [["XLSXPAGE", "메일", "번호", "부서"], ["김철수", EMAIL, RRN, "영업부"]]
    (drawn,), (masked,) = _drawn_and_masked(converter.convert(make_clipped_xlsx(rows, 12),
                                                              "xlsx", 30))  # fmt: skip
    assert "chulsoo.kim.s" in drawn  # cut: neither the value nor the detector finds it
    assert EMAIL not in drawn
    assert "800101-12345" in drawn
    assert RRN not in drawn
    for word in ("XLSXPAGE", "김철수"):
        assert word in masked
    assert "hulsoo" not in masked
    assert "kim" not in masked
    assert "800101-1" in masked  # the masked form shows it
    assert "800101-12" not in masked


def test_a_number_split_by_a_page_break_keeps_only_what_its_masked_form_shows(
    converter: OfficeConverter,
) -> None:
    docx = make_page_break_docx(["줄 1", "줄 2", "줄 3", "DOCXPAGE"], f"번호 {RRN} ENDPAGE")
    drawn, masked = _drawn_and_masked(converter.convert(docx, "docx", 30))
    assert drawn[0].endswith("800101-")  # the break falls inside the number
    assert drawn[1].startswith("1234567")
    assert masked[0].endswith("800101-")
    assert "ENDPAGE" in masked[1]
    assert "234567" not in masked[1]
