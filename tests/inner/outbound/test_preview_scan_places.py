"""A held mail's preview masks everything the scan found, wherever it found it (issue A7).

Each test holds a mail the way the agent does (the scan reads it with OCR in the reader's
child process), draws its preview in a real preview worker (LibreOffice for office files,
OCR for pictures), reads every page back by OCR and checks that the values the scan found are
not readable in it while the words around them are:

1. file names with a number (also one inside a ZIP), a forwarded mail's picture, a ``data:``
   picture in the HTML body;
2. a PNG sent as ``application/octet-stream`` is in the preview, painted;
3. values an office document's page breaks over lines (a narrow table cell, a wrapped
   spreadsheet cell): the worker's detector no longer sees them whole, the scan's values are
   found all the same; an HWPX and a text PDF as guards.
"""

from __future__ import annotations

import base64
import email.message
import re
from collections.abc import Iterator
from email.policy import SMTP

import pytest

from inner_agent.outbound.preview import Previewer, known_boxes, preview_pool
from inner_agent.outbound.previews import Preview
from inner_agent.outbound.scanning import Scanned, Scanner
from inner_agent.outbound.spool import SpooledMail, new_mail_id
from mailsafe.extract.isolated import AttachmentReader
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_text
from mailsafe.policy import default_rules
from tests.support.documents import (
    make_hwpx,
    make_mail,
    make_narrow_table_docx,
    make_pdf,
    make_screenshot,
    make_wrapped_xlsx,
    make_zip,
)

pytestmark = pytest.mark.slow

RRN = "800101-1234567"
PHONE = "010-2345-6789"
EMAIL = "chulsoo.kim.sales@naver.com"
SECRET = "Xk9mP2qLw7vR"
READ = ExtractLimits(ocr_languages="kor+eng")


@pytest.fixture(scope="module")
def held() -> Iterator[tuple[AttachmentReader, Previewer]]:
    with AttachmentReader(READ) as reader, preview_pool("kor+eng") as pool:
        yield reader, Previewer(pool)


def _hold(held: tuple[AttachmentReader, Previewer], data: bytes) -> tuple[Scanned, Preview]:
    reader, previewer = held
    mail = SpooledMail(new_mail_id(), "kim@corp.example", ("partner@example.com",), 0.0,
                       "127.0.0.1", "mx")  # fmt: skip
    scanned = Scanner(default_rules(), reader).scan(mail, data, lambda _address: None)
    assert scanned.result.decision.action == "approve", scanned.result.decision
    return scanned, previewer.preview(data, scanned)


def _read(page_data: bytes) -> str:
    """What OCR reads on a page, without spaces (a wrapped value read as one run)."""
    return re.sub(r"\s", "", picture_text(page_data, Budget(READ)))


# ------------------------------------------------------------------------------ 1. names


def test_file_names_with_a_number_show_no_digits_of_it_anywhere_in_the_preview(held) -> None:  # type: ignore[no-untyped-def]
    """The scan finds the number in each name; the preview's pages, the parts left out, its
    notes and its text sections (the console's detail page shows them) hide it whole, also
    in the name of a file inside a ZIP and in a list of names where the detector misses one."""
    sheet = make_zip({"a.txt": b"hi"})  # any bytes: the name is what is checked
    data = make_mail(attachments=[
        (f"김철수_{RRN}.xlsx", sheet), (f"사본_{RRN}.exe", b"MZ"),
        ("묶음.zip", make_zip({f"이영희_{RRN}.txt": b"hi"})), (f"b_{RRN}.txt", b"plain"),
        (f"c_{RRN}.txt", b"plain"),
    ])  # fmt: skip
    scanned, preview = _hold(held, data)
    assert sum(f.finding.type == "rrn" for f in scanned.result.findings) >= 5
    shown = [
        *(page.title for page in preview.pages),
        *(f"{item.name} {item.reason}" for item in preview.left_out),
        *preview.notes,
        *(f"{title}\n{text}" for title, text in preview.sections),
    ]
    leaks = [line for line in shown if "1234567" in line or "800101" in line]
    assert not leaks, leaks
    assert any("김철수_" in line for line in shown), shown  # whose file it is stays
    assert any("이영희_" in line for line in shown), shown


# --------------------------------------------------------------------------- 1-2. pictures


def _picture(title: str) -> bytes:
    return make_screenshot([title, f"김철수 {RRN} {PHONE}", "담당 영업부"])


