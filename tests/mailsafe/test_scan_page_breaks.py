"""The outbound scan finds a value a PDF's page break cuts in two (D106): the first half of a
resident number ending page 1 and the second beginning page 2 used to leave the mail
unheld, since the pages' text is joined with a blank line no detector bridges."""

from __future__ import annotations

from mailsafe.mupdf import pymupdf
from mailsafe.pii import detect
from mailsafe.pii.pagebreaks import across_page_breaks, detect_paged
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.scan import scan_message
from tests.support.documents import make_mail

RRN = "800101-1234567"
SENDER = SenderInfo("kim@corp.example", "영업팀")


def _two_pages(first: str, second: str) -> bytes:
    document = pymupdf.open()
    for y, line in ((800, first), (72, second)):
        document.new_page().insert_text((50, y), line, fontname="korea", fontsize=11)
    data: bytes = document.tobytes()
    document.close()
    return data


def test_a_finding_a_page_break_cuts_is_placed_over_the_break_in_the_paged_text() -> None:
    page_one = "고객 정보\n주민등록번호 800101-\n"
    text = page_one + "\n1234567 입니다\n다음 줄"
    (found,) = across_page_breaks(text, [0, len(page_one)], detect)
    assert (found.type, found.text) == ("rrn", RRN)
    assert text[found.start : found.end] == "800101-\n\n1234567"
    assert found.masked.startswith("800101-1")


def test_no_page_break_no_extra_finding_and_whole_values_are_not_counted_twice() -> None:
    text = f"주민등록번호 {RRN}\n\n다음 쪽 본문"
    assert detect_paged(text, [0]) == detect(text)
    assert detect_paged(text, [0, text.index("다음")]) == detect(text)


def test_the_scan_holds_a_mail_whose_pdf_breaks_a_resident_number_over_two_pages() -> None:
    pdf = _two_pages(f"주민등록번호 {RRN[:7]}", f"{RRN[7:]} 입니다")
    result = scan_message(make_mail(attachments=[("고객.pdf", pdf)]), default_rules(), SENDER)
    found = [(lf.where, lf.finding.type, lf.finding.text) for lf in result.findings]
    assert ("attachment:고객.pdf", "rrn", RRN) in found
    assert result.counts()["rrn"] == 1
    assert result.decision.action != "pass", result.decision
