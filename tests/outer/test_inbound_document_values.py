"""Inbound masking of an office document's values that its page breaks over lines (B3, D97).

External mail reaches employees as pictures. A resident number or an address in a narrow
DOCX table cell or a wrapped XLSX cell is laid out by LibreOffice over two lines, where the
worker's own detector no longer sees it whole. The receive side now reads the documents'
text first (the outbound scan's extraction and detector) and hides the values it finds of
the recipient's masked types wherever they are drawn (``RenderOptions.mask_values``,
``mailsafe.positions.value_spans``). Each test draws the mail in a real render worker of the
outer agent (LibreOffice for the document), reads the page back by OCR and checks that no
piece of a masked value is readable while the words around it are.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_text
from mailsafe.inbound_filter import FilterJob
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML, published_text
from mailsafe.payload import RenderedMail
from mailsafe.render.pool import RenderPool
from outer_agent.config import RenderSection
from outer_agent.packaging import MailsafePackager, render_pool
from tests.support.documents import (
    make_clipped_xlsx,
    make_mail,
    make_narrow_table_docx,
    make_page_break_docx,
    make_wrapped_xlsx,
)

pytestmark = pytest.mark.slow

RRN = "800101-1234567"
EMAIL = "chulsoo.kim.sales@naver.com"
READ = ExtractLimits(ocr_languages="kor+eng")
# Pieces of each value: none may be read in a page that masks its type.
RRN_PIECES = ("1234567", "234567")
EMAIL_PIECES = ("chulsoo", "kim.sa", "naver")
ROWS = [["이름", "번호", "메일", "부서"], ["김철수", RRN, EMAIL, "영업부"]]
DOCUMENTS = {
    "명단.docx": (lambda: make_narrow_table_docx("거래처 담당자 명단", ROWS), "거래처담당자명단"),
    "명단.xlsx": (lambda: make_wrapped_xlsx(ROWS, wrapped=("B2", "C2")), "영업부"),
}
MASK_BOTH = "\n[[rule]]\nid = 'mask-both'\naction = 'mask'\nmask = ['rrn', 'email']\n"


@pytest.fixture(scope="module")
def pool() -> Iterator[RenderPool]:
    with render_pool(RenderSection(), processes=1) as started:
        yield started


def _read(page: bytes) -> str:
    """What OCR reads on a page, without spaces (a wrapped value read as one run)."""
    return re.sub(r"\s", "", picture_text(page, Budget(READ)))


def _document_page(rendered: RenderedMail, name: str) -> str:
    pages = rendered.manifest.pages
    found = [image for image, p in zip(rendered.images, pages, strict=True)
             if p.source == f"attachment:{name}"]  # fmt: skip
    assert found, (pages, rendered.manifest.withheld)
    return "".join(_read(image) for image in found)


@pytest.mark.parametrize("name", list(DOCUMENTS))
def test_a_documents_wrapped_values_are_not_readable_in_the_inbound_picture(
    pool: RenderPool, name: str
) -> None:
    build, readable = DOCUMENTS[name]
    raw = make_mail(attachments=[(name, build())])
    rendered = MailsafePackager(pool).render_masked(raw, ("rrn", "email"))
    text = _document_page(rendered, name)
    assert readable in text, text  # the page is drawn and its words are read
    for piece in (*RRN_PIECES, *EMAIL_PIECES):
        assert piece not in text, (piece, text)


def test_the_receive_filters_mask_a_documents_values_for_the_recipients_types(
    pool: RenderPool,
) -> None:
    """The filters' own rendering (in the worker, from one parse): the carried part hides
    the values of its mask; a value of a type the recipient's mask leaves out stays (the
    default rules mask the unique identifiers: the address is shown, the number is not)."""
    name = "명단.docx"
    build, readable = DOCUMENTS[name]
    raw = make_mail(attachments=[(name, build())], to="user@corp.example, desk@corp.example")
    rules = DEFAULT_INBOUND_RULES_TOML + MASK_BOTH.replace(
        "action = 'mask'", "action = 'mask'\nscope = 'users'\nusers = ['desk@corp.example']"
    )
    job = FilterJob(1, published_text(rules, {}, {}), "p@partner.example",
                    ("user@corp.example", "desk@corp.example"))  # fmt: skip
    result, why = pool.filter(raw, job)
    assert result is not None, why
    read = {part.rcpts: _document_page(result.packages[part.package], name)
            for part in result.parts}  # fmt: skip
    user, desk = read[("user@corp.example",)], read[("desk@corp.example",)]
    for text in (user, desk):
        assert readable in text, text
        for piece in RRN_PIECES:
            assert piece not in text, (piece, text)
    for piece in EMAIL_PIECES:
        assert piece not in desk, (piece, desk)
    assert "naver" in user, user  # not the user's mask: shown as before


def test_a_value_cut_by_a_page_break_or_a_cells_border_is_not_readable_in_the_picture(
    pool: RenderPool,
) -> None:
    """D105: a DOCX whose page 1 ends with a resident number's first half and page 2 begins
    with its second; an XLSX whose narrow cells, not wrapped, show only the start of an
    address and of a number. What the pages draw of them is hidden as the masked form says
    (``800101-1******``, ``c******.***...``)."""
    docx = make_page_break_docx(["줄 1", "줄 2", "줄 3", "DOCXPAGE"], f"번호 {RRN} ENDPAGE")
    xlsx = make_clipped_xlsx([["XLSXPAGE", "메일", "번호", "부서"],
                              ["김철수", EMAIL, RRN, "ENDCELL"]], width=12)  # fmt: skip
    raw = make_mail(attachments=[("쪽.docx", docx), ("칸.xlsx", xlsx)])
    rendered = MailsafePackager(pool).render_masked(raw, ("rrn", "email"))
    pages, cells = _document_page(rendered, "쪽.docx"), _document_page(rendered, "칸.xlsx")
    for word in ("DOCXPAGE", "ENDPAGE"):
        assert word in pages, pages
    for word in ("XLSXPAGE", "김철수"):
        assert word in cells, cells
    for piece in RRN_PIECES:
        assert piece not in pages, (piece, pages)
        assert piece[:4] not in cells, (piece, cells)
    for piece in ("hulsoo", "kim"):
        assert piece not in cells, (piece, cells)