def _mail_with_pictures() -> bytes:
    """A forwarded mail with a picture, a data: picture in the HTML body, and a PNG its mailer
    sent as application/octet-stream."""
    inner = email.message.EmailMessage()
    inner["From"], inner["To"], inner["Subject"] = "lee@corp.example", "kim@corp.example", "원본"
    inner.set_content("원본 메일입니다.")
    inner.add_attachment(_picture("전달 명단"), maintype="image", subtype="png",
                         filename="전달.png")  # fmt: skip
    outer = email.message.EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "kim@corp.example", "p@x.example", "명단"
    outer.set_content("명단을 보냅니다.")
    encoded = base64.b64encode(_picture("본문 명단")).decode()
    outer.add_alternative(f'<p>명단을 보냅니다.</p><img src="data:image/png;base64,{encoded}">',
                          subtype="html")  # fmt: skip
    outer.add_attachment(_picture("첨부 명단"), maintype="application", subtype="octet-stream",
                         filename="첨부.png")  # fmt: skip
    outer.add_attachment(inner)
    return outer.as_bytes(policy=SMTP)


def test_every_picture_of_the_mail_is_in_the_preview_with_the_scans_findings_painted(
    held,  # type: ignore[no-untyped-def]
) -> None:
    scanned, preview = _hold(held, _mail_with_pictures())
    boxed = {position.part + ":" + position.file for _, position in known_boxes(scanned)}
    assert boxed == {"attachment:body.html/data-1.png", "attachment:첨부.png",
                     "forwarded[1].attachment:전달.png"}, boxed  # fmt: skip
    sources = {page.source for page in preview.pages}
    assert {"attachment:첨부.png", "attachment:전달.png"} <= sources, (sources, preview.left_out)
    read = {page.title: _read(page.data) for page in preview.pages}
    for title, text in read.items():
        assert "1234567" not in text, (title, text)
        assert "23456789" not in text.replace("-", ""), (title, text)
    seen = "".join(read.values())
    for heading in ("전달명단", "본문명단", "첨부명단"):
        assert heading in seen, (heading, read)  # each picture is shown, its words readable


# ---------------------------------------------------------------------------- 3. documents


def _narrow_table_docx() -> bytes:
    rows = [["이름", "메일", "비고"], ["김철수", EMAIL, f"비밀번호: {SECRET}"]]
    return make_narrow_table_docx("거래처 담당자 명단", rows)


def _wrapped_xlsx() -> bytes:
    rows: list[list[object]] = [["이름", "메일", "비고", "부서"],
                                ["김철수", EMAIL, f"비밀번호: {SECRET}", "영업부"]]  # fmt: skip
    return make_wrapped_xlsx(rows, wrapped=("B2", "C2"))


@pytest.mark.parametrize(
    ("name", "build", "readable"),
    [
        ("명단.docx", _narrow_table_docx, "거래처담당자명단"),
        ("명단.xlsx", _wrapped_xlsx, "영업부"),
        ("명단.hwpx", lambda: make_hwpx(f"거래처 김철수 {EMAIL} 비밀번호: {SECRET}"), "거래처"),
        ("명단.pdf", lambda: make_pdf(f"거래처 김철수 {EMAIL}\n비밀번호: {SECRET}"), "거래처"),
    ],
    ids=["docx", "xlsx", "hwpx", "pdf"],
)
def test_a_documents_values_the_scan_found_are_not_readable_in_its_page(
    held,
    name: str,
    build,
    readable: str,  # type: ignore[no-untyped-def]
) -> None:
    """The DOCX's narrow cell and the XLSX's wrapped cell break the address and the key over
    lines: the worker's own detector does not see them whole there (a test of mailsafe's
    shows it), the scan read them whole in the document's text, and its values are found and
    hidden on the page; the page's other words stay readable."""
    scanned, preview = _hold(held, make_mail(attachments=[(name, build())]))
    found = {(f.finding.type, f.finding.text) for f in scanned.result.findings}
    assert {("email", EMAIL), ("secret", SECRET)} <= found, found
    page = next(p for p in preview.pages if p.source == f"attachment:{name}")
    text = _read(page.data)
    assert readable in text, text
    for piece in ("chulsoo", "kim.sa", "naver", SECRET[:6], SECRET[-6:]):
        assert piece not in text, (piece, text)
