"""Tiny documents of every attachment kind, built in code at test time, and mails carrying them.

docx and xlsx come from python-docx and openpyxl; pptx and hwpx are written as the few XML
parts a reader needs; PDF from PyMuPDF with its built-in Korean font; HWP as a compound file
from tests/support/cfb.py holding a FileHeader, a PrvText preview and a raw-deflated
BodyText/Section0 of HWP records (PARA_HEADER, PARA_TEXT).
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path

from tests.support.cfb import build_cfb


def make_docx(text: str) -> bytes:
    import docx

    document = docx.Document()
    for line in text.split("\n"):
        document.add_paragraph(line)
    table = document.add_table(rows=1, cols=2)
    table.rows[0].cells[0].text = "비고"
    table.rows[0].cells[1].text = "-"
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_xlsx(rows: list[list[object]]) -> bytes:
    import openpyxl

    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def make_narrow_table_docx(title: str, rows: list[list[str]]) -> bytes:
    """A DOCX with ``title`` and a table of ``rows`` in 2.2 cm columns: LibreOffice breaks a
    long value (an address, a registration number) of a cell over lines."""
    import docx
    from docx.shared import Cm

    document = docx.Document()
    document.add_paragraph(title)
    table = document.add_table(rows=len(rows), cols=len(rows[0]))
    table.autofit = False
    for r, row in enumerate(rows):
        for c, value in enumerate(row):
            table.cell(r, c).text = value
            table.cell(r, c).width = Cm(2.2)
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_wrapped_xlsx(rows: list[list[object]], wrapped: tuple[str, ...]) -> bytes:
    """An XLSX of ``rows`` in columns 14 characters wide, the ``wrapped`` cells ("B2") set to
    wrap their text: LibreOffice draws a longer value of one over two lines."""
    import openpyxl
    from openpyxl.styles import Alignment

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for cell in wrapped:
        sheet[cell].alignment = Alignment(wrap_text=True)
    for column in "ABCD":
        sheet.column_dimensions[column].width = 14
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def make_page_break_docx(lines: list[str], paragraph: str) -> bytes:
    """A DOCX of small pages (5 x 6 cm) holding the ``lines``, then ``paragraph`` (no widow
    control): after four short lines, LibreOffice ends page 1 with the paragraph's first line
    and begins page 2 with its second, so a number in it (``번호 800101-1234567``) is broken
    over the two pages (``800101-`` / ``1234567``)."""
    import docx
    from docx.shared import Cm

    document = docx.Document()
    section = document.sections[0]
    section.page_width, section.page_height = Cm(5), Cm(6)
    section.top_margin = section.bottom_margin = Cm(1)
    section.left_margin = section.right_margin = Cm(1)
    for line in lines:
        document.add_paragraph(line)
    document.add_paragraph(paragraph).paragraph_format.widow_control = False
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def make_clipped_xlsx(rows: list[list[object]], width: float = 14) -> bytes:
    """An XLSX of ``rows`` in columns ``width`` characters wide, no cell wrapped: LibreOffice
    draws a longer text of a cell cut short at its border when the next cell is filled."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    for row in rows:
        sheet.append(row)
    for column in "ABCDEF":
        sheet.column_dimensions[column].width = width
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


_PPTX_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="xml" ContentType="application/xml"/></Types>'
)


def make_pptx(text: str) -> bytes:
    paragraphs = "".join(
        f"<a:p><a:r><a:t>{_xml_escape(line)}</a:t></a:r></a:p>" for line in text.split("\n")
    )
    slide = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<p:sld xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main" '
        'xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main">'
        f"<p:cSld><p:spTree><p:sp><p:txBody>{paragraphs}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"
    )
    return make_zip(
        {
            "[Content_Types].xml": _PPTX_CONTENT_TYPES.encode(),
            "ppt/presentation.xml": b'<?xml version="1.0"?><p:presentation xmlns:p="x"/>',
            "ppt/slides/slide1.xml": slide.encode(),
        }
    )


def make_hwpx(text: str) -> bytes:
    paragraphs = "".join(
        f"<hp:p><hp:run><hp:t>{_xml_escape(line)}</hp:t></hp:run></hp:p>"
        for line in text.split("\n")
    )
    section = (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<hs:sec xmlns:hs="http://www.hancom.co.kr/hwpml/2011/section" '
        f'xmlns:hp="http://www.hancom.co.kr/hwpml/2011/paragraph">{paragraphs}</hs:sec>'
    )
    return make_zip(
        {
            "mimetype": b"application/hwp+zip",
            "Contents/content.hpf": b'<?xml version="1.0"?><opf:package xmlns:opf="x"/>',
            "Contents/section0.xml": section.encode(),
        }
    )


