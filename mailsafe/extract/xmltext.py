"""Text of Office Open XML (docx, xlsx, pptx) and HWPX documents, read with zipfile + XML.

All four keep their text in elements whose local name is ``t`` (``w:t``, ``a:t``, ``hp:t``,
shared strings' ``t``), grouped into paragraphs (``p``) or spreadsheet rows and cells. XML
with a document type declaration is refused before parsing: these formats never need one,
and it is how entity-expansion and external-entity attacks start.
"""

from __future__ import annotations

import io
import re
import xml.etree.ElementTree as ET  # DOCTYPE is refused before any parse (see _events)
import zipfile
from collections.abc import Iterator
from typing import Final

from mailsafe.errors import HostileInput
from mailsafe.extract.archive import read_member
from mailsafe.extract.limits import Budget

# UTF-16 XML (NUL bytes in the first 4 KiB) is refused so the DOCTYPE check cannot be evaded.
_PROLOG_BYTES: Final = 4096
_CELL_TEXT_TAGS: Final = frozenset({"t", "v"})  # a cell's value, or its inline string
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
# Files embedded in an Office or HWPX document (an Excel sheet inside a Word file, a chart's
# workbook, a screenshot pasted into a report), read as members of it:
# "a.docx/word/embeddings/Microsoft_Excel_Worksheet.xlsx", "a.docx/word/media/image1.png".
EMBEDDED: Final = re.compile(r"(?:(?:word|xl|ppt)/(?:embeddings|media)|BinData)/[^/]+")
# Parts whose words are not in text runs but anywhere, attributes included.
_WORDS_ANYWHERE: Final = re.compile(
    r"docProps/.*|(?:word|xl|ppt)/charts/.*|xl/(?:pivotCache|externalLinks)/.*"
)


def sniff_container(names: list[str]) -> str:
    """ "docx", "xlsx", "pptx", "hwpx", or "zip" for any other archive."""
    present = set(names)
    if "word/document.xml" in present:
        return "docx"
    if "xl/workbook.xml" in present:
        return "xlsx"
    if "ppt/presentation.xml" in present:
        return "pptx"
    if any(name.startswith("Contents/section") for name in names):
        return "hwpx"
    return "zip"


def container_text(archive_names: list[str], kind: str, read: ReadMember) -> str:
    pattern = PARTS[kind]
    texts: list[str] = []
    shared: list[str] = []
    # Shared strings first: worksheets refer to them by index.
    ordered = sorted(archive_names, key=lambda n: (n != "xl/sharedStrings.xml", _natural_key(n)))
    for name in ordered:
        if not pattern.fullmatch(name):
            continue
        data = read(name)
        if name.endswith(".txt"):
            texts.append(
                data.decode("utf-16-le" if data[:2] == b"\xff\xfe" else "utf-8", "replace")
            )
        elif name == "xl/sharedStrings.xml":
            shared = list(_shared_strings(data))
        elif _WORDS_ANYWHERE.fullmatch(name):
            texts.append(all_text(data))
        elif kind == "xlsx" and name.startswith("xl/worksheets/"):
            texts.append(_sheet_text(data, shared))
        else:
            texts.append(xml_text(data))
    return "\n".join(texts)


class ReadMember:
    """Reads members of one open archive against the mail's budget."""

    def __init__(self, archive: zipfile.ZipFile, budget: Budget) -> None:
        self._archive = archive
        self._budget = budget

    def __call__(self, name: str) -> bytes:
        return read_member(self._archive, name, self._budget)


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
        if name == "t":
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
    """A worksheet as rows of tab-separated cells, shared strings resolved."""
    parts: list[str] = []
    local_names: dict[str, str] = {}  # a sheet has a handful of tags and a million elements
    for name, element in _events(data):
        if name == "c":
            cell_type = element.get("t")
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
            parts.append("\t")
            element.clear()
        elif name == "row":
            parts.append("\n")
            element.clear()
    return "".join(parts)


def _cell_value(raw: str, cell_type: str | None, shared: list[str]) -> str:
    if cell_type == "s" and raw.isdigit() and int(raw) < len(shared):
        return shared[int(raw)]
    return raw
