"""Text of Office Open XML (docx, xlsx, pptx) and HWPX documents, read with zipfile + XML.

All four keep their text in elements whose local name is ``t`` (``w:t``, ``a:t``, ``hp:t``,
shared strings' ``t``), grouped into paragraphs (``p``) or spreadsheet rows and cells. XML
with a document type declaration is refused before parsing: these formats never need one,
and it is how entity-expansion and external-entity attacks start.
"""

from __future__ import annotations

import io
import posixpath
import re
import xml.etree.ElementTree as ET  # DOCTYPE is refused before any parse (see _events)
import zipfile
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Final

from mailsafe.errors import HostileInput
from mailsafe.extract.archive import read_member
from mailsafe.extract.limits import Budget

# UTF-16 XML (NUL bytes in the first 4 KiB) is refused so the DOCTYPE check cannot be evaded.
_PROLOG_BYTES: Final = 4096
_CELL_TEXT_TAGS: Final = frozenset({"t", "v"})  # a cell's value, or its inline string
# Text runs; and in Word, deleted text (shown struck through while changes are tracked, and
# kept in the file until they are accepted) and field codes (shown with Alt+F9).
_RUN_TEXT_TAGS: Final = frozenset({"t", "delText", "instrText"})
_BREAK_TAGS: Final = frozenset({"p", "si", "row", "br", "tr"})
_CELL_TAGS: Final = frozenset({"c", "tab", "tc"})
# Line breaks written inside a text run (HWPX) rather than between paragraphs.
_INLINE_BREAKS: Final = frozenset({"br", "lineBreak"})

# Which members of each container hold text worth scanning.
# Besides the body: comments, notes, the data cached in charts and pivot tables, and the
# document properties (title, author, custom fields), which all leave with the file.
_PROPERTIES: Final = r"|docProps/(?:core|app|custom)\.xml"
PARTS: Final[dict[str, re.Pattern[str]]] = {
    "docx": re.compile(
        r"word/(document|header\d*|footer\d*|footnotes|endnotes|comments\w*|charts/chart\d+)"
        r"\.xml" + _PROPERTIES
    ),
    "pptx": re.compile(
        r"ppt/((slides/slide|notesSlides/notesSlide|charts/chart)\d+|comments/[^/]+)\.xml"
        + _PROPERTIES
    ),
    "xlsx": re.compile(
        r"xl/(sharedStrings|worksheets/sheet\d+|comments/?comment\d+|comments\d+"
        r"|threadedComments/threadedComment\d+"
        r"|pivotCache/pivotCacheRecords\d+|charts/chart\d+|externalLinks/externalLink\d+)\.xml"
        + _PROPERTIES
    ),
    "hwpx": re.compile(r"Contents/section\d+\.xml|Preview/PrvText\.txt"),
}
# OpenDocument: the body, the styles (headers and footers live there), the properties.
_ODF_PARTS: Final = ("content.xml", "styles.xml", "meta.xml")
_ODF_PARAGRAPHS: Final = frozenset({"p", "h"})
_ODF_SPACES_COUNT: Final = "{urn:oasis:names:tc:opendocument:xmlns:text:1.0}c"
_ODF_MAX_SPACES: Final = 100  # <text:s text:c="99999"/> is no reason to build a long string
_CONTENT_TYPES: Final = "[Content_Types].xml"
_MAIN_PARTS: Final = (
    ("docx", "word/document.xml"),
    ("xlsx", "xl/workbook.xml"),
    ("pptx", "ppt/presentation.xml"),
)
_WORD_RELS: Final = re.compile(r"word/_rels/[^/]+\.rels")
_OOXML: Final = "application/vnd.openxmlformats-officedocument."
# Content types of the main parts, and the kind of package each makes.
_MAIN_PART_KINDS: Final = {
    f"{_OOXML}wordprocessingml.document.main+xml": "docx",
    "application/vnd.ms-word.document.macroenabled.main+xml": "docx",
    f"{_OOXML}spreadsheetml.sheet.main+xml": "xlsx",
    "application/vnd.ms-excel.sheet.macroenabled.main+xml": "xlsx",
    f"{_OOXML}presentationml.presentation.main+xml": "pptx",
}
# Content types of the parts that hold a document's words, and how each is read.
_TEXT_PART_KINDS: Final = {
    **dict.fromkeys(
        (
            f"{_OOXML}wordprocessingml.{part}+xml"
            for part in ("document.main", "header", "footer", "footnotes", "endnotes", "comments")
        ),
        "text",
    ),
    "application/vnd.ms-word.document.macroenabled.main+xml": "text",
    f"{_OOXML}spreadsheetml.worksheet+xml": "sheet",
    f"{_OOXML}spreadsheetml.sharedstrings+xml": "shared",
    f"{_OOXML}spreadsheetml.comments+xml": "text",
    f"{_OOXML}presentationml.slide+xml": "text",
    f"{_OOXML}presentationml.notesslide+xml": "text",
}
# Files embedded in an Office or HWPX document (an Excel sheet inside a Word file, a chart's
# workbook, a screenshot pasted into a report), read as members of it:
# "a.docx/word/embeddings/Microsoft_Excel_Worksheet.xlsx", "a.docx/word/media/image1.png".
EMBEDDED: Final = re.compile(r"(?:(?:word|xl|ppt)/(?:embeddings|media)|BinData)/[^/]+")
# Parts whose words are not in text runs but anywhere, attributes included.
_WORDS_ANYWHERE: Final = re.compile(
    r"docProps/.*|(?:word|xl|ppt)/charts/.*|xl/(?:pivotCache|externalLinks)/.*"
)


