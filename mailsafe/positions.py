"""Where a finding was: the place in the mail, the file, the page, the characters, the pixels.

Pure values, no I/O. Extraction records the layout of the text it reads
(:class:`TextLayout`: where each page of a paged document starts in the text, and for text
read from pictures by OCR, each word's characters and its box in the picture's pixels); the
scan turns a finding's span in that text into a :class:`Position`. The approval preview and
the masking paint over a position's boxes (docs/architecture.md, "Positions").

    Position(part, file, page, start, end, boxes, pixels)
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "NO_LAYOUT",
    "Box",
    "PictureLayout",
    "PlacedWord",
    "Position",
    "TextLayout",
    "boxes_over",
    "joined",
    "position_in",
    "value_spans",
    "values_spans",
]

# left, top, right, bottom, in the pixels of the picture the words were read from (right and
# bottom exclusive, as Pillow's crop takes them).
Box = tuple[int, int, int, int]


@dataclass(frozen=True)
class PlacedWord:
    """One word OCR read: its characters in the text (``start``..``end``) and its box."""

    start: int
    end: int
    box: Box


@dataclass(frozen=True)
class PictureLayout:
    """The words read from one picture (an attached image, or a scanned page drawn for OCR).

    ``pixels`` is the (width, height) the boxes are measured in: the picture as attached, or
    the page as drawn for OCR; a drawing of another size scales the boxes by its own size
    over this one. ``page`` is the page it was on (from 1), 0 for a picture that is no page.
    """

    page: int
    pixels: tuple[int, int]
    words: tuple[PlacedWord, ...]


@dataclass(frozen=True)
class TextLayout:
    """Where the parts of one extracted text came from; offsets are into that text.

    ``pages``: the offset where each page's text starts (page 1 at ``pages[0]``), empty when
    the text is not paged; ``pictures``: the words read by OCR, per picture."""

    pages: tuple[int, ...] = ()
    pictures: tuple[PictureLayout, ...] = ()

    def shifted(self, offset: int) -> TextLayout:
        """This layout for the same text put ``offset`` characters later."""
        if not offset:
            return self
        return TextLayout(
            tuple(start + offset for start in self.pages),
            tuple(_picture_shifted(picture, offset) for picture in self.pictures),
        )

    def cut(self, length: int) -> TextLayout:
        """This layout for the first ``length`` characters of its text."""
        return TextLayout(
            tuple(start for start in self.pages if start < length),
            tuple(
                PictureLayout(p.page, p.pixels, tuple(w for w in p.words if w.end <= length))
                for p in self.pictures
            ),
        )


NO_LAYOUT: Final = TextLayout()
# Characters a drawing puts into a value the scan read whole: line breaks and spaces where a
# narrow cell or a page's width wraps it, a soft hyphen or zero-width space at the break.
_DRAWN_BREAKS: Final = frozenset("\u00ad\u200b")
# A value shorter than this (spaces left out) is not looked for: it would hide unrelated text.
MIN_VALUE_CHARS: Final = 5
# The places of a forwarded mail (and of one forwarded in it) start so (mailsafe.extract).
_FORWARDED_PREFIX_RE: Final = re.compile(r"(?:forwarded\[\d+\]\.)+")


def _picture_shifted(picture: PictureLayout, offset: int) -> PictureLayout:
    words = tuple(PlacedWord(w.start + offset, w.end + offset, w.box) for w in picture.words)
    return PictureLayout(picture.page, picture.pixels, words)


def joined(
    pieces: Iterable[tuple[str, TextLayout]], separator: str = "\n"
) -> tuple[str, TextLayout]:
    """Texts joined with ``separator`` (empty ones left out, as ``"\\n".join`` of the non-empty
    ones) and their layouts put together."""
    texts: list[str] = []
    pages: list[int] = []
    pictures: list[PictureLayout] = []
    length = 0
    for text, layout in pieces:
        if not text:  # left out, but its pages start where the next text will
            pages += layout.shifted(length + (len(separator) if texts else 0)).pages
            continue
        if texts:
            length += len(separator)
        moved = layout.shifted(length)
        pages += moved.pages
        pictures += moved.pictures
        texts.append(text)
        length += len(text)
    # Empty pages at the end start past the last character: at its end, then.
    return separator.join(texts), TextLayout(tuple(min(p, length) for p in pages), tuple(pictures))


@dataclass(frozen=True)
class Position:
    """Where one finding was.

    - ``part``: the place in the mail as the scan names it (``subject``, ``body.text``,
      ``body.html``, ``header:From``, ``attachment``, ``attachment-name``), with a forwarded
      mail's prefix (``forwarded[1].body.text``);
    - ``file``: the attachment's path (``a.zip/b.pdf``; personal data in it masked as in
      ``where``), '' for the mail's own text;
    - ``page``: the page of a paged document (PDF), from 1; 0 when the text is not paged;
    - ``start``, ``end``: the finding's characters in the place's extracted text;
    - ``boxes``: for text read from a picture by OCR, the boxes of the words it covers, in
      the pixels of that picture (``pixels``: its width and height); empty otherwise.
    """

    part: str
    file: str
    page: int
    start: int
    end: int
    boxes: tuple[Box, ...] = ()
    pixels: tuple[int, int] = (0, 0)


def position_in(where: str, layout: TextLayout, start: int, end: int) -> Position:
    """The position of the characters ``start``..``end`` of the text at ``where`` (a scan
    place such as ``attachment:a.zip/b.pdf``) laid out as ``layout``."""
    part, file = _part_and_file(where)
    page = bisect.bisect_right(layout.pages, start) if layout.pages else 0
    for picture in layout.pictures:
        boxes = boxes_over(picture.words, start, end)
        if boxes:
            return Position(part, file, picture.page or page, start, end, boxes, picture.pixels)
    return Position(part, file, page, start, end)


def boxes_over(words: Sequence[PlacedWord], start: int, end: int) -> tuple[Box, ...]:
    """The boxes of the ``words`` the characters ``start``..``end`` overlap, once each: how
    the scan's positions and the renderer's masking pick a finding's words in a picture."""
    return tuple(dict.fromkeys(word.box for word in words if word.start < end and start < word.end))


