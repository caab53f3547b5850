"""Masking text before it is laid out: plain text, and the text of sanitised HTML.

Pure: strings in, strings and findings out. Masking keeps every character's place (a hidden
digit becomes ``*``, separators stay; :func:`mailsafe.pii.mask_value`), so a finding made on
text joined from many pieces is put back into those pieces by position.

HTML is masked *after* the sanitiser (``mailsafe.htmlsafe``) rebuilt it: that output is ours,
so it can be re-read and re-written exactly. The text nodes of the whole document are joined
as a reader sees them (inline elements glued, ``<b>800101</b>-1234567`` is one number; block
elements and table cells apart) and searched once; the attributes that become visible text
(``alt``, ``title``) are searched one by one, and so is the style sheet (CSS ``content:`` is
text a browser draws). Tags, inline styles and image data are left alone.
"""

from __future__ import annotations

import dataclasses
import html
import re
import unicodedata
from collections.abc import Sequence, Set
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Final

from mailsafe.pii import Finding, PiiType, detect, mask_text, mask_value
from mailsafe.pii.mask import MASK_CHAR
from mailsafe.positions import values_spans
from mailsafe.render.masking.pieces import piece_findings

__all__ = ["PLAIN_HIDING", "Hiding", "found_in", "hidden_whole", "mask_html", "mask_plain"]

# Elements that start a new line of text where they open or close: a number does not run
# from one paragraph (or list item, or heading) into the next.
_BLOCK_TAGS: Final = frozenset({
    "address", "article", "aside", "blockquote", "br", "caption", "center", "dd", "details",
    "div", "dl", "dt", "fieldset", "figcaption", "figure", "footer", "h1", "h2", "h3", "h4",
    "h5", "h6", "header", "hr", "legend", "li", "main", "nav", "ol", "p", "pre", "section",
    "summary", "table", "tbody", "tfoot", "thead", "tr", "ul",
})  # fmt: skip
# Table cells stand side by side, but two cells are not one number (the detector keeps tabs
# apart, as it does in extracted spreadsheets).
_CELL_TAGS: Final = frozenset({"td", "th"})
# Attributes the sanitiser keeps whose text a renderer may show (a tooltip, an image's
# replacement text); input values are never kept (form controls are dropped).
VISIBLE_ATTRIBUTES: Final = frozenset({"alt", "title"})


@dataclass(frozen=True)
class Hiding:
    """How much of each finding is hidden, and what else is (``RenderOptions.mask_whole`` and
    ``mask_known``); the default is the receive filters' masked form and nothing else."""

    # Every letter and digit of a finding hidden, not only those its masked form hides.
    whole: bool = False
    # (type, digits) of numbers found in this mail by another reading (the outbound scan's):
    # a run of at least KNOWN_MIN_DIGITS of their digits is hidden wherever it is drawn, as
    # that type, when the detector cannot see the whole number there (a spreadsheet cell
    # drawn cut short shows "800101-12").
    known: tuple[tuple[PiiType, str], ...] = ()
    # (type, value) of findings another reading made in this mail (the outbound scan's, in
    # an office document, a PDF's text, a file name): each value is hidden wherever it is
    # drawn, also wrapped over lines (mailsafe.positions.value_spans), where the detector
    # cannot see it whole.
    values: tuple[tuple[PiiType, str], ...] = ()
    # Also the drawn pieces of ``values``: the start or the end of one, what a cell too
    # narrow for it shows (``chulsoo.kim.sale``; mailsafe.render.masking.pieces, D105). On
    # document pages only: a drawing cuts a value there; a mail's own text is never cut.
    pieces: bool = False


PLAIN_HIDING: Final = Hiding()
# The shortest run of a known number's digits hidden on its own: a day and month, or a card's
# last four. Shorter runs (two digits left of a cut cell) tell nothing.
KNOWN_MIN_DIGITS: Final = 4
# A number as drawn: digit groups joined by hyphens, dashes or dots.
_DIGIT_RUN_RE: Final = re.compile(r"\d+(?:[-‐‑‒–—.]\d+)*")
_DIGITS_RE: Final = re.compile(r"\d+")