def sniff_container(names: list[str], read: ReadMember | None = None) -> str:
    """ "docx", "xlsx", "pptx", "hwpx", "odf", or "zip" for any other archive. A package
    whose main part was renamed is told by its content types (Office opens it all the same)."""
    present = set(names)
    for kind, main_part in _MAIN_PARTS:
        if main_part in present:
            return kind
    if any(name.startswith("Contents/section") for name in names):
        return "hwpx"
    if "content.xml" in present and "mimetype" in present:
        return "odf"
    if read is not None and _CONTENT_TYPES in present:
        kinds = content_types(read(_CONTENT_TYPES)).values()
        return next((_MAIN_PART_KINDS[k] for k in kinds if k in _MAIN_PART_KINDS), "zip")
    return "zip"


def content_types(data: bytes) -> dict[str, str]:
    """Part name (without its leading "/") -> content type, from ``[Content_Types].xml``'s
    overrides."""
    found: dict[str, str] = {}
    for name, element in _events(data):
        if name == "Override":
            part = element.get("PartName", "").lstrip("/")
            found[part] = element.get("ContentType", "").strip().lower()
    return found


def container_text(archive_names: list[str], kind: str, read: ReadMember) -> str:
    if kind == "odf":
        return odf_text(archive_names, read)
    roles = _roles(archive_names, kind, read)
    texts: list[str] = []
    shared: list[str] = []
    # Shared strings first: worksheets refer to them by index.
    ordered = sorted(roles, key=lambda n: (roles[n] != "shared", _natural_key(n)))
    for name in ordered:
        data = read(name)
        role = roles[name]
        if name.endswith(".txt"):
            texts.append(
                data.decode("utf-16-le" if data[:2] == b"\xff\xfe" else "utf-8", "replace")
            )
        elif role == "shared":
            shared = list(_shared_strings(data))
        elif _WORDS_ANYWHERE.fullmatch(name):
            texts.append(all_text(data))
        elif role == "sheet":
            texts.append(_sheet_text(data, shared))
        else:
            texts.append(xml_text(data))
    return "\n".join(texts)


def _roles(archive_names: list[str], kind: str, read: ReadMember) -> dict[str, str]:
    """The parts worth reading and how: by their names, and in Office packages also by
    their content types, so a renamed sheet or main part is read like the usual one."""
    pattern = PARTS[kind]
    declared: dict[str, str] = {}
    if kind in ("docx", "xlsx", "pptx") and _CONTENT_TYPES in archive_names:
        declared = content_types(read(_CONTENT_TYPES))
    roles: dict[str, str] = {}
    for name in archive_names:
        by_type = _TEXT_PART_KINDS.get(declared.get(name, ""))
        if by_type is None and not pattern.fullmatch(name):
            continue
        if by_type is None:
            by_type = "shared" if name == "xl/sharedStrings.xml" else "text"
            if kind == "xlsx" and name.startswith("xl/worksheets/"):
                by_type = "sheet"
        roles[name] = by_type
    return roles


