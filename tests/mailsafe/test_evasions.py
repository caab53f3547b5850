"""What a leaking employee tries (issue 19.5): a valid resident number sent out of the default
configuration in ways that each went out as ``allow`` with nothing found. Every case is a
whole mail scanned with the default outbound rules; each must be found, or held as
unreadable, and ``maildiode scan`` must say so too.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from maildiode.cli import main
from mailsafe.extract import ExtractLimits
from mailsafe.mupdf import pymupdf
from mailsafe.pii import detect, mask_text
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.scan import ScanResult, scan_message
from tests.support.documents import make_docx, make_mail, make_screenshot, make_xlsx, make_zip

RRN = "800101-1234560"  # a valid check digit
DIGITS = RRN.replace("-", "")
LINE = f"주민등록번호 {RRN}"
SENDER = SenderInfo("kim@corp.example", "영업팀")
HEADERS = "From: kim@corp.example\r\nTo: p@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"


def scan(raw: bytes, limits: ExtractLimits | None = None) -> ScanResult:
    return scan_message(raw, default_rules(), SENDER, limits=limits)


def assert_found(raw: bytes) -> None:
    result = scan(raw)
    assert "rrn" in {located.finding.type for located in result.findings}, result.summary()
    assert result.decision.action != "allow"


def _text(text: str) -> bytes:
    return make_mail(text=text)


def _html(html: str) -> bytes:
    return make_mail(text=None, html=html)


def _attached(name: str, data: bytes) -> bytes:
    return make_mail(attachments=[(name, data)])


def _arabic_indic(text: str) -> str:
    return text.translate(str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩"))


def _mathematical(text: str) -> str:
    return text.translate({ord("0") + i: 0x1D7CE + i for i in range(10)})


# ---- the number as written ------------------------------------------------------------------

WRITTEN: dict[str, bytes] = {
    "spaced-one-by-one": _text(" ".join(RRN)),
    "spaced-one-by-one-bare": _text("번호 " + " ".join(DIGITS)),
    "slash": _text("800101/1234560"),
    "underscore": _text("800101_1234560"),
    "tilde": _text("800101~1234560"),
    "colon": _text("800101:1234560"),
    "comma": _text("800101,1234560"),
    "tab": _text("800101\t1234560"),
    "double-hyphen": _text("800101--1234560"),
    "letter-before": _text(f"x{RRN}"),
    "letter-after": _text(f"{RRN}x"),
    "arabic-indic-digits": _text(_arabic_indic(RRN)),
    "mathematical-digits": _text(_mathematical(RRN)),
    "korean-number-words": _text("팔공공일공일-일이삼사오육공"),
    "korean-number-words-bare": _text("팔공공일공일일이삼사오육공"),
    "two-lines": _text("800101-\n1234560"),
    "two-lines-inside-a-group": _text("8001\n01-1234560"),
}


@pytest.mark.parametrize("raw", WRITTEN.values(), ids=WRITTEN.keys())
def test_the_number_written_to_slip_past_is_found(raw: bytes) -> None:
    assert_found(raw)


def test_a_disguised_number_is_masked_where_it_was_written() -> None:
    for text in (
        " ".join(RRN),
        _arabic_indic(RRN),
        "팔공공일공일-일이삼사오육공",
        "800101/1234560",
    ):
        masked = mask_text(text, detect(text))
        assert masked != text
        assert not any(digit in masked for digit in ("2", "3", "4", "5", "6", "٢", "삼", "사"))


def test_ordinary_numbers_are_no_disguise() -> None:
    """Times, dates, amounts with thousands commas, ranges, versions, hex dumps, and a CSV
    row of a date and an amount (a resident number's shape without its check digit)."""
    text = (
        "회의 2024-10-14 16:09:01 ~ 2024-10-17, 금액 1,234,567,890원, 12/27 v2.3.1\n"
        "6d48486d48486d48486d4848914848\n6d48486d4848 ORD-20240715-001234 A4 3D\n"
        "주문 20240101/123 1 2 3 4 5\n240101,1500000\n240101\t1500000\n"
    )
    assert detect(text) == []


# ---- what a mail client shows ---------------------------------------------------------------


def _flowed(body: str) -> bytes:
    return (
        HEADERS + "Content-Type: text/plain; charset=utf-8; format=flowed; delsp=yes\r\n\r\n" + body
    ).encode()


def _multipart(*parts: str, preamble: str = "", epilogue: str = "", params: str = "") -> bytes:
    body = "".join(f"--XX\r\n{part}\r\n" for part in parts)
    content_type = f'Content-Type: multipart/mixed; boundary="XX"{params}\r\n\r\n'
    return (HEADERS + content_type + preamble + body + "--XX--\r\n" + epilogue).encode()


def _file_part(headers: str, payload: str) -> str:
    return (
        "Content-Type: application/octet-stream\r\n"
        "Content-Disposition: attachment; filename=a.dat\r\n" + headers + "\r\n" + payload
    )


ENCODED_LINE = base64.b64encode(LINE.encode()).decode()

SHOWN: dict[str, bytes] = {
    "format-flowed-delsp": _flowed("번호 80010 \r\n1-1234560 입니다\r\n"),
    "base64-in-the-body": _text(f"참고: {ENCODED_LINE}"),
    "html-display-none": _html('<p>번호 800101<span style="display:none">7</span>-1234560</p>'),
    "html-zero-size-text": _html('<p>번호 800101<span style="font-size:0px">77</span>-1234560</p>'),
    "html-hidden-attribute": _html("<p>번호 800101<b hidden>7</b>-1234560</p>"),
    "html-table-cells": _html("<table><tr><td>800101</td><td>-1234560</td></tr></table>"),
    "transfer-encoding-comment": _multipart(
        "Content-Type: text/plain\r\n\r\nhi",
        _file_part("Content-Transfer-Encoding: base64 (it is)\r\n", ENCODED_LINE),
    ),
    "preamble": _multipart("Content-Type: text/plain\r\n\r\nhi", preamble=LINE + "\r\n"),
    "after-the-closing-boundary": _multipart("Content-Type: text/plain\r\n\r\nhi", epilogue=LINE),
}


@pytest.mark.parametrize("raw", SHOWN.values(), ids=SHOWN.keys())
def test_what_a_mail_client_shows_is_read(raw: bytes) -> None:
    assert_found(raw)


def test_a_mail_forwarded_in_base64_is_read() -> None:
    """Overlaps docfidelity's parser work on base64 message/rfc822; here only the scan's view."""
    forwarded = make_mail(text=LINE)
    raw = _multipart(
        "Content-Type: text/plain\r\n\r\nhi",
        "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(forwarded).decode(),
    )
    assert_found(raw)


@pytest.mark.parametrize(
    "raw",
    [
        _multipart(
            "Content-Type: text/plain\r\n\r\nhi",
            _file_part(
                "Content-Transfer-Encoding: 7bit\r\nContent-Transfer-Encoding: base64\r\n",
                ENCODED_LINE,
            ),
        ),
        _multipart("Content-Type: text/plain\r\n\r\nhi", params='; boundary="YY"'),
    ],
    ids=["two-transfer-encodings", "two-boundaries"],
)
def test_a_mail_clients_may_read_two_ways_is_unreadable(raw: bytes) -> None:
    result = scan(raw)
    assert ("mail", "corrupt") in [(u.where, u.reason) for u in result.unreadable]
    assert result.decision.action != "allow"


# ---- files ----------------------------------------------------------------------------------


def _rezip(
    data: bytes,
    *,
    rename: dict[str, str] | None = None,
    edit: dict[str, Callable[[bytes], bytes]] | None = None,
    add: dict[str, bytes] | None = None,
) -> bytes:
    """The Office package ``data`` with parts renamed, edited or added."""
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            content = source.read(name)
            if edit and name in edit:
                content = edit[name](content)
            target.writestr((rename or {}).get(name, name), content)
        for name, content in (add or {}).items():
            target.writestr(name, content)
    return out.getvalue()


def _renamed_sheet() -> bytes:
    def point(xml: bytes) -> bytes:
        return xml.replace(b"worksheets/sheet1.xml", b"data/q.xml")

    return _rezip(
        make_xlsx([["번호", RRN]]),
        rename={"xl/worksheets/sheet1.xml": "xl/data/q.xml"},
        edit={"xl/_rels/workbook.xml.rels": point, "[Content_Types].xml": point},
    )


def _exponent_cell() -> bytes:
    def exponent(xml: bytes) -> bytes:
        return xml.replace(b"<v>1</v>", b"<v>8.00101123456E+12</v>")

    return _rezip(make_xlsx([["번호"], [1]]), edit={"xl/worksheets/sheet1.xml": exponent})


def _docx_with(run_xml: str) -> bytes:
    """A docx with ``run_xml`` after its first run."""
    original = "<w:t>안녕하세요</w:t>".encode()

    def edit(xml: bytes) -> bytes:
        return xml.replace(original, f"<w:t>hi</w:t></w:r>{run_xml}<w:r><w:t>.</w:t>".encode())

    return _rezip(make_docx("안녕하세요"), edit={"word/document.xml": edit})


def _tracked_deletion() -> bytes:
    return _docx_with(
        f'<w:del w:id="1" w:author="k"><w:r><w:delText>{LINE}</w:delText></w:r></w:del>'
    )


def _field_code() -> bytes:
    return _docx_with(
        '<w:r><w:fldChar w:fldCharType="begin"/></w:r>'
        f'<w:r><w:instrText> QUOTE "{RRN}" </w:instrText></w:r>'
        '<w:r><w:fldChar w:fldCharType="end"/></w:r>'
    )


def _alt_chunk() -> bytes:
    def body(xml: bytes) -> bytes:
        return xml.replace(b"</w:body>", b'<w:altChunk r:id="rIdAlt1"/></w:body>')

    def relation(xml: bytes) -> bytes:
        return xml.replace(
            b"</Relationships>",
            b'<Relationship Id="rIdAlt1" Target="chunk.htm" Type="http://schemas.openxmlformats'
            b'.org/officeDocument/2006/relationships/aFChunk"/></Relationships>',
        )

    return _rezip(
        make_docx("안녕하세요"),
        edit={"word/document.xml": body, "word/_rels/document.xml.rels": relation},
        add={"word/chunk.htm": f"<html><body><p>{LINE}</p></body></html>".encode()},
    )


def _renamed_main_part() -> bytes:
    """The number split over two runs, so the raw XML does not show it either."""

    def point(xml: bytes) -> bytes:
        return xml.replace(b"word/document.xml", b"word/main.xml").replace(
            b'Target="document.xml"', b'Target="main.xml"'
        )

    def split(xml: bytes) -> bytes:
        return xml.replace(b"800101-", b"800101-</w:t></w:r><w:r><w:t>")

    document = _rezip(make_docx(LINE), edit={"word/document.xml": split})
    return _rezip(
        document,
        rename={"word/document.xml": "word/main.xml"},
        edit={"_rels/.rels": point, "[Content_Types].xml": point},
    )


def _pdf_with_a_file_on_its_page() -> bytes:
    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((50, 72), "hello")
    page.add_file_annot((100, 100), LINE.encode(), "note.txt")
    data: bytes = document.tobytes()
    document.close()
    return data


def _odt() -> bytes:
    content = (
        '<?xml version="1.0" encoding="UTF-8"?><office:document-content '
        'xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0" '
        'xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"><office:body><office:text>'
        "<text:p>번호 800101<text:span>-</text:span>1234560</text:p>"
        "</office:text></office:body></office:document-content>"
    )
    return make_zip(
        {"mimetype": b"application/vnd.oasis.opendocument.text", "content.xml": content.encode()}
    )


FILES: dict[str, bytes] = {
    "utf-16-without-mark": _attached("a.txt", f"이름,번호\n홍길동,{RRN}\n".encode("utf-16-le")),
    "utf-16-big-endian-unknown-extension": _attached("a.dat", LINE.encode("utf-16-be")),
    "unknown-extension-and-a-nul": _attached("a.dat", f"{LINE}\n\0 more\n".encode()),
    "nul-inside-the-number": _attached("a.dat", b"name 800101-12\x0034560\n"),
    "xlsx-scientific-notation": _attached("a.xlsx", _exponent_cell()),
    "xlsx-halves-in-two-cells": _attached("a.xlsx", make_xlsx([["번호", "800101", "-1234560"]])),
    "xlsx-renamed-sheet-part": _attached("a.xlsx", _renamed_sheet()),
    "xlsx-formula-without-value": _attached(
        "a.xlsx", make_xlsx([["번호", '="800101-"&"1234560"']])
    ),
    "docx-tracked-deletion": _attached("a.docx", _tracked_deletion()),
    "docx-field-code": _attached("a.docx", _field_code()),
    "docx-alt-chunk": _attached("a.docx", _alt_chunk()),
    "docx-renamed-main-part": _attached("a.docx", _renamed_main_part()),
    "pdf-file-annotation": _attached("a.pdf", _pdf_with_a_file_on_its_page()),
    "odt-markup-inside-the-number": _attached("a.odt", _odt()),
}


@pytest.mark.parametrize("raw", FILES.values(), ids=FILES.keys())
def test_files_are_read_as_their_programs_show_them(raw: bytes) -> None:
    assert_found(raw)


def _icon(png: bytes) -> bytes:
    """A Windows icon holding ``png`` (as icons since Vista do)."""
    return struct.pack("<HHHBBBBHHII", 0, 1, 1, 0, 0, 0, 0, 1, 32, len(png), 22) + png


@pytest.mark.parametrize("kind", ["bmp", "ico"])
def test_bmp_and_icon_screenshots_are_read(kind: str) -> None:
    shot = make_screenshot([LINE], "bmp" if kind == "bmp" else "png")
    data = shot if kind == "bmp" else _icon(shot)
    result = scan(_attached(f"shot.{kind}", data), ExtractLimits(ocr_languages="kor+eng"))
    assert [lf.finding.text for lf in result.findings] == [RRN]


def test_text_past_the_limit_is_unreadable() -> None:
    log = ("x" * 99 + "\n") * 30 + LINE
    result = scan(_attached("app.log", log.encode()), ExtractLimits(max_text_chars=1000))
    assert result.findings == ()
    assert [(u.where, u.reason) for u in result.unreadable] == [("attachment:app.log", "too-big")]
    assert result.decision.action != "allow"


# ---- maildiode scan -------------------------------------------------------------------------


def test_maildiode_scan_finds_or_holds_every_evasion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    cases = {**WRITTEN, **SHOWN, **FILES}
    paths = []
    for name, raw in cases.items():
        path = tmp_path / f"{name}.eml"
        path.write_bytes(raw)
        paths.append(str(path))
    assert main(["scan", "--json", "--ocr", "off", *paths]) == 0
    decisions = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(decisions) == len(cases)
    for decision in decisions:
        assert decision["decision"] != "allow", decision["file"]
        assert "rrn" in {finding["type"] for finding in decision["findings"]}, decision["file"]


def test_maildiode_scan_holds_a_log_past_the_text_limit(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The 20.5 MiB log of the attack pass, with the number at its end."""
    line = "2026-12-05 INFO request served in 12 ms\n"
    log = line * (41 * (1 << 20) // 2 // len(line)) + LINE + "\n"
    path = tmp_path / "log.eml"
    path.write_bytes(_attached("app.log", log.encode()))
    assert main(["scan", "--json", "--ocr", "off", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)["decision"] != "allow"
