"""Documents become readable pages: the real documents of ../shared/documents (their known
words found by OCR of the pages), and documents of our own in every office format (their
words in the PDF the sandbox made, and drawn as pages)."""

from __future__ import annotations

import io
import subprocess
import zipfile
from pathlib import Path

import pytest
from PIL import Image

from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_text
from mailsafe.mupdf import pymupdf
from mailsafe.office.converter import MIB, ConverterLimits, OfficeConverter
from mailsafe.render import RenderOptions, render_message
from tests.support.documents import make_mail, make_xlsx

DOCUMENTS = Path(__file__).resolve().parents[4] / "shared" / "documents"
# The README's known words of each document.
KNOWN_WORDS = {
    "basics-report.hwp": ["리포트의", "담당교수", "2000112345"],
    "viewtext.hwp": ["pyhwp", "배포", "예제입니다"],
    "headerfooter.hwp": ["머리말입니다", "꼬리말입니다", "페이지"],
    "charshape.hwp": ["기울임진하게", "글자크기", "붉은밑줄"],
    "울산남구_입법예고.hwpx": ["울산광역시", "남구청장", "2021-174"],
    "인사혁신처_모집공고.hwpx": ["인사혁신처", "국민참여정책단", "2023"],
    "sample-table-header.docx": ["HAMSTER", "5318", "연체이자"],
    "sample-two-sheets.xlsx": ["PEACOCK", "6427", "예적금현황"],
    "sample-two-slides.pptx": ["CHAMELEON", "7539", "카드발급"],
    "sample-converted.odt": ["ANTEATER", "8642", "퇴직연금"],
    "sample-legacy.doc": ["WOLVERINE", "9751", "자동이체"],
    "sample-legacy.xls": ["MEERKAT", "1864", "보험계약"],
}
OCR = ExtractLimits(ocr_languages="kor+eng", ocr_max_pictures=100, ocr_max_seconds=300.0,
                    ocr_max_pixels=20_000_000)  # fmt: skip


def _ocr(page: bytes, scale: int) -> str:
    """Tesseract's reading of a page; at ``scale`` > 1 the pixels are enlarged first
    (Tesseract misses small Hangul at screen size; enlarging adds no information)."""
    if scale > 1:
        image = Image.open(io.BytesIO(page))
        image = image.resize((image.width * scale, image.height * scale), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, "PNG")
        page = out.getvalue()
    return " ".join(picture_text(page, Budget(OCR)).split())


def _missing_words(pages: list[bytes], words: list[str]) -> list[str]:
    missing = list(words)
    for scale in (1, 2):
        text = " ".join(_ocr(page, scale) for page in pages)
        missing = [word for word in missing if word not in text]
        if not missing:
            break
    return missing


@pytest.mark.parametrize("name", sorted(KNOWN_WORDS))
def test_real_documents_render_with_their_known_words_readable(
    name: str, converter: OfficeConverter
) -> None:
    raw = make_mail(attachments=[(name, (DOCUMENTS / name).read_bytes())])
    rendered = render_message(raw, RenderOptions(), converter)
    pages = [
        image
        for image, info in zip(rendered.images, rendered.manifest.pages, strict=True)
        if info.source == f"attachment:{name}"
    ]
    assert pages, rendered.manifest
    assert rendered.manifest.withheld == ()
    assert _missing_words(pages, KNOWN_WORDS[name]) == []


def test_a_password_protected_hwp_is_withheld_as_encrypted() -> None:
    name = "password-12345.hwp"
    raw = make_mail(attachments=[(name, (DOCUMENTS / name).read_bytes())])
    rendered = render_message(raw, RenderOptions())
    assert [(w.filename, w.reason) for w in rendered.manifest.withheld] == [(name, "encrypted")]


# --------------------------------------------------------------------------- our own documents

WORDS = ["KANGAROO", "4821", "연말정산"]
SLIDE = (
    '<?xml version="1.0" encoding="UTF-8"?><office:document'
    ' xmlns:office="urn:oasis:names:tc:opendocument:xmlns:office:1.0"'
    ' xmlns:draw="urn:oasis:names:tc:opendocument:xmlns:drawing:1.0"'
    ' xmlns:text="urn:oasis:names:tc:opendocument:xmlns:text:1.0"'
    ' xmlns:svg="urn:oasis:names:tc:opendocument:xmlns:svg-compatible:1.0" office:version="1.3"'
    ' office:mimetype="application/vnd.oasis.opendocument.presentation">'
    "<office:body><office:presentation>{pages}</office:presentation></office:body>"
    "</office:document>"
)
SLIDE_PAGE = (
    '<draw:page draw:name="p{n}"><draw:frame svg:x="2cm" svg:y="2cm" svg:width="20cm"'
    ' svg:height="3cm"><draw:text-box><text:p>{text}</text:p></draw:text-box></draw:frame>'
    "</draw:page>"
)
# Target extension -> LibreOffice's export filter, and the source it is made from.
MADE_BY_LIBREOFFICE = {
    "doc": ("MS Word 97", "docx"), "odt": ("writer8", "docx"), "rtf": ("Rich Text Format", "docx"),
    "xls": ("MS Excel 97", "xlsx"), "ods": ("calc8", "xlsx"),
    "pptx": ("Impress MS PowerPoint 2007 XML", "fodp"), "ppt": ("MS PowerPoint 97", "fodp"),
    "odp": ("impress8", "fodp"),
}  # fmt: skip
# The macro-enabled variants: the same package, its main part declared macro-enabled.
MACRO_VARIANTS = {
    "docm": ("docx", "openxmlformats-officedocument.wordprocessingml.document.main+xml",
             "ms-word.document.macroEnabled.main+xml"),
    "xlsm": ("xlsx", "openxmlformats-officedocument.spreadsheetml.sheet.main+xml",
             "ms-excel.sheet.macroEnabled.main+xml"),
    "pptm": ("pptx", "openxmlformats-officedocument.presentationml.presentation.main+xml",
             "ms-powerpoint.presentation.macroEnabled.main+xml"),
}  # fmt: skip


