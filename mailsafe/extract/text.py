"""Plain text and HTML to text."""

from __future__ import annotations

import codecs
import re
from html import unescape
from typing import Final

# Encodings tried in order for text files without a byte-order mark: UTF-8, then the Korean
# Windows code page (a superset of EUC-KR) that Korean CSV exports use.
TEXT_ENCODINGS: Final = ("utf-8", "cp949")
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# Attributes whose values people read (or that hide data from the eye but not from a reader).
_ATTRIBUTE_RE: Final = re.compile(
    r"""\b(alt|title|value|placeholder|content)\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))""",
    re.IGNORECASE,
)
# A tag (group 1: "/" when closing, 2: name, 3: attributes) or a comment/declaration.
_TAG_RE: Final = re.compile(r"<(/?)([A-Za-z][A-Za-z0-9]*)([^>]*)>|<[!?/][^>]*>")
_CELL_ELEMENTS: Final = frozenset({"td", "th"})
_SKIPPED_ELEMENTS: Final = frozenset({"script", "style"})
_BLOCK_ELEMENTS: Final = frozenset(
    {"p", "div", "br", "tr", "li", "h1", "h2", "h3", "h4", "h5", "h6", "table", "section"}
)


def decode_text(data: bytes) -> str:
    """Decode a text file: byte-order mark, else UTF-8, else CP949, else UTF-8 with
    replacement characters (never fails)."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def html_to_text(html: str) -> str:
    """The text a reader sees in ``html`` (plus alt/title/value attributes), tags removed.

    A single linear pass over the tags (html.parser is several times slower, and this runs
    on every outbound HTML body); script and style content is dropped, entities decoded.
    """
    parts: list[str] = []
    position = 0
    skipping: str | None = None
    for tag in _TAG_RE.finditer(html):
        if skipping is None:
            parts.append(html[position : tag.start()])
        position = tag.end()
        closing, name = bool(tag.group(1)), (tag.group(2) or "").lower()
        if skipping is not None:
            if closing and name == skipping:
                skipping = None
            continue
        if name in _SKIPPED_ELEMENTS and not closing:
            skipping = name
        elif name in _BLOCK_ELEMENTS:
            parts.append("\n")
        elif closing and name in _CELL_ELEMENTS:
            parts.append("\t")
        if not closing and tag.group(3):
            parts.extend(f" {_attribute_value(a)} " for a in _ATTRIBUTE_RE.finditer(tag.group(3)))
    if skipping is None:
        parts.append(html[position:])
    return unescape("".join(parts))


def _attribute_value(match: re.Match[str]) -> str:
    return match.group(2) or match.group(3) or match.group(4) or ""
