"""Inbound masking of values a drawing cuts (D105): a value a page break splits over two
pages, a value a narrow cell shows only the start of, and the receive filters' one reading
of a mail's documents. (LibreOffice's own pages, read back by OCR: tests/outer/
test_inbound_document_values.py and tests/e2e/test_inbound_masking.py.)"""

from __future__ import annotations

import pytest

import mailsafe.render.masking.documents as documents
from mailsafe.extract import FileReadings, extract_locations
from mailsafe.inbound_filter import FilterJob, filter_message, parse_published
from mailsafe.inbound_rules import DEFAULT_INBOUND_RULES_TOML, published_text
from mailsafe.mime import parse_message
from mailsafe.mupdf import pymupdf
from mailsafe.pii import Finding
from mailsafe.pii.pagebreaks import detect_paged
from mailsafe.render import with_document_values
from mailsafe.render.masking import Masker
from mailsafe.render.masking.breaks import cut_at_page_end, cut_at_page_start
from mailsafe.render.masking.documents import FirstReading, document_values
from mailsafe.render.masking.pieces import MAX_PIECE_VALUE_CHARS, value_pieces
from mailsafe.render.masking.text import Hiding, found_in
from mailsafe.render.options import RenderOptions
from mailsafe.scan import read_mail
from tests.support.documents import make_mail, make_narrow_table_docx

RRN = "800101-1234567"
EMAIL = "chulsoo.kim.sales@naver.com"
TYPES = frozenset({"rrn", "email"})


def _pages_pdf(pages: list[list[tuple[float, str]]]) -> bytes:
    """A PDF of ``pages``, each a list of (height, line): a line at 800 ends its page."""
    document = pymupdf.open()
    for lines in pages:
        page = document.new_page()
        for y, line in lines:
            page.insert_text((50, y), line, fontname="korea", fontsize=11)
    data: bytes = document.tobytes()
    document.close()
    return data


# Page 1 ends with the number's first half, page 2 begins with its second and ends with the
# address's first half, page 3 begins with the address's rest.
BROKEN = _pages_pdf([
    [(72, "PAGEONE"), (800, f"주민등록번호 {RRN[:7]}")],
    [(72, f"{RRN[7:]} 입니다 PAGETWO"), (800, f"메일 {EMAIL[:12]}")],
    [(72, f"{EMAIL[12:]} PAGETHREE")],
])  # fmt: skip


def test_a_finding_a_page_break_cuts_is_a_piece_on_each_page() -> None:
    before, page, after = (
        f"앞 주민등록번호 {RRN[:7]}\n",
        f"\n{RRN[7:]} 입니다 {EMAIL[:12]}\n",
        EMAIL[12:],
    )
    (start,) = cut_at_page_start(page, before, TYPES)
    assert (start.type, page[start.start : start.end], start.masked) == (
        "rrn",
        "1234567",
        "1******",
    )
    (end,) = cut_at_page_end(page, after, TYPES)
    assert (end.type, page[end.start : end.end], end.masked) == (
        "email",
        EMAIL[:12],
        "c******.***.",
    )
    assert cut_at_page_start(page, "끝.\n", TYPES) == []  # nothing ran over the break
    assert cut_at_page_end(page, "", TYPES) == []


def _masked_pages(pdf: bytes, options: RenderOptions) -> list[str]:
    """The text of each page of ``pdf`` after the masker redacted the pages in order."""
    masker = Masker(options)
    with pymupdf.open(stream=pdf, filetype="pdf") as document:
        for number, page in enumerate(document, 1):
            masker.pdf_page(page, number, "attachment:a.pdf")
        return [page.get_text() for page in document]


def test_a_pdfs_pages_hide_both_pieces_of_a_value_its_page_break_cuts() -> None:
    one, two, three = _masked_pages(BROKEN, RenderOptions(mask_types=TYPES, ocr_languages=""))
    assert "PAGEONE" in one
    assert RRN[:7] in one
    assert "PAGETWO" in two
    assert "234567" not in two
    assert "hulsoo" not in two
    assert "kim" not in two
    assert "PAGETHREE" in three
    assert "sales" not in three
    assert "naver.com" in three  # the masked form shows the domain


def test_a_pdfs_values_are_read_over_its_page_breaks() -> None:
    found = document_values([("a.pdf", BROKEN)], TYPES)
    assert ("rrn", RRN) in found
    assert ("email", EMAIL) in found


