"""Text of every attachment kind, and every limit turning into an Unreadable finding."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.extract.attachments import attachment_locations
from mailsafe.extract.limits import MIB, Budget, ExtractLimits
from mailsafe.extract.types import UNREADABLE_REASONS, Location, Unreadable
from mailsafe.extract.xmltext import xml_text
from mailsafe.pii import detect
from tests.support.cfb import build_cfb
from tests.support.documents import (
    make_docx,
    make_encrypted_pdf,
    make_hwp,
    make_hwpx,
    make_mail,
    make_pdf,
    make_pptx,
    make_xlsx,
    make_zip,
)

SAMPLE = "주민등록번호 800101-1234560\n카드번호 4111-1111-1111-1111"


def read(name: str, data: bytes, **limits: object) -> list[Location | Unreadable]:
    return attachment_locations(name, data, Budget(ExtractLimits(**limits)))  # type: ignore[arg-type]


def text_of(found: list[Location | Unreadable]) -> str:
    assert not [f for f in found if isinstance(f, Unreadable)], found
    return "\n".join(f.text for f in found if isinstance(f, Location))


def reasons(found: list[Location | Unreadable]) -> list[str]:
    return [f.reason for f in found if isinstance(f, Unreadable)]


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("a.txt", lambda t: t.encode()),
        ("a.csv", lambda t: t.replace(" ", ",").encode("cp949")),
        ("utf16.txt", lambda t: t.encode("utf-16")),
        (
            "page.html",
            lambda t: f"<html><body><p>{t}</p><script>x=1</script></body></html>".encode(),
        ),
        ("a.pdf", make_pdf),
        ("a.docx", make_docx),
        ("a.pptx", make_pptx),
        ("a.hwpx", make_hwpx),
        ("a.hwp", make_hwp),
        ("plain.hwp", lambda t: make_hwp(t, compressed=False)),
        ("noext", lambda t: t.encode()),
    ],
)
def test_text_of_each_kind(name: str, make: object) -> None:
    found = read(name, make(SAMPLE))  # type: ignore[operator]
    text = text_of(found).replace(",", " ")
    assert "800101-1234560" in text
    assert "4111-1111-1111-1111" in text
    assert {f.where for f in found} == {f"attachment:{name}"}


def test_xlsx_cells_rows_and_numbers() -> None:
    data = make_xlsx(
        [["이름", "주민번호"], ["홍길동", "800101-1234560"], ["김철수", 8001011234560]]
    )
    text = text_of(read("a.xlsx", data))
    assert "홍길동\t800101-1234560" in text
    assert "김철수\t8001011234560" in text


def test_hwp_long_paragraph_uses_extended_record_size() -> None:
    long_text = "가" * 3000 + " 800101-1234560"
    assert "800101-1234560" in text_of(read("long.hwp", make_hwp(long_text)))


def test_hwp_password_is_unreadable_but_preview_is_read() -> None:
    found = read("secret.hwp", make_hwp(SAMPLE, password=True, preview="미리보기 800101-1234560"))
    assert reasons(found) == ["encrypted"]
    assert any(isinstance(f, Location) and "800101-1234560" in f.text for f in found)


def test_zip_recursion_names_every_member() -> None:
    inner = make_zip({"deep/list.csv": "이름,주민번호\n홍,800101-1234560".encode("cp949")})
    outer = make_zip(
        {"report.docx": make_docx(SAMPLE), "more.zip": inner, "photo.png": b"\x89PNG\r\n\x1a\n\0\0"}
    )
    found = read("all.zip", outer)
    wheres = [f.where for f in found]
    assert "attachment-name:all.zip/more.zip/deep/list.csv" in wheres
    assert "attachment:all.zip/more.zip/deep/list.csv" in wheres
    assert "attachment:all.zip/report.docx" in wheres
    assert "attachment:all.zip/photo.png" not in wheres  # images carry no text
    assert "800101-1234560" in text_of(found)


def test_nesting_deeper_than_limit_is_unreadable() -> None:
    data = b"800101-1234560"
    for level in range(4):
        data = make_zip({f"level{level}.zip" if level else "x.txt": data})
    assert "too-deep" in reasons(read("nest.zip", data, max_depth=2))
    assert "too-deep" not in reasons(read("nest.zip", data, max_depth=5))


def test_zip_bomb_is_refused() -> None:
    bomb = make_zip({"zeros.txt": b"\0" * (8 * MIB)})
    assert len(bomb) < 64 * 1024
    assert reasons(read("bomb.zip", bomb)) == ["zip-bomb"]


def test_too_many_files() -> None:
    data = make_zip({f"f{i}.txt": b"x" for i in range(30)})
    found = read("many.zip", data, max_files=10)
    assert reasons(found) == ["too-many-files"]


def test_file_too_big() -> None:
    assert reasons(read("big.txt", b"a" * 2048, max_file_bytes=1024)) == ["too-big"]


def test_total_unpacked_budget() -> None:
    data = make_zip({f"f{i}.txt": bytes(range(256)) * 40 for i in range(5)})
    assert "too-big" in reasons(read("sum.zip", data, max_unpacked_bytes=30_000))


def test_encrypted_zip_member() -> None:
    data = make_zip(
        {"secret.xlsx": b"x" * 100, "open.txt": b"800101-1234560"}, encrypted_names=("secret.xlsx",)
    )
    found = read("enc.zip", data)
    assert reasons(found) == ["encrypted"]
    assert "800101-1234560" in "\n".join(f.text for f in found if isinstance(f, Location))


def test_encrypted_pdf() -> None:
    assert reasons(read("locked.pdf", make_encrypted_pdf(SAMPLE))) == ["encrypted"]


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("broken.zip", b"PK\x03\x04" + b"\x01" * 200),
        ("broken.pdf", b"%PDF-1.7\n" + b"\x00garbage" * 50),
        ("broken.hwp", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 600),
        ("broken.docx", make_zip({"word/document.xml": b"<w:document><w:p>unclosed"})),
    ],
)
def test_corrupt_files(name: str, data: bytes) -> None:
    assert reasons(read(name, data)) == ["corrupt"]


def test_xml_with_doctype_is_refused() -> None:
    laughs = (
        b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<w:document xmlns:w='x'><w:p><w:t>&b;</w:t></w:p></w:document>"
    )
    external = b'<?xml version="1.0"?><!DOCTYPE d SYSTEM "file:///etc/passwd"><d>&x;</d>'
    for body in (laughs, external):
        found = read("evil.docx", make_zip({"word/document.xml": body}))
        assert reasons(found) == ["corrupt"]
        assert "document type" in found[0].detail  # type: ignore[union-attr]


def test_legacy_office_and_foreign_archives_are_reported() -> None:
    legacy = build_cfb({"WordDocument": b"\0" * 100})
    assert reasons(read("old.doc", legacy)) == ["unsupported-format"]
    assert reasons(read("a.7z", b"7z\xbc\xaf\x27\x1c" + b"\0" * 40)) == ["unsupported-format"]
    assert reasons(read("a.egg", b"EGGA" + b"\0" * 40)) == ["unsupported-format"]


def test_time_limit_with_a_fake_clock() -> None:
    ticks = itertools.count(0.0, 5.0)
    budget = Budget(ExtractLimits(max_seconds=12.0), clock=lambda: next(ticks))
    data = make_zip({f"f{i}.txt": b"x" for i in range(10)})
    found = attachment_locations("slow.zip", data, budget)
    assert "timeout" in reasons(found)
    assert len([f for f in found if isinstance(f, Unreadable)]) == 1  # stops at the first


def test_binary_file_yields_nothing() -> None:
    assert read("photo.png", b"\x89PNG\r\n\x1a\n" + b"\0\1\2" * 100) == []


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.sampled_from(
        [b"", b"PK\x03\x04", b"%PDF-1.4\n", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", b"PK\x05\x06"]
    ),
    body=st.binary(max_size=2048),
    name=st.sampled_from(["a.bin", "a.txt", "a.html", "a.hwp", "a.zip"]),
)
def test_any_bytes_give_text_or_a_named_reason(prefix: bytes, body: bytes, name: str) -> None:
    for item in read(name, prefix + body):
        assert isinstance(item, (Location, Unreadable))
        if isinstance(item, Unreadable):
            assert item.reason in UNREADABLE_REASONS


def test_html_text_and_attributes() -> None:
    from mailsafe.extract.text import html_to_text

    html = (
        "<style>p{}</style><p>주민 &amp; <b>8001</b>01-1234560</p><img alt='카드 4111' src=x>"
        "<table><tr><td>a</td><td>b</td></tr></table><script>var x = 1</script>끝"
    )
    assert html_to_text(html) == "\n주민 & 800101-1234560\n 카드 4111 \n\na\tb\t\n\n끝"


@pytest.mark.parametrize(
    "piece",
    ["<script>", "<a title=x ", "<", "<a ", "<p", '<a title="', "</td", "<style>x</scrip", "<!--",
     "<!-- -- >", "<script>--></script", '<a href="', "<a href=", "data:", "data:a/b;x;",
     "href=data:,%"],
)  # fmt: skip
def test_html_hostile_markup_stays_linear(piece: str) -> None:
    import time

    from mailsafe.extract.datauri import data_uri_files
    from mailsafe.extract.text import html_to_text, html_unseen_text

    started = time.process_time()
    html_to_text(piece * 100_000)
    html_unseen_text(piece * 100_000)
    data_uri_files(piece * 100_000)
    # Linear passes take well under a second; a quadratic one would take minutes.
    assert time.process_time() - started < 5.0


def test_hwpx_text_after_an_inline_tab_or_line_break_is_read() -> None:
    # HWPX puts tabs and line breaks inside hp:t; what follows them is the child's tail.
    section = (
        b'<?xml version="1.0" encoding="UTF-8"?>'
        b'<hs:sec xmlns:hs="urn:hs" xmlns:hp="urn:hp"><hp:p><hp:run>'
        b"<hp:t>name<hp:tab/>800101-1234567<hp:lineBreak/>card 4111-1111-1111-1111</hp:t>"
        b"</hp:run></hp:p></hs:sec>"
    )
    text = xml_text(section)
    assert "name\t800101-1234567\ncard 4111-1111-1111-1111" in text
    assert [f.type for f in detect(text)] == ["rrn", "credit_card"]


def _tar(files: dict[str, bytes], mode: str = "w") -> bytes:
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:  # type: ignore[call-overload]
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "pack", "place"),
    [
        ("list.csv.gz", lambda d: __import__("gzip").compress(d), "list.csv.gz/list.csv"),
        ("list.csv.bz2", lambda d: __import__("bz2").compress(d), "list.csv.bz2/list.csv"),
        ("list.csv.xz", lambda d: __import__("lzma").compress(d), "list.csv.xz/list.csv"),
        ("list.tar", lambda d: _tar({"d/list.csv": d}), "list.tar/d/list.csv"),
        ("list.tgz", lambda d: _tar({"list.csv": d}, "w:gz"), "list.tgz/list.tar/list.csv"),
        ("x.tar.xz", lambda d: _tar({"list.csv": d}, "w:xz"), "x.tar.xz/x.tar/list.csv"),
        ("noext", lambda d: _tar({"list.csv": d}, "w:bz2"), "noext/noext/list.csv"),
    ],
)
def test_compressed_files_and_tar_archives_are_read(name: str, pack: object, place: str) -> None:
    found = read(name, pack(SAMPLE.encode()))  # type: ignore[operator]
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts[f"attachment:{place}"]
    assert not reasons(found)


def test_every_gzip_member_is_read() -> None:
    import gzip

    data = gzip.compress(b"first member\n") + gzip.compress(SAMPLE.encode())
    assert "800101-1234560" in text_of(read("two.csv.gz", data))


def test_compressed_bombs_truncation_and_unopened_formats_are_unreadable() -> None:
    import gzip
    import lzma

    ratio_bomb = gzip.compress(b"\0" * (8 * MIB))
    assert reasons(read("zeros.gz", ratio_bomb)) == ["zip-bomb"]
    big = lzma.compress(b"\0" * (3 * MIB))
    assert reasons(read("zeros.xz", big, max_file_bytes=2 * MIB)) == ["too-big"]
    assert reasons(read("cut.gz", gzip.compress(SAMPLE.encode() * 50)[:60])) == ["corrupt"]
    assert reasons(read("a.tar", b"\0" * 100 + b"not a tar" * 100)) == ["corrupt"]
    for name, magic in (("a.zst", b"\x28\xb5\x2f\xfd"), ("a.cab", b"MSCF"), ("a.Z", b"\x1f\x9d")):
        assert reasons(read(name, magic + b"\0" * 64)) == ["unsupported-format"]


def test_tar_members_count_against_the_limits() -> None:
    many = _tar({f"f{i}.txt": b"x" for i in range(30)})
    assert reasons(read("many.tar", many, max_files=10)) == ["too-many-files"]
    nested = _tar({"inner.tgz": _tar({"x.txt": b"800101-1234560"}, "w:gz")})
    assert "too-deep" in reasons(read("nest.tar", nested, max_depth=2))
    assert "too-deep" not in reasons(read("nest.tar", nested, max_depth=4))


def test_uuencoded_blocks_in_a_text_body_are_read_as_attachments() -> None:
    import binascii

    from mailsafe.extract import extract_locations
    from mailsafe.mime import parse_message

    data = SAMPLE.encode()
    lines = b"".join(binascii.b2a_uu(data[i : i + 45]) for i in range(0, len(data), 45))
    body = "Hello,\n\nbegin 644 list.csv\n" + lines.decode() + "`\nend\n\nbye\n"
    found = extract_locations(parse_message(make_mail(text=body)))
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert texts["attachment-name:list.csv"] == "list.csv"
    assert "800101-1234560" in texts["attachment:list.csv"]
    assert "800101-1234560" not in texts["body.text"]  # encoded there, unreadable to the scan


def _mail_locations(**mail: object) -> dict[str, str]:
    from mailsafe.extract import extract_locations
    from mailsafe.mime import parse_message

    found = extract_locations(parse_message(make_mail(**mail)))  # type: ignore[arg-type]
    assert not reasons(found), found
    return {f.where: f.text for f in found if isinstance(f, Location)}


def test_files_in_data_uris_of_the_html_body_are_read() -> None:
    """A link or picture carrying a file as a data: URI: base64, percent-encoded, in CSS."""
    csv = base64.b64encode(SAMPLE.encode("cp949")).decode()
    sheet = base64.b64encode(make_xlsx([["이름", "900101-1234568"]])).decode()
    html = (
        f'<a href="data:text/csv;charset=cp949;base64,{csv}">명단</a>'
        f"<a href='data:application/vnd.ms-excel;base64,{sheet}'>표</a>"
        '<a href="data:,%EC%A3%BC%EB%AF%BC%20750101-2345678">메모</a>'
        '<div style="background:url(data:text/plain;base64,NjAwMTAxLTEyMzQ1Njc=)">x</div>'
    )
    texts = _mail_locations(text="본문", html=html)
    assert "800101-1234560" in texts["attachment:body.html/data-1.csv"]
    assert "900101-1234568" in texts["attachment:body.html/data-2.xls"]
    assert "750101-2345678" in texts["attachment:body.html/data-3.txt"]
    assert "600101-1234567" in texts["attachment:body.html/data-4.txt"]
    assert "800101-1234560" not in texts["body.html"]  # the link text is all a reader sees


def test_data_uris_of_an_html_attachment_are_read_as_its_members() -> None:
    csv = base64.b64encode(SAMPLE.encode()).decode()
    page = f'<html><body><img src="data:text/csv;base64,{csv}"></body></html>'.encode()
    found = read("page.html", page)
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:page.html/data-1.csv"]
    assert texts["attachment-name:page.html/data-1.csv"] == "data-1.csv"


def test_broken_and_endless_data_uris_are_refused_not_crashed_on() -> None:
    from mailsafe.extract import extract_locations
    from mailsafe.extract.datauri import MAX_DATA_URIS, data_uri_files
    from mailsafe.mime import parse_message

    broken = data_uri_files('<img src="data:image/png;base64,!!!@@@"><a href="data:;base64,QQ">')
    assert [name for name, _ in broken.files] == ["data-1.png", "data-2.txt"]
    assert broken.files[1][1] == b"A"  # unpadded base64 decodes as browsers do
    many = '<img src="data:image/gif;base64,R0lGODlh">' * (MAX_DATA_URIS + 3)
    found = extract_locations(parse_message(make_mail(text=None, html=many)))
    assert [(f.where, f.reason) for f in found if isinstance(f, Unreadable)] == [
        ("body.html", "too-many-files")
    ]


def _pdf_with_hidden_places() -> bytes:
    from mailsafe.mupdf import pymupdf

    document = pymupdf.open()
    for _ in range(2):
        document.new_page().insert_text((72, 72), "page text")
    document[0].add_text_annot((100, 100), "메모 800101-1234560")
    document.embfile_add("명단.xlsx", make_xlsx([["이름", "900101-1234568"]]), filename="명단.xlsx")
    document.set_metadata({"title": "목록 4111-1111-1111-1111"})
    data: bytes = document.tobytes()
    return data


def test_a_pdf_is_read_with_its_notes_information_and_embedded_files() -> None:
    found = read("report.pdf", _pdf_with_hidden_places())
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:report.pdf"]  # the sticky note
    assert "4111-1111-1111-1111" in texts["attachment:report.pdf"]  # the document title
    assert texts["attachment-name:report.pdf/명단.xlsx"] == "명단.xlsx"
    assert "900101-1234568" in texts["attachment:report.pdf/명단.xlsx"]
    assert not reasons(found)


def test_pdf_pages_past_the_limit_and_embedded_files_count_against_the_limits() -> None:
    data = _pdf_with_hidden_places()
    assert reasons(read("report.pdf", data, max_pdf_pages=1)) == ["too-big"]
    assert reasons(read("report.pdf", data, max_depth=0)) == ["too-deep"]


def _with_member(container: bytes, name: str, data: bytes) -> bytes:
    """``container`` (a ZIP-based document) with one more member."""
    import io
    import zipfile

    buffer = io.BytesIO(container)
    with zipfile.ZipFile(buffer, "a") as archive:
        archive.writestr(name, data)
    return buffer.getvalue()


def test_office_properties_comments_and_embedded_files_are_read() -> None:
    import io

    import docx
    import openpyxl
    from openpyxl.comments import Comment

    document = docx.Document()
    document.add_paragraph("본문")
    document.core_properties.title = "목록 800101-1234560"
    saved = io.BytesIO()
    document.save(saved)
    sheet = make_xlsx([["이름", "900101-1234568"]])
    word = _with_member(saved.getvalue(), "word/embeddings/Microsoft_Excel_Worksheet.xlsx", sheet)
    found = read("report.docx", word)
    texts = {f.where: f.text for f in found if isinstance(f, Location)}
    assert "800101-1234560" in texts["attachment:report.docx"]  # the document's title
    embedded = "report.docx/word/embeddings/Microsoft_Excel_Worksheet.xlsx"
    assert "900101-1234568" in texts[f"attachment:{embedded}"]
    assert not reasons(found)

    workbook = openpyxl.Workbook()
    workbook.active["A1"] = "이름"
    workbook.active["A1"].comment = Comment("4111-1111-1111-1111", "kim")
    saved = io.BytesIO()
    workbook.save(saved)
    assert "4111-1111-1111-1111" in text_of(read("book.xlsx", saved.getvalue()))


def test_data_cached_in_a_pivot_table_is_read() -> None:
    """A pivot table keeps a copy of its source rows in the file, even after the sheet
    holding them is deleted."""
    records = (
        b'<?xml version="1.0" encoding="UTF-8"?><pivotCacheRecords '
        b'xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        b'<r><s v="\xed\x99\x8d\xea\xb8\xb8\xeb\x8f\x99"/><s v="800101-1234560"/></r>'
        b"</pivotCacheRecords>"
    )
    book = _with_member(make_xlsx([["합계"]]), "xl/pivotCache/pivotCacheRecords1.xml", records)
    text = text_of(read("pivot.xlsx", book))
    assert "800101-1234560" in text
    assert "홍길동" in text


# ---- words stored in pictures ------------------------------------------------------------------


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _picture(kind: str, **save: object) -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (8, 8), "white").save(out, format=kind, **save)
    return out.getvalue()


def _exif(**tags: object) -> bytes:
    from PIL import Image

    exif = Image.Exif()
    for tag, value in tags.items():
        exif[int(tag[1:], 16)] = value
    return exif.tobytes()


def test_words_in_a_jpeg_exif_and_comment_are_read() -> None:
    from PIL import Image

    exif = Image.Exif()
    exif[0x010E] = "고객 800101-1234560"  # ImageDescription
    exif[0x9C9C] = "메모 900101-1234568".encode("utf-16-le")  # XPComment
    exif.get_ifd(0x8769)[0x9286] = b"UNICODE\0" + "카드 4111-1111-1111-1111".encode("utf-16")
    data = _picture("JPEG", exif=exif.tobytes(), comment="주민 750101-2345678".encode())
    text = text_of(read("photo.jpg", data))
    for value in ("800101-1234560", "900101-1234568", "4111-1111-1111-1111", "750101-2345678"):
        assert value in text


def test_words_in_png_text_chunks_before_and_after_the_pixels_are_read() -> None:
    import zlib

    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Description", "고객 800101-1234560")
    info.add_text("Comment", "메모 900101-1234568", zip=True)
    data = _picture("PNG", pnginfo=info)
    late = (
        _png_chunk(b"iTXt", b"Author\0\1\0ko\0\xec\x9e\x91\xec\x84\xb1\xec\x9e\x90\0"
                   + zlib.compress("카드 4111-1111-1111-1111".encode()))
        + _png_chunk(b"eXIf", _exif(x010E="주민 750101-2345678"))
        + _png_chunk(b"tEXt", b"Raw profile type exif\0" + b"80010112345600" * 4)
    )  # fmt: skip
    end = data.rindex(b"IEND") - 4
    text = text_of(read("scan.png", data[:end] + late + data[end:]))
    for value in ("800101-1234560", "900101-1234568", "4111-1111-1111-1111", "750101-2345678"):
        assert value in text
    assert "작성자" in text  # the translated keyword of the iTXt chunk
    assert "80010112345600" not in text  # ImageMagick's hex dumps are not words


def test_words_in_gif_and_webp_pictures_are_read() -> None:
    gif = _picture("GIF", comment="주민 800101-1234560".encode())
    assert "800101-1234560" in text_of(read("a.gif", gif))
    webp = _picture("WEBP", exif=_exif(x013B="900101-1234568"))
    assert "900101-1234568" in text_of(read("a.webp", webp))


def test_a_picture_without_words_holds_no_text() -> None:
    assert read("blank.png", _picture("PNG")) == []
    assert read("blank.jpg", _picture("JPEG")) == []


def test_hostile_pictures_are_refused_not_crashed_on() -> None:
    import struct
    import zlib

    png = _picture("PNG")
    end = png.rindex(b"IEND") - 4
    bomb = _png_chunk(b"zTXt", b"Comment\0\0" + zlib.compress(b"0" * (9 << 20)))
    assert reasons(read("bomb.png", png[:end] + bomb + png[end:])) == ["too-big"]
    # Broken metadata is skipped like the pixels: the words before the break are read.
    words = _png_chunk(b"tEXt", b"Comment\0800101-1234560")
    broken = _png_chunk(b"zTXt", b"Comment\0\0not zlib at all")
    assert text_of(read("broken.png", png[:end] + words + broken + png[end:])) == "800101-1234560"
    assert read("cut.png", png[:40]) == []  # a chunk cut short
    assert read("garbage.jpg", b"\xff\xd8\xff" + b"\x00" * 200) == []
    jpeg = bytearray(_picture("JPEG"))
    sof = jpeg.index(b"\xff\xc0")
    jpeg[sof + 5 : sof + 9] = struct.pack(">HH", 60000, 60000)  # 3.6 gigapixels declared
    assert reasons(read("huge.jpg", bytes(jpeg))) == ["too-big"]
    endless = png[:8] + _png_chunk(b"tEXt", b"a\0b") * 10_001
    assert text_of(read("endless.png", endless)) == "\n".join(["b"] * 10_000)
