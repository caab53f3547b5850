"""Plain text and HTML to text."""

from __future__ import annotations

import codecs
import re
from html import unescape
from typing import Final
from urllib.parse import unquote

# Encodings tried in order for text files without a byte-order mark: UTF-8, then the Korean
# Windows code page (a superset of EUC-KR) that Korean CSV exports use.
TEXT_ENCODINGS: Final = ("utf-8", "cp949")
_BOMS: Final = (
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
# How much of a file is looked at to tell its encoding, and how much of it must be text.
_SNIFF_BYTES: Final = 8192
_TEXT_SHARE: Final = 0.95
# UTF-16 of text with some ASCII (digits, spaces, line breaks) in it: at least this share
# of the high bytes are NUL.
_UTF16_NUL_SHARE: Final = 0.1
_CONTROL_BYTES: Final = bytes((*range(0x00, 0x09), 0x0B, *range(0x0E, 0x20), 0x7F))
# Attributes whose values people read (or that hide data from the eye but not from a reader).
_TEXT_ATTRIBUTES: Final = "alt|title|value|placeholder|content"
_ATTRIBUTE_RE: Final = re.compile(
    rf"""\b({_TEXT_ATTRIBUTES})\s*=\s*(?:"([^"<>]*)"|'([^'<>]*)'|([^\s<>]+))""", re.IGNORECASE
)
_TAG_WITH_TEXT_ATTRIBUTE_RE: Final = re.compile(
    rf"<[A-Za-z][^<>]*?\b(?:{_TEXT_ATTRIBUTES})\s*=[^<>]*>", re.IGNORECASE
)
_BLOCK_TAG_RE: Final = re.compile(
    r"</?(?:p|div|br|tr|li|h[1-6]|table|section|blockquote|pre|html|head|title|body)\b[^<>]*>",
    re.IGNORECASE,
)
_CELL_END_RE: Final = re.compile(r"</t[dh]\s*>", re.IGNORECASE)
# "[^<>]" rather than "[^>]": a "<" with no ">" after it must not be re-scanned to the end
# from every later "<" (quadratic on hostile markup).
_ANY_TAG_RE: Final = re.compile(r"<[A-Za-z/!?][^<>]*>")
# Attributes that hold addresses: a link's target leaves with the mail (and shows on hover),
# so a query string carrying a customer's number is read too. Matched in the lower-cased
# HTML, without a leading \b: a pattern that starts with plain letters lets the regex engine
# skip to candidate positions (ten times faster on this hot path); "data-href=" matching too
# only reads one more address.
_LINK_ATTRIBUTE_RE: Final = re.compile(
    r"""(?:href|src|action|formaction|cite|background|poster)\s*=\s*"""
    r"""(?:"([^"<>]*)"|'([^'<>]*)'|([^\s<>'"]+))"""
)
# Styles and attributes that take an element off the screen ("font-size:0", "0px", "0pt").
_UNSEEN_STYLE: Final = (
    r"display\s*:\s*none|visibility\s*:\s*hidden"
    r"|font-size\s*:\s*0*\.?0*(?:px|pt|em|rem|%)?\s*(?:[;\"']|!)"
)
_UNSEEN_HINTS: Final = ("none", "hidden", "font-size")
# Where to look for such a tag: the words, found in the lower-cased HTML.
_UNSEEN_MARK_RE: Final = re.compile(r"display|visibility|font-size|hidden")
_UNSEEN_OPEN_RE: Final = re.compile(
    rf"<([A-Za-z][A-Za-z0-9]*)\b[^<>]*?(?:style\s*=\s*[\"'][^\"'<>]*?(?:{_UNSEEN_STYLE})"
    rf"|\shidden(?:\s*=\s*[\"']?(?:hidden)?[\"']?)?(?=[\s/>]))[^<>]*>",
    re.IGNORECASE,
)
_VOID_ELEMENTS: Final = frozenset({"br", "img", "input", "hr", "meta", "link", "wbr", "col"})
_HIDDEN_OPEN_RE: Final = re.compile(r"<(script|style)\b", re.IGNORECASE)
_HIDDEN_CLOSE_RE: Final = {
    name: re.compile(rf"</{name}\s*>", re.IGNORECASE) for name in ("script", "style")
}


def decode_text(data: bytes) -> str:
    """Decode a text file: byte-order mark, else UTF-16 told by its NUL bytes, else UTF-8,
    else CP949, else UTF-8 with replacement characters (never fails). Control characters an
    editor shows as nothing (NUL and the like, not tabs or line breaks) are dropped: a NUL
    byte must not split a number for the scan that no reader sees split."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return data.decode(encoding, errors="replace")
    text = utf16_without_mark(data)
    if text is not None:
        return text
    # No byte of a multi-byte UTF-8 or CP949 character is below 0x20 or 0x7F: the control
    # bytes can go before decoding (a C loop, where a search of the text took ten times as long).
    data = data.translate(None, _CONTROL_BYTES)
    for encoding in TEXT_ENCODINGS:
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", errors="replace")


def utf16_without_mark(data: bytes) -> str | None:
    """``data`` decoded as UTF-16 when its NUL bytes say so (the high byte of every ASCII
    character on one side) and it decodes to text, else None."""
    head = data[:_SNIFF_BYTES]
    if b"\0" not in head:
        return None
    even, odd = head[0::2].count(0), head[1::2].count(0)
    encoding = "utf-16-le" if odd > even else "utf-16-be"
    if max(even, odd) < _UTF16_NUL_SHARE * len(head) / 2 or min(even, odd) * 4 > max(even, odd):
        return None
    try:
        text = data[: len(data) // 2 * 2].decode(encoding)
    except UnicodeDecodeError:
        return None
    return text if is_mostly_text(text) else None


def is_mostly_text(text: str) -> bool:
    """True when nearly all of ``text`` is printable characters and white space."""
    sample = text[:_SNIFF_BYTES]
    shown = sum((char.isprintable() and char != "\ufffd") or char in "\t\n\r\f" for char in sample)
    return shown >= _TEXT_SHARE * len(sample)


def html_to_text(html: str) -> str:
    """The text a reader sees in ``html`` (plus alt/title/value attributes), tags removed.

    Regular-expression passes with no callbacks for ordinary tags (html.parser is several
    times slower, and this runs on every outbound HTML body); every pass is linear, so
    hostile markup (unclosed tags, thousands of <script>) cannot make it quadratic.
    """
    text, _hidden = _split_hidden_blocks(html)
    text, _unseen = _split_unseen_elements(text)
    text = _TAG_WITH_TEXT_ATTRIBUTE_RE.sub(_attributes_as_text, text)
    text = _BLOCK_TAG_RE.sub("\n", text)
    text = _CELL_END_RE.sub("\t", text)
    text = _ANY_TAG_RE.sub("", text)
    return unescape(text)


def html_unseen_text(html: str) -> str:
    """What ``html`` carries that a reader does not see: comments, the content of script
    and style elements, and link targets (percent-decoded; data: URIs are read as files
    instead, see :mod:`mailsafe.extract.datauri`). It leaves with the mail all the same, so
    the outbound scan reads it. Linear passes, as :func:`html_to_text`."""
    shown, hidden = _split_hidden_blocks(html)
    hidden += [html_to_text(element) for element in _split_unseen_elements(shown)[1]]
    hidden += _link_targets(html)
    comments: list[str] = []
    position = 0
    while (start := html.find("<!--", position)) >= 0:
        end = html.find("-->", start + 4)
        comments.append(html[start + 4 : end if end >= 0 else len(html)])
        if end < 0:
            break
        position = end + 3
    return "\n".join(part.strip() for part in (*hidden, *comments) if part.strip())


def _link_targets(html: str) -> list[str]:
    """Link and image addresses, lower-cased (which changes no digit a detector reads)."""
    targets = []
    for match in _LINK_ATTRIBUTE_RE.finditer(html.lower()):
        target = unescape(match.group(1) or match.group(2) or match.group(3) or "").strip()
        if target and not target.startswith("data:"):
            targets.append(unquote(target))
    return targets


def _split_hidden_blocks(html: str) -> tuple[str, list[str]]:
    """(``html`` without script and style elements, their contents); an unclosed one hides
    the rest, as in a browser."""
    parts: list[str] = []
    hidden: list[str] = []
    position = 0
    while (opening := _HIDDEN_OPEN_RE.search(html, position)) is not None:
        parts.append(html[position : opening.start()])
        closing = _HIDDEN_CLOSE_RE[opening.group(1).lower()].search(html, opening.end())
        if closing is None:
            hidden.append(html[opening.end() :])
            return "".join(parts), hidden
        hidden.append(html[opening.end() : closing.start()])
        position = closing.end()
    parts.append(html[position:])
    return "".join(parts), hidden


def _split_unseen_elements(html: str) -> tuple[str, list[str]]:
    """(``html`` without the elements a reader does not see, those elements): styled
    ``display:none``, ``visibility:hidden`` or a zero font size, or marked ``hidden``.
    ``900101<span style="display:none">7</span>-1234568`` reads ``900101-1234568`` on the
    screen, so that is the text the scan reads as shown (issue 19.5). An element that is not
    closed hides the rest, as in a browser. Linear: after an element, the search goes on past
    its end."""
    lowered = html.lower()
    if not any(hint in lowered for hint in _UNSEEN_HINTS):
        return html, []
    parts: list[str] = []
    unseen: list[str] = []
    position = 0
    for mark in _UNSEEN_MARK_RE.finditer(lowered):
        opening = _hiding_tag(html, lowered, mark.start(), position)
        if opening is None:
            continue
        parts.append(html[position : opening.start()])
        position = _element_end(html, opening.group(1).lower(), opening.end())
        unseen.append(html[opening.start() : position])
    parts.append(html[position:])
    return "".join(parts), unseen


def _hiding_tag(html: str, lowered: str, mark: int, position: int) -> re.Match[str] | None:
    """The opening tag around the hiding word at ``mark`` when it hides its element, and
    starts at or after ``position`` (not inside an element already taken out)."""
    start = lowered.rfind("<", position, mark)
    if start < 0 or lowered.find(">", start, mark) >= 0:
        return None
    return _UNSEEN_OPEN_RE.match(html, start)


def _element_end(html: str, name: str, start: int) -> int:
    """Where the element ``name`` opened just before ``start`` ends (nested ones counted)."""
    if name in _VOID_ELEMENTS:
        return start
    depth = 1
    for tag in re.finditer(rf"<(/?){name}\b[^<>]*>", html[start:], re.IGNORECASE):
        depth += -1 if tag.group(1) else 1
        if depth == 0:
            return start + tag.end()
    return len(html)


def _attributes_as_text(tag: re.Match[str]) -> str:
    values = (
        m.group(2) or m.group(3) or m.group(4) or "" for m in _ATTRIBUTE_RE.finditer(tag.group())
    )
    return " " + " ".join(values) + " "