class ReadMember:
    """Reads members of one open archive against the mail's budget."""

    def __init__(self, archive: zipfile.ZipFile, budget: Budget) -> None:
        self._archive = archive
        self._budget = budget

    def __call__(self, name: str) -> bytes:
        return read_member(self._archive, name, self._budget)


_EXPONENT_RE: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?[eE][+-]?[0-9]+")
# Numbers with more digits than this are not read as whole numbers (Excel keeps 15).
_LARGEST_WHOLE_NUMBER: Final = Decimal(10) ** 30
_FORMULA_TOKEN_RE: Final = re.compile(
    r'"((?:[^"]|"")*)"|([0-9]+(?:\.[0-9]+)?)|(\s+|[&,()=]|CONCATENATE|CONCAT)|(.)', re.IGNORECASE
)


def _natural_key(name: str) -> list[object]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def _events(data: bytes) -> Iterator[tuple[str, ET.Element]]:
    """(local name, element) at the end of every element; the element is cleared after use."""
    if b"\0" in data[:_PROLOG_BYTES]:
        raise HostileInput("XML part is not UTF-8 (as these formats write it)", code="corrupt")
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise HostileInput("XML part declares a document type", code="corrupt")
    local_names: dict[str, str] = {}
    try:
        # Safe: no DTD can be declared (checked above), so no entity is expanded or fetched.
        for _, element in ET.iterparse(io.BytesIO(data), events=("end",)):  # noqa: S314
            tag = element.tag
            name = local_names.get(tag)
            if name is None:
                name = local_names[tag] = tag.rsplit("}", 1)[-1]
            yield name, element
    except ET.ParseError as exc:
        raise HostileInput(f"XML part does not parse ({exc})", code="corrupt") from None


def xml_text(data: bytes) -> str:
    """All text of an XML part, a line per paragraph, a tab per cell or tab stop."""
    parts: list[str] = []
    for name, element in _events(data):
        if name in _RUN_TEXT_TAGS:
            parts.append(_run_text(element))
        elif name in _BREAK_TAGS:
            parts.append("\n")
            element.clear()
        elif name in _CELL_TAGS:
            parts.append("\t")
    return "".join(parts)


def all_text(data: bytes) -> str:
    """Every text node and attribute value of an XML part, a line each: for parts whose
    words sit anywhere (document properties, chart and pivot-table caches, external links)."""
    parts: list[str] = []
    for _name, element in _events(data):
        parts += [value for value in element.attrib.values() if value.strip()]
        if element.text and element.text.strip():
            parts.append(element.text)
        element.clear()
    return "\n".join(parts)


def _run_text(run: ET.Element) -> str:
    """A text run with what follows its inline children: HWPX writes tabs and line breaks
    inside ``hp:t`` ("name<hp:tab/>800101-1234567"), and that text is the child's tail."""
    text = run.text or ""
    for child in run:
        name = child.tag.rsplit("}", 1)[-1]
        separator = "\t" if name in _CELL_TAGS else "\n" if name in _INLINE_BREAKS else ""
        text += separator + (child.tail or "")
    return text


def _shared_strings(data: bytes) -> Iterator[str]:
    current: list[str] = []
    for name, element in _events(data):
        if name == "t" and element.text:
            current.append(element.text)
        elif name == "si":
            yield "".join(current)
            current = []
            element.clear()


def _sheet_text(data: bytes, shared: list[str]) -> str:
    """A worksheet as rows of tab-separated cells, shared strings resolved; a formula with
    no value kept is given the value Excel shows for it on opening (see _formula_text)."""
    parts: list[str] = []
    local_names: dict[str, str] = {}  # a sheet has a handful of tags and a million elements
    for name, element in _events(data):
        if name == "c":
            cell_type = element.get("t")
            formula = None
            valued = False
            for sub in element.iter():
                text = sub.text
                if not text:
                    continue
                tag = sub.tag
                local = local_names.get(tag)
                if local is None:
                    local = local_names[tag] = tag.rsplit("}", 1)[-1]
                if local in _CELL_TEXT_TAGS:
                    parts.append(_cell_value(text, cell_type, shared))
                    valued = True
                elif local == "f":
                    formula = text
            if formula is not None and not valued:
                parts.append(_formula_text(formula))
            parts.append("\t")
            element.clear()
        elif name == "row":
            parts.append("\n")
            element.clear()
    return "".join(parts)