def found_in(text: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING) -> list[Finding]:
    """The findings in ``text`` of the types to mask, with the runs of known numbers, in
    order; each one's masked form as ``hiding`` says."""
    found = [finding for finding in detect(text) if finding.type in types]
    if hiding.values:
        wanted = tuple((k, v) for k, v in hiding.values if k in types)
        placed = _value_findings(text, wanted)
        if hiding.pieces:
            placed = sorted([*placed, *piece_findings(text, wanted, placed)],
                            key=lambda f: f.start)  # fmt: skip
        found = [*placed, *(f for f in found if not _overlaps(f.start, f.end, placed))]
        found.sort(key=lambda f: f.start)
    if hiding.known:
        found = sorted([*found, *_known_runs(text, hiding.known, found)], key=lambda f: f.start)
    if hiding.whole:
        found = [dataclasses.replace(f, masked=hidden_whole(text[f.start : f.end])) for f in found]
    return found


def _value_findings(text: str, values: Sequence[tuple[PiiType, str]]) -> list[Finding]:
    """Where the known ``values`` are in ``text``, as findings in their usual masked form
    (hidden whole where the drawing broke one over lines); a value over another found first is
    left out (findings must not overlap)."""
    placed: list[Finding] = []
    spans = values_spans(text, [value for _, value in values])
    for (kind, value), found in zip(values, spans, strict=True):
        for start, end in found:
            if not _overlaps(start, end, placed):
                shown = text[start:end]
                masked = mask_value(shown, kind) if shown == value else hidden_whole(shown)
                placed.append(Finding(kind, start, end, shown, masked, 1.0))
    return placed


def _overlaps(start: int, end: int, found: list[Finding]) -> bool:
    return any(f.start < end and start < f.end for f in found)


def _known_runs(
    text: str, known: tuple[tuple[PiiType, str], ...], found: list[Finding]
) -> list[Finding]:
    """Digit runs of ``text`` (a whole run, else its groups) that are part of a known number,
    where no finding is already."""
    runs: list[Finding] = []
    for match in _DIGIT_RUN_RE.finditer(text):
        if any(f.start < match.end() and match.start() < f.end for f in found):
            continue
        kind = _known_kind(match.group(), known)
        pieces = [match] if kind is not None else list(_DIGITS_RE.finditer(match.group()))
        offset = 0 if kind is not None else match.start()
        for piece in pieces:
            kind = _known_kind(piece.group(), known)
            if kind is not None:
                start, end = offset + piece.start(), offset + piece.end()
                value = text[start:end]
                runs.append(Finding(kind, start, end, value, hidden_whole(value), 1.0))
    return runs


def _known_kind(shown: str, known: tuple[tuple[PiiType, str], ...]) -> PiiType | None:
    """The type of the known number ``shown`` (digits and separators) is part of, or None."""
    digits = "".join(str(unicodedata.digit(char)) for char in shown if char.isdigit())
    if len(digits) < KNOWN_MIN_DIGITS:
        return None
    return next((kind for kind, number in known if digits in number), None)


def hidden_whole(value: str) -> str:
    """``value`` with every letter and digit (any script's) hidden, separators kept: the same
    length, so a masked text keeps every character's place."""
    return "".join(MASK_CHAR if char.isalnum() else char for char in value)


def mask_plain(
    text: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING
) -> tuple[str, list[Finding]]:
    """``text`` with every finding of ``types`` masked as ``hiding`` says, and the findings."""
    findings = found_in(text, types, hiding=hiding)
    return (mask_text(text, findings) if findings else text), findings


@dataclass
class _Text:
    data: str


@dataclass
class _Style:
    css: str


@dataclass
class _Tag:
    name: str
    attrs: list[tuple[str, str | None]]
    raw: str
    void: bool


