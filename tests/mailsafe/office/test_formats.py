"""Which attachments are documents: the name or declared type, and bytes that agree."""

from __future__ import annotations

import pytest

from mailsafe.office.formats import document_kind

ZIP, OLE, RTF = b"PK\x03\x04rest", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1rest", b"{\\rtf1 x}"

CASES = [
    ("보고서.DOCX", "application/octet-stream", ZIP, "docx"),
    ("매크로.xlsm", "application/octet-stream", ZIP, "xlsm"),
    ("slides.pptm", "application/octet-stream", ZIP, "pptm"),
    ("old.doc", "application/msword", OLE, "doc"),
    ("old.xls", "application/octet-stream", OLE, "xls"),
    ("old.ppt", "application/octet-stream", OLE, "ppt"),
    ("a.odt", "application/octet-stream", ZIP, "odt"),
    ("a.ods", "application/octet-stream", ZIP, "ods"),
    ("a.odp", "application/octet-stream", ZIP, "odp"),
    ("letter.rtf", "application/rtf", RTF, "rtf"),
    ("견적서.hwp", "application/x-hwp", OLE, "hwp"),
    ("공문.hwpx", "application/octet-stream", ZIP, "hwpx"),
    # no extension: the declared type fills it in
    ("noname", "application/vnd.openxmlformats-officedocument.wordprocessingml.document", ZIP,
     "docx"),
    ("noname", "application/haansofthwp", OLE, "hwp"),
    # bytes that do not agree with the name: not a document
    ("fake.docx", "application/octet-stream", b"MZ\x90\x00", None),
    ("fake.hwp", "application/x-hwp", ZIP, None),
    ("fake.rtf", "application/rtf", b"plain text", None),
    # not a document kind at all
    ("setup.exe", "application/octet-stream", ZIP, None),
    ("archive.zip", "application/zip", ZIP, None),
]  # fmt: skip


@pytest.mark.parametrize(("name", "content_type", "head", "expected"), CASES)
def test_kind_by_name_or_type_and_bytes(
    name: str, content_type: str, head: bytes, expected: str | None
) -> None:
    assert document_kind(name, content_type, head) == expected
