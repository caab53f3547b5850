"""An approval preview as it is kept and shown: the held mail's pages and pictures with every
personal-data finding painted over, where each finding was, what could not be drawn and why,
and the extracted text (masked) for search. Pure: values in, values or bytes out.

``from_rendered`` makes one from what a render worker drew (``mailsafe.render.pool``; see
``preview.py``); ``encode`` / ``decode`` are how the state database keeps it (msgpack, a
version field; a preview stored before there were pages, one PNG, decodes as one page).

Every string here is masked, and every picture painted over: what a picture could not be
checked in (OCR not installed, its budget spent) is left out of the preview and named, never
shown as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgpack

from mailsafe.notes import reason_words, translate
from mailsafe.payload import Masked, PageInfo, RenderedMail, Unchecked

__all__ = ["LeftOut", "Place", "Preview", "PreviewPage", "from_rendered", "place_name"]

PREVIEW_VERSION: Final = 1
PNG_SIGNATURE: Final = b"\x89PNG\r\n\x1a\n"
# A stored preview is ours, but read back with bounds all the same (a damaged database).
MAX_STORED_BYTES: Final = 64 << 20


@dataclass(frozen=True)
class Place:
    """Personal data of one type painted over on a page: how many, and how it was found
    ("text": in the text or the PDF's text; "ocr": read in the pixels)."""

    type: str
    count: int
    method: str


@dataclass(frozen=True)
class PreviewPage:
    media_type: str
    data: bytes
    source: str  # "body", "attachment:<name>" (the name masked), "text" (the text fallback)
    page: int  # from 1 within its source
    places: tuple[Place, ...] = ()

    @property
    def title(self) -> str:
        """Where the page is from, in Korean: "본문", "첨부 명단.xlsx 2쪽"."""
        name = place_name(self.source)
        return (
            f"{name} {self.page}쪽" if self.page > 1 or self.source.startswith("attach") else name
        )


@dataclass(frozen=True)
class LeftOut:
    """A part not in the preview, and why (Korean)."""

    name: str
    reason: str


@dataclass(frozen=True)
class Preview:
    pages: tuple[PreviewPage, ...]
    left_out: tuple[LeftOut, ...] = ()
    notes: tuple[str, ...] = ()  # the renderer's notes, in Korean (pages capped, ...)
    sections: tuple[tuple[str, str], ...] = ()  # (title, extracted text), masked: for search

    def first_picture(self) -> bytes:
        """The first page (the mail's own): what the console shows of a held mail."""
        return self.pages[0].data if self.pages else b""

    def page(self, number: int) -> PreviewPage | None:
        """Page ``number`` from 1, or None."""
        return self.pages[number - 1] if 1 <= number <= len(self.pages) else None

    def encode(self) -> bytes:
        document = {
            "v": PREVIEW_VERSION,
            "pages": [
                [
                    p.media_type,
                    p.source,
                    p.page,
                    p.data,
                    [[pl.type, pl.count, pl.method] for pl in p.places],
                ]
                for p in self.pages
            ],
            "left_out": [[item.name, item.reason] for item in self.left_out],
            "notes": list(self.notes),
            "sections": [list(section) for section in self.sections],
        }
        packed: bytes = msgpack.packb(document, use_bin_type=True)
        return packed

    @classmethod
    def decode(cls, stored: bytes) -> Preview:
        """A stored preview; a bare PNG (kept before previews had pages) is its one page.
        ValueError when it is neither."""
        if stored.startswith(PNG_SIGNATURE):
            return cls((PreviewPage("image/png", stored, "text", 1),))
        try:
            document = msgpack.unpackb(stored[:MAX_STORED_BYTES], raw=False)
            if document.get("v") != PREVIEW_VERSION:
                raise ValueError(f"preview version {document.get('v')!r}")
            return cls(
                pages=tuple(_page(item) for item in document["pages"]),
                left_out=tuple(LeftOut(str(n), str(r)) for n, r in document["left_out"]),
                notes=tuple(str(n) for n in document["notes"]),
                sections=tuple((str(t), str(x)) for t, x in document["sections"]),
            )
        except (msgpack.UnpackException, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a stored preview: {exc}") from None


def _page(item: Any) -> PreviewPage:
    media_type, source, page, data, places = item
    return PreviewPage(str(media_type), bytes(data), str(source), int(page),
                       tuple(Place(str(t), int(c), str(m)) for t, c, m in places))  # fmt: skip


def place_name(source: str) -> str:
    """A source of the renderer's as the approver reads it."""
    if source.startswith("attachment:"):
        return "첨부 " + source.removeprefix("attachment:")
    return {"body": "본문", "header": "머리글", "text": "추출한 텍스트"}.get(source, source)


# ------------------------------------------------------------------------------ from pixels


def from_rendered(rendered: RenderedMail, sections: tuple[tuple[str, str], ...]) -> Preview:
    """The preview of a mail a render worker drew with masking: its pages with the places
    painted on each, less every picture whose pixels could not be checked (named instead)."""
    manifest = rendered.manifest
    pages: list[PreviewPage] = []
    left_out: list[LeftOut] = []
    for data, info in zip(rendered.images, manifest.pages, strict=True):
        number = info.index + 1
        unchecked = _unchecked(manifest.unchecked, info.source, number)
        if unchecked is not None:
            left_out.append(LeftOut(_named(info.source, number),
                                    "그림 속 글자를 읽지 못해 가릴 수 없었습니다 "
                                    f"({reason_words(unchecked.reason, 'ko')})"))  # fmt: skip
            continue
        places = _places(manifest.masked, info)
        pages.append(PreviewPage(info.media_type, data, info.source, number, places))
    left_out += [LeftOut(place_name(f"attachment:{w.filename}"), reason_words(w.reason, "ko"))
                 for w in manifest.withheld]  # fmt: skip
    if manifest.status != "rendered":
        left_out.insert(0, LeftOut("메일 전체", reason_words(manifest.reason or "", "ko")))
    notes = tuple(translate(n, "ko") for n in manifest.notes)
    return Preview(tuple(pages), tuple(left_out), notes, sections)


def _unchecked(unchecked: tuple[Unchecked, ...], source: str, number: int) -> Unchecked | None:
    """The entry saying the page's pixels were not checked (a picture's says page 0)."""
    return next((u for u in unchecked if u.source == source and u.page in (0, number)), None)


def _places(masked: tuple[Masked, ...], info: PageInfo) -> tuple[Place, ...]:
    """What was painted on the page drawn as ``info``: a PDF's page by its number; a place
    without pages (the body and header, a picture, a text drawn in tiles) on its first."""
    number = info.index + 1
    found: dict[tuple[str, str], int] = {}
    for entry in masked:
        source = "body" if entry.source == "header" else entry.source
        on_page = entry.page == number or (entry.page == 0 and number == 1)
        if source != info.source or not on_page:
            continue
        key = (entry.type, entry.method)
        found[key] = found.get(key, 0) + entry.count
    return tuple(Place(kind, count, method) for (kind, method), count in sorted(found.items()))


def _named(source: str, number: int) -> str:
    name = place_name(source)
    return f"{name} {number}쪽" if number > 1 else name