def _docx() -> bytes:
    import docx

    document = docx.Document()
    document.add_heading("시험 문서 TEST DOCUMENT", 1)
    table = document.add_table(rows=2, cols=3)
    for cell, word in zip(table.rows[1].cells, WORDS, strict=True):
        cell.text = word
    out = io.BytesIO()
    document.save(out)
    return out.getvalue()


def _xlsx() -> bytes:
    """Two sheets, the words on the second; the first 40 columns wide."""
    import openpyxl

    workbook = openpyxl.load_workbook(io.BytesIO(make_xlsx([[f"C{i}" for i in range(40)]])))
    sheet = workbook.create_sheet("명세")
    sheet.append(WORDS)
    for column in "ABC":  # wide enough that no format's default width clips a word
        sheet.column_dimensions[column].width = 20
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


def _fodp() -> bytes:
    pages = SLIDE_PAGE.format(n=1, text="첫 장 FIRST") + SLIDE_PAGE.format(
        n=2, text=" ".join(WORDS)
    )
    return SLIDE.format(pages=pages).encode()


def _macro_variant(data: bytes, old: str, new: str) -> bytes:
    source = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for name in source.namelist():
            content = source.read(name)
            if name == "[Content_Types].xml":
                content = content.replace(f"/vnd.{old}".encode(), f"/vnd.{new}".encode())
            target.writestr(name, content)
    return out.getvalue()


@pytest.fixture(scope="session")
def own_documents(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """One document of every office format, made by python-docx/openpyxl, by hand (a flat
    ODF presentation), and by LibreOffice itself from those (a bare soffice per format)."""
    folder = tmp_path_factory.mktemp("office")
    sources = {"docx": _docx(), "xlsx": _xlsx(), "fodp": _fodp()}
    for kind, data in sources.items():
        (folder / f"own.{kind}").write_bytes(data)
    made = {"docx": sources["docx"], "xlsx": sources["xlsx"]}
    for target, (export_filter, source) in MADE_BY_LIBREOFFICE.items():
        subprocess.run(
            ["soffice", "--headless", f"-env:UserInstallation=file://{folder}/profile",
             "--convert-to", f"{target}:{export_filter}", "--outdir", str(folder / target),
             str(folder / f"own.{source}")],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        made[target] = (folder / target / f"own.{target}").read_bytes()
    for variant, (base, old, new) in MACRO_VARIANTS.items():
        made[variant] = _macro_variant(made[base], old, new)
    return made


ALL_FORMATS = ["docx", "docm", "xlsx", "xlsm", "pptx", "pptm", "doc", "xls", "ppt", "odt",
               "ods", "odp", "rtf"]  # fmt: skip


@pytest.mark.parametrize("kind", ALL_FORMATS)
def test_own_documents_of_every_format_become_pages_with_their_words(
    kind: str, own_documents: dict[str, bytes], converter: OfficeConverter
) -> None:
    data = own_documents[kind]
    with pymupdf.open(stream=converter.convert(data, kind), filetype="pdf") as pdf:
        text = " ".join(page.get_text() for page in pdf)
    assert [word for word in WORDS if word not in text] == []
    raw = make_mail(attachments=[(f"문서.{kind}", data)])
    rendered = render_message(raw, RenderOptions(), converter)
    assert rendered.manifest.withheld == ()
    assert any(page.source == f"attachment:문서.{kind}" for page in rendered.manifest.pages)


def test_one_sandbox_converts_every_format_with_its_words_well_inside_its_memory(
    own_documents: dict[str, bytes],
) -> None:
    """LibreOffice's address space follows the documents, not the host's CPUs (one arena per
    thread made a warm sandbox peak at 1008 of its 1024 MiB, and near the limit it left the
    Korean words out of the PDF without an error). At 640 MiB every format, in one sandbox."""
    limits = ConverterLimits(memory_bytes=640 * MIB)
    with OfficeConverter(limits) as small:
        for kind in ALL_FORMATS:
            with pymupdf.open(stream=small.convert(own_documents[kind], kind)) as pdf:
                text = " ".join(page.get_text() for page in pdf)
            assert [word for word in WORDS if word not in text] == [], kind
        assert small.started == 1


def test_every_sheet_is_drawn_and_a_wide_sheet_fits_one_page_across(
    own_documents: dict[str, bytes], converter: OfficeConverter
) -> None:
    """40 columns on sheet 1 would be several pages of a few columns each; fitted, the
    workbook is one page per sheet, and the second sheet is there too."""
    with pymupdf.open(stream=converter.convert(own_documents["xlsx"], "xlsx")) as pdf:
        texts = [page.get_text() for page in pdf]
    assert len(texts) == 2
    assert "C0" in texts[0]
    assert "C39" in texts[0]
    assert "KANGAROO" in texts[1]