class _Pieces(HTMLParser):
    """Our own sanitised HTML as a list of pieces: raw strings, tags and text nodes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.pieces: list[str | _Text | _Tag | _Style] = []
        self.in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.in_style = tag == "style"
        self.pieces.append(_Tag(tag, attrs, self.get_starttag_text() or "", void=False))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.pieces.append(_Tag(tag, attrs, self.get_starttag_text() or "", void=True))

    def handle_endtag(self, tag: str) -> None:
        self.in_style = False
        self.pieces.append(f"</{tag}>")

    def handle_data(self, data: str) -> None:
        # A style sheet is CSS, written back unescaped (escaping would break ">" selectors).
        self.pieces.append(_Style(data) if self.in_style else _Text(data))


def mask_html(
    safe_html: str, types: Set[str], *, hiding: Hiding = PLAIN_HIDING
) -> tuple[str, list[Finding]]:
    """Sanitised HTML with the findings of ``types`` masked in its text and visible
    attributes; the findings (text first, then attributes). Unchanged HTML comes back as is."""
    parser = _Pieces()
    parser.feed(safe_html)
    parser.close()
    pieces = parser.pieces
    findings = _mask_text_nodes(pieces, types, hiding)
    for index, piece in enumerate(pieces):
        if isinstance(piece, _Tag) and any(name in VISIBLE_ATTRIBUTES for name, _ in piece.attrs):
            rewritten, found = _mask_attributes(piece, types, hiding)
            pieces[index] = rewritten
            findings += found
        elif isinstance(piece, _Style):
            # CSS ``content:`` is drawn as text by a browser (the Chromium backend); masking
            # keeps every character's place, so the sheet stays valid CSS.
            piece.css, found = mask_plain(piece.css, types, hiding=hiding)
            findings += found
    if not findings:
        return safe_html, []
    return "".join(_written(piece) for piece in pieces), findings


def _mask_text_nodes(
    pieces: list[str | _Text | _Tag | _Style], types: Set[str], hiding: Hiding
) -> list[Finding]:
    """Join the text nodes as a reader sees them, search once, put the masked text back."""
    joined: list[str] = []
    starts: list[tuple[int, _Text]] = []
    length = 0
    for piece in pieces:
        if isinstance(piece, _Text):
            starts.append((length, piece))
            joined.append(piece.data)
            length += len(piece.data)
        elif isinstance(piece, _Tag) or (isinstance(piece, str) and piece.startswith("</")):
            name = piece.name if isinstance(piece, _Tag) else piece[2:-1]
            gap = "\n" if name in _BLOCK_TAGS else "\t" if name in _CELL_TAGS else ""
            joined.append(gap)
            length += len(gap)
    text = "".join(joined)
    findings = found_in(text, types, hiding=hiding)
    if findings:
        masked = mask_text(text, findings)
        for start, node in starts:
            node.data = masked[start : start + len(node.data)]
    return findings


def _mask_attributes(
    tag: _Tag, types: Set[str], hiding: Hiding
) -> tuple[str | _Tag, list[Finding]]:
    findings: list[Finding] = []
    attrs: list[tuple[str, str | None]] = []
    for name, value in tag.attrs:
        shown = value
        if name in VISIBLE_ATTRIBUTES and value:
            shown, found = mask_plain(value, types, hiding=hiding)
            findings += found
        attrs.append((name, shown))
    if not findings:
        return tag, []
    # Written as the sanitiser writes attributes: every value quoted and escaped.
    written = "".join(f' {name}="{html.escape(value or "", quote=True)}"' for name, value in attrs)
    return f"<{tag.name}{written}{' /' if tag.void else ''}>", findings


def _written(piece: str | _Text | _Tag | _Style) -> str:
    if isinstance(piece, _Text):
        return html.escape(piece.data, quote=False)
    if isinstance(piece, _Style):
        return piece.css
    if isinstance(piece, _Tag):
        return piece.raw
    return piece