def _part_and_file(where: str) -> tuple[str, str]:
    """``attachment:a.zip/b.pdf`` -> (``attachment``, ``a.zip/b.pdf``); a forwarded mail's
    prefix stays on the part (``forwarded[1].attachment``)."""
    forwarded = _FORWARDED_PREFIX_RE.match(where)
    prefix = forwarded.group() if forwarded else ""
    kind, colon, file = where[len(prefix) :].partition(":")
    if colon and kind in ("attachment", "attachment-name"):
        return prefix + kind, file
    return where, ""


def value_spans(text: str, value: str) -> list[tuple[int, int]]:
    """Where ``value`` (a finding's characters as the scan read them) is in ``text`` (another
    drawing of the same content: an office document laid out as pages, a PDF page's text), as
    (start, end) offsets into ``text``, the whitespace and break characters a drawing adds
    between its characters ignored: a value wrapped over two lines is found whole."""
    return values_spans(text, [value])[0]


def values_spans(text: str, values: Sequence[str]) -> list[list[tuple[int, int]]]:
    """:func:`value_spans` of each of ``values`` in ``text``, the text read once."""
    kept = [index for index, char in enumerate(text) if not _ignored(char)]
    squeezed = "".join(text[index] for index in kept)
    found: list[list[tuple[int, int]]] = []
    for value in values:
        wanted = "".join(char for char in value if not _ignored(char))
        spans: list[tuple[int, int]] = []
        at = squeezed.find(wanted) if len(wanted) >= MIN_VALUE_CHARS else -1
        while at >= 0:
            spans.append((kept[at], kept[at + len(wanted) - 1] + 1))
            at = squeezed.find(wanted, at + len(wanted))
        found.append(spans)
    return found


def _ignored(char: str) -> bool:
    return char.isspace() or char in _DRAWN_BREAKS