def make_pdf(text: str) -> bytes:
    from mailsafe.mupdf import pymupdf

    document = pymupdf.open()
    page = document.new_page()
    page.insert_text((50, 72), text, fontname="korea", fontsize=11)
    data: bytes = document.tobytes()
    document.close()
    return data


# Debian's fonts-nanum (installed by .ci/run and `make deps`): what Korean Windows and office
# suites draw screens with looks like this, proportional digits included.
SCREEN_FONT = Path("/usr/share/fonts/truetype/nanum/NanumGothic.ttf")


def make_screenshot(lines: list[str], image_format: str = "png") -> bytes:
    """A picture of ``lines`` as a screen shows them: black on white, 15 px NanumGothic."""
    from PIL import Image, ImageDraw, ImageFont

    if not SCREEN_FONT.is_file():
        raise RuntimeError(f"{SCREEN_FONT} is missing: install fonts-nanum (make deps)")
    font = ImageFont.truetype(str(SCREEN_FONT), 15)
    width = 40 + max(int(font.getlength(line)) for line in lines)
    picture = Image.new("RGB", (max(width, 200), 40 + 24 * len(lines)), "white")
    draw = ImageDraw.Draw(picture)
    for number, line in enumerate(lines):
        draw.text((20, 20 + 24 * number), line, fill="black", font=font)
    out = io.BytesIO()
    picture.save(out, format="JPEG" if image_format == "jpg" else image_format.upper())
    return out.getvalue()


def make_encrypted_pdf(text: str) -> bytes:
    from mailsafe.mupdf import pymupdf

    document = pymupdf.open()
    document.new_page().insert_text((50, 72), text)
    data: bytes = document.tobytes(
        encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="owner", user_pw="secret"
    )
    document.close()
    return data


def hwp_records(text: str) -> bytes:
    """A section stream: one paragraph per line (PARA_HEADER then PARA_TEXT), with a
    tab control (8 code units) before the text to exercise control skipping."""
    out = b""
    for line in text.split("\n"):
        units = (
            struct.pack("<8H", 9, 0, 0, 0, 0, 0, 0, 9)
            + line.encode("utf-16-le")
            + struct.pack("<H", 13)
        )
        out += _record(66, b"\0" * 22)
        out += _record(67, units)
    return out


def _record(tag: int, payload: bytes) -> bytes:
    if len(payload) >= 0xFFF:
        return struct.pack("<II", tag | (0xFFF << 20), len(payload)) + payload
    return struct.pack("<I", tag | (len(payload) << 20)) + payload


def make_hwp(
    text: str, *, compressed: bool = True, password: bool = False, preview: str = ""
) -> bytes:
    flags = (0x1 if compressed else 0) | (0x2 if password else 0)
    header = b"HWP Document File".ljust(32, b"\0") + struct.pack("<II", 0x05000300, flags)
    body = hwp_records(text)
    if compressed:
        packer = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        body = packer.compress(body) + packer.flush()
    return build_cfb(
        {
            "FileHeader": header.ljust(256, b"\0"),
            "DocInfo": b"\0" * 16,
            "BodyText/Section0": body,
            "PrvText": preview.encode("utf-16-le"),
        }
    )


def make_zip(files: dict[str, bytes], *, encrypted_names: tuple[str, ...] = ()) -> bytes:
    """A ZIP of ``files``. Members in ``encrypted_names`` get the 'encrypted' flag bit set
    (zipfile cannot encrypt; the flag is what a reader sees first and what we test)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    data = out.getvalue()
    for name in encrypted_names:
        data = _set_encrypted_flag(data, name.encode())
    return data


def _set_encrypted_flag(data: bytes, name: bytes) -> bytes:
    buffer = bytearray(data)
    for signature, flag_offset, name_offset in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        start = 0
        while (start := buffer.find(signature, start)) >= 0:
            if buffer[start + name_offset : start + name_offset + len(name)] == name:
                buffer[start + flag_offset] |= 1
            start += 4
    return bytes(buffer)


def _xml_escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def make_mail(
    *,
    subject: str = "보고서",
    text: str | None = "안녕하세요.",
    html: str | None = None,
    attachments: list[tuple[str, bytes]] = (),  # type: ignore[assignment]
    sender: str = "kim@corp.example",
    to: str = "partner@example.com",
) -> bytes:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = to
    message["Subject"] = subject
    if text is not None:
        message.set_content(text)
    if html is not None:
        if text is None:
            message.set_content(html, subtype="html")
        else:
            message.add_alternative(html, subtype="html")
    for name, data in attachments:
        message.add_attachment(data, maintype="application", subtype="octet-stream", filename=name)
    return message.as_bytes(policy=SMTP)