@pytest.mark.parametrize(
    ("drawn", "hidden"),
    [
        ("김철수 chulsoo.kim.sale 영업부", ["c******.***.****"]),  # a cell cut at its border
        ("800101-1234영업부", ["800101-1***"]),  # the next cell's text against the cut one
        ("800101-12 영업부", ["800101-1*"]),
        ("1234567 입니다", ["1******"]),  # an end drawn, its start cut (right-aligned)
        (f"{EMAIL[:14]}\n{EMAIL[14:]}", ["*******.***.**\n***@*****.***"]),  # wrapped: whole
        ("sales team, salesforce", []),  # an ordinary word; another word
        ("chulsoo 님", []),  # letters only, stopping where the address's letters do
        ("naver.com 800101 생일", []),  # what the masked form shows anyway
        ("800101-12345", ["800101-1****"]),
        ("chulsoo.kim.salt", []),  # another word: the value goes on with a letter there
        ("kim.sale", []),  # a middle piece is no start and no end
    ],
)
def test_a_document_pages_pieces_of_a_value_are_hidden(drawn: str, hidden: list[str]) -> None:
    values = (("rrn", RRN), ("email", EMAIL), ("email", "sales@acme.com"))
    found = found_in(drawn, TYPES, hiding=Hiding(values=values, pieces=True))
    assert [f.masked for f in found] == hidden
    assert found_in(drawn, {"passport"}, hiding=Hiding(values=values, pieces=True)) == []


def test_a_mails_own_text_hides_no_pieces() -> None:
    """Pieces are a page's (Masker.pdf_page): a body is never cut by a drawing."""
    masker = Masker(RenderOptions(mask_types=TYPES, mask_values=(("email", EMAIL),)))
    assert masker.text("chulsoo.kim.sale 영업부", "body") == "chulsoo.kim.sale 영업부"


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the files masking's reading of the documents opens."""
    opened: list[str] = []
    real = documents.attachment_locations

    def spy(name, data, budget):  # type: ignore[no-untyped-def]
        opened.append(name)
        return real(name, data, budget)

    monkeypatch.setattr(documents, "attachment_locations", spy)
    return opened


DOCX = make_narrow_table_docx("명단", [["이름", "번호", "메일"], ["김철수", RRN, EMAIL]])
READING = RenderOptions(mask_types=TYPES, mask_document_text=True, ocr_languages="")


def test_masking_takes_a_document_from_the_first_reading_by_its_name_and_bytes(
    reads: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    raw = make_mail(attachments=[("명단.docx", DOCX), ("a.pdf", BROKEN)])
    mail = parse_message(raw)
    files: FileReadings = {}
    detected: dict[str, list[Finding]] = {}
    read_mail(mail, extract_locations(mail, readings=files), detected)
    searched: list[str] = []
    monkeypatch.setattr(
        documents,
        "detect_paged",
        lambda text, pages: searched.append(text) or detect_paged(text, pages),
    )
    options = with_document_values(mail, READING, TYPES, FirstReading(files, detected))
    assert (reads, searched) == ([], [])  # neither document read again, nor its text searched
    assert with_document_values(mail, READING, TYPES).mask_values == options.mask_values
    assert {("rrn", RRN), ("email", EMAIL)} <= set(options.mask_values)
    assert reads == ["명단.docx", "a.pdf"]  # read without the first reading
    changed = make_narrow_table_docx("다른 명단", [["이름"], ["김영희"]])
    other = make_mail(attachments=[("명단.docx", changed), ("a.pdf", BROKEN)])
    with_document_values(parse_message(other), READING, TYPES, FirstReading(files, detected))
    assert reads[2:] == ["명단.docx"]  # the same name, other bytes: read


def test_the_receive_filters_read_a_mails_documents_once_when_their_rules_read_text(
    reads: list[str],
) -> None:
    rules = DEFAULT_INBOUND_RULES_TOML + (
        "\n[[rule]]\nid = 'watch-ids'\naction = 'monitor'\n"
        "[[rule.condition]]\nfield = 'attachment_content'\npii = ['rrn']\n"
    )
    raw = make_mail(attachments=[("명단.docx", DOCX)], to="user@corp.example")
    job = FilterJob(1, None, "p@partner.example", ("user@corp.example",))
    result = filter_message(raw, parse_published(published_text(rules, {}, {}), 1), job, READING)
    (part,) = result.parts
    assert (part.decision.action, part.decision.rule) == ("monitor", "watch-ids")
    assert reads == []  # the rules' reading served masking too


def test_a_value_too_long_to_have_pieces_is_still_hidden_whole() -> None:
    """1,000 values of 512 characters would be a million pieces: a value longer than
    MAX_PIECE_VALUE_CHARS has none, and is hidden where it is drawn whole."""
    long = "k" * MAX_PIECE_VALUE_CHARS + ".kim@naver.com"
    hiding = Hiding(values=(("email", long),), pieces=True)
    assert value_pieces((("email", long),)).longest == 0
    assert found_in(f"{long[:30]} 영업부", TYPES, hiding=hiding) == []
    (whole,) = found_in(f"메일 {long}", TYPES, hiding=hiding)
    assert whole.text == long