def _cell_value(raw: str, cell_type: str | None, shared: list[str]) -> str:
    if cell_type == "s" and raw.isdigit() and int(raw) < len(shared):
        return shared[int(raw)]
    if cell_type in (None, "n") and _EXPONENT_RE.fullmatch(raw):
        return _whole_number(raw)
    return raw


def _whole_number(raw: str) -> str:
    """A number stored in scientific notation ("8.00101123456E+12") written out in digits, as
    Excel shows it in the formula bar ("8001011234560"); a fraction stays as it is."""
    try:
        value = Decimal(raw)
    except InvalidOperation:
        return raw
    if value != value.to_integral_value() or abs(value) >= _LARGEST_WHOLE_NUMBER:
        return raw
    return str(int(value))


def _formula_text(formula: str) -> str:
    """What a formula whose value the file does not keep shows when Excel opens it: a
    concatenation of literals (``"800101-"&"1234560"``, ``CONCATENATE("8001",01)``) is
    worked out; any other formula is read as written, its literals and all."""
    values: list[str] = []
    for token in _FORMULA_TOKEN_RE.finditer(formula):
        text, number, _joiner, other = token.groups()
        if other is not None:
            return formula
        if text is not None:
            values.append(text.replace('""', '"'))
        elif number is not None:
            values.append(number)
    return "".join(values)


def odf_text(archive_names: list[str], read: ReadMember) -> str:
    """The text of an OpenDocument file (odt, ods, odp): its body and its styles' headers and
    footers a paragraph a line, a tab per table cell, and its properties. A paragraph is read
    whole, spans and all: ``800101<text:span>-</text:span>1234560`` reads as the number."""
    texts: list[str] = []
    for name in _ODF_PARTS:
        if name not in archive_names:
            continue
        data = read(name)
        texts.append(all_text(data) if name == "meta.xml" else _odf_part_text(data))
    return "\n".join(texts)


def _odf_part_text(data: bytes) -> str:
    parts: list[str] = []
    for name, element in _events(data):
        if name in _ODF_PARAGRAPHS:
            parts.append(_odf_inline(element) + "\n")
            element.clear()
        elif name == "table-cell":
            parts.append("\t")
        elif name == "table-row":
            parts.append("\n")
    return "".join(parts)


def _odf_inline(element: ET.Element) -> str:
    """The text of an element with its inline children (spans, links, spaces, tabs)."""
    text = element.text or ""
    for child in element:
        name = child.tag.rsplit("}", 1)[-1]
        if name == "s":
            text += " " * min(_odf_count(child.get(_ODF_SPACES_COUNT)), _ODF_MAX_SPACES)
        elif name == "tab":
            text += "\t"
        elif name == "line-break":
            text += "\n"
        else:
            text += _odf_inline(child)
        text += child.tail or ""
    return text


def _odf_count(raw: str | None) -> int:
    return int(raw) if raw and raw.isdigit() and len(raw) < 6 else 1


def alt_chunks(archive_names: list[str], read: ReadMember) -> list[str]:
    """The parts a Word document imports whole with ``w:altChunk`` (an HTML, MHT, RTF, text
    or Word file Word shows inline, under any name): read as files embedded in it."""
    present = set(archive_names)
    found: list[str] = []
    for rels in archive_names:
        if not _WORD_RELS.fullmatch(rels):
            continue
        folder = posixpath.dirname(posixpath.dirname(rels))
        for name, element in _events(read(rels)):
            if name == "Relationship" and element.get("Type", "").endswith("/aFChunk"):
                target = posixpath.normpath(posixpath.join(folder, element.get("Target", "")))
                if target in present and target not in found:
                    found.append(target)
    return found
