"""Compose one HTML document for a parsed mail: a header block, the body, forwarded mails.

The body HTML is sanitised (:mod:`mailsafe.htmlsafe`); ``cid:`` and ``data:`` images are
decoded and re-encoded under the pixel cap before they are put back as our own ``data:`` URIs.
Korean UI labels: the picture is read by employees.
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import TYPE_CHECKING

from PIL import Image

from mailsafe.htmlsafe import CSP, sanitize_html
from mailsafe.invitation import event_lines
from mailsafe.mime import Address, Attachment, ParsedMail
from mailsafe.notes import note, reason_words
from mailsafe.payload import Withheld
from mailsafe.render import links
from mailsafe.render.drawn import drawn_html, drawn_text
from mailsafe.render.encode import encode_image
from mailsafe.render.options import RenderOptions

if TYPE_CHECKING:
    from mailsafe.render.masking import Masker

# Inline images per mail put back into the HTML; more are listed, not shown.
MAX_INLINE_IMAGES = 30
# A data: URI in the HTML bigger than this is not decoded (5 MiB of base64 is a big photo).
MAX_DATA_URI_CHARS = 5 * 1024 * 1024
# Forwarded mails inside forwarded mails shown; deeper ones are named only.
MAX_FORWARD_DEPTH = 5

BASE_CSS = (
    """
body { font-family: sans-serif; font-size: 11pt; color: #000; margin: 0; }
.mailsafe-headers { border-bottom: 1px solid #888; margin-bottom: 8pt; padding-bottom: 4pt; }
.mailsafe-headers td { font-size: 10pt; vertical-align: top; padding: 1pt 4pt 1pt 0; }
.mailsafe-label { color: #444; white-space: nowrap; font-weight: bold; width: 56pt; }
.mailsafe-subject { font-size: 14pt; font-weight: bold; margin: 0 0 4pt 0; }
.mailsafe-forward { border-left: 2px solid #888; padding-left: 6pt; margin-top: 10pt; }
.mailsafe-note { color: #444; font-size: 9pt; }
pre.mailsafe-text { white-space: pre-wrap; font-size: 10pt; }
.mailsafe-bs { font-family: "DejaVu Sans Mono", monospace; }
.mailsafe-box { border: 1px solid #888; padding: 4pt; margin: 6pt 0; font-size: 10pt; }
.mailsafe-box td { font-size: 10pt; vertical-align: top; padding: 1pt 4pt 1pt 0; }
"""
    + links.CSS
)


@dataclass
class Composition:
    html: str
    text: str
    notes: list[str] = field(default_factory=list)
    remote_dropped: int = 0
    used_cids: set[str] = field(default_factory=set)


def _addresses(addresses: tuple[Address, ...]) -> str:
    shown = []
    for address in addresses[:20]:
        if address.display and address.addr:
            shown.append(f"{address.display} <{address.addr}>")
        else:
            shown.append(address.display or address.addr)
    more = f" 외 {len(addresses) - 20}명" if len(addresses) > 20 else ""
    return ", ".join(shown) + more


def header_rows(mail: ParsedMail) -> list[tuple[str, str]]:
    rows = [
        ("보낸 사람", _addresses(mail.from_)),
        ("받는 사람", _addresses(mail.to)),
        ("참조", _addresses(mail.cc)),
        ("날짜", mail.date),
    ]
    return [(label, value) for label, value in rows if value]


class ImageResolver:
    """Maps ``cid:`` and ``data:`` references to re-encoded data URIs under limits."""

    def __init__(
        self,
        attachments: tuple[Attachment, ...],
        options: RenderOptions,
        masker: Masker | None = None,
    ) -> None:
        self.by_cid: Mapping[str, Attachment] = {
            a.content_id.lower(): a for a in attachments if a.content_id
        }
        self.options = options
        self.masker = masker
        self.used_cids: set[str] = set()
        self.count = 0
        self.refused = 0

    def __call__(self, untrusted_src: str) -> str | None:  # noqa: PLR0911 - one exit per refusal
        src = untrusted_src.strip()
        if self.count >= MAX_INLINE_IMAGES:
            return None
        if src.lower().startswith("cid:"):
            attachment = self.by_cid.get(src[4:].strip().strip("<>").lower())
            if attachment is None or not attachment.data:
                return None
            self.used_cids.add(src[4:].strip().strip("<>").lower())
            # the scan read an inline picture as the attachment it is (mailsafe.extract)
            return self._reencode(attachment.data, attachment.sha256)
        if src.lower().startswith("data:image/") and len(src) <= MAX_DATA_URI_CHARS:
            header, _, payload = src.partition(",")
            if ";base64" not in header.lower():
                return None
            try:
                data = base64.b64decode(payload, validate=False)
            except ValueError:
                return None
            # the scan read it as a file of the HTML (body.html/data-N.png), found by its bytes
            return self._reencode(data, hashlib.sha256(data).hexdigest())
        return None

    def _reencode(self, data: bytes, digest: str) -> str | None:
        picture = decode_picture(data, self.options)
        if picture is None:
            self.refused += 1
            return None
        if self.masker is not None:  # painted before it is encoded into the page
            picture = self.masker.picture(picture, "body", digest=digest)
        encoded = encode_image(picture, self.options.jpeg_quality)
        self.count += 1
        return f"data:{encoded.media_type};base64,{base64.b64encode(encoded.data).decode()}"


def decode_picture(data: bytes, options: RenderOptions) -> Image.Image | None:
    """Decode an untrusted picture under the pixel cap, first frame only, scaled down."""
    try:
        with Image.open(io.BytesIO(data)) as untrusted_image:
            width, height = untrusted_image.size
            if width <= 0 or height <= 0 or width * height > options.max_image_pixels:
                return None
            untrusted_image.draft("RGB", (options.max_picture_side_px,) * 2)
            picture = _flatten(untrusted_image)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError, EOFError):
        return None
    picture.thumbnail((options.max_picture_side_px, options.max_picture_side_px))
    picture.info = {}  # metadata (EXIF, ICC, comments, XMP) is never carried over
    return picture


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels on white: transparency and palettes are resolved, nothing else kept."""
    if image.mode in {"RGBA", "LA", "PA", "P"} or "transparency" in image.info:
        rgba = image.convert("RGBA")
        flat = Image.new("RGB", rgba.size, (255, 255, 255))
        flat.paste(rgba, mask=rgba.getchannel("A"))
        return flat
    return image.convert("RGB")


def compose(
    mail: ParsedMail,
    options: RenderOptions,
    masker: Masker | None = None,
    withheld: Sequence[Withheld] = (),
) -> Composition:
    """The HTML document and plain text for ``mail`` and its forwarded mails; with a
    ``masker``, the HTML bodies' text and pictures masked (``mail`` is masked already).
    ``withheld``: the parts not shown as pictures, named at the end so the reader learns of
    them from the picture itself."""
    composition = Composition(html="", text="")
    parts_html: list[str] = []
    parts_text: list[str] = []
    _compose_one(mail, _Walk(options, masker), 0, parts_html, parts_text, composition)
    _withheld_list(withheld, parts_html, parts_text)
    document = (
        f'<html><head><meta http-equiv="Content-Security-Policy" content="{CSP}">'
        f'<meta charset="utf-8"><style>{BASE_CSS}</style></head><body>'
        + "".join(parts_html)
        + "</body></html>"
    )
    composition.html = document
    composition.text = "\n".join(parts_text)
    return composition


@dataclass(frozen=True)
class _Walk:
    """What every level of the walk over forwarded mails uses."""

    options: RenderOptions
    masker: Masker | None


def _compose_one(  # noqa: PLR0917 - recursive walk, its state passed explicitly
    mail: ParsedMail,
    walk: _Walk,
    depth: int,
    parts_html: list[str],
    parts_text: list[str],
    composition: Composition,
) -> None:
    rows = header_rows(mail)
    subject = drawn_text(mail.subject or "(제목 없음)")
    table = "".join(
        f'<tr><td class="mailsafe-label">{html.escape(k)}</td><td>{drawn_text(v)}</td></tr>'
        for k, v in rows
    )
    parts_html.append(
        f'<div class="mailsafe-headers"><p class="mailsafe-subject">{subject}</p>'
        f"<table>{table}</table></div>"
    )
    parts_text.append(f"제목: {mail.subject}")
    parts_text.extend(f"{k}: {v}" for k, v in rows)
    parts_text.append("")
    _events(mail, parts_html, parts_text)
    _body(mail, walk, parts_html, parts_text, composition)
    for forwarded in mail.forwarded:
        if depth + 1 > MAX_FORWARD_DEPTH:
            composition.notes.append(note("forward_too_deep"))
            break
        parts_html.append('<div class="mailsafe-forward"><p class="mailsafe-note">전달된 메일</p>')
        parts_text.append("---------- 전달된 메일 ----------")
        _compose_one(forwarded, walk, depth + 1, parts_html, parts_text, composition)
        parts_html.append("</div>")


# Parts named in the picture's list of withheld parts; more are counted, not named.
MAX_WITHHELD_NAMED = 30


def _withheld_list(
    withheld: Sequence[Withheld], parts_html: list[str], parts_text: list[str]
) -> None:
    """A box naming each part not shown as pictures: name, type, size and why."""
    if not withheld:
        return
    rows = [
        (
            part.filename,
            f"{part.content_type}, {_size(part.size)} — {reason_words(part.reason, 'ko')}",
        )
        for part in withheld[:MAX_WITHHELD_NAMED]
    ]
    if len(withheld) > MAX_WITHHELD_NAMED:
        rows.append(("…", f"외 {len(withheld) - MAX_WITHHELD_NAMED}개"))
    table = "".join(
        f"<tr><td><b>{drawn_text(name)}</b></td><td>{drawn_text(about)}</td></tr>"
        for name, about in rows
    )
    parts_html.append(
        f'<div class="mailsafe-box"><p class="mailsafe-note">{WITHHELD_TITLE}</p>'
        f"<table>{table}</table></div>"
    )
    parts_text.append(WITHHELD_TITLE)
    parts_text.extend(f"{name}: {about}" for name, about in rows)


WITHHELD_TITLE = "그림으로 보이지 않는 첨부 파일"


def _reason(code: str) -> str:
    return reason_words(code, "ko")  # the picture's labels are Korean (the module's docstring)


def _size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.0f} KB"
    return f"{size / (1024 * 1024):.1f} MB"


def _events(mail: ParsedMail, parts_html: list[str], parts_text: list[str]) -> None:
    """Each invitation's title, time, place and organiser, in a box above the body."""
    for event in mail.events:
        rows = event_lines(event)
        table = "".join(
            f'<tr><td class="mailsafe-label">{html.escape(k)}</td><td>{drawn_text(v)}</td></tr>'
            for k, v in rows
        )
        parts_html.append(f'<div class="mailsafe-box"><table>{table}</table></div>')
        parts_text.extend(f"{k}: {v}" for k, v in rows)
        parts_text.append("")


def _body(
    mail: ParsedMail,
    walk: _Walk,
    parts_html: list[str],
    parts_text: list[str],
    composition: Composition,
) -> None:
    if mail.html:
        resolver = ImageResolver(mail.attachments, walk.options, walk.masker)
        label = _link_labeller(walk.masker) if walk.options.show_link_targets else None
        safe = sanitize_html(mail.html, resolver, label)
        if walk.masker is not None:
            safe.html = walk.masker.html(safe.html, "body")
        composition.used_cids |= resolver.used_cids
        composition.remote_dropped += safe.dropped_remote
        if safe.dropped_remote:
            composition.notes.append(note("remote_dropped", count=safe.dropped_remote))
        if resolver.refused:
            composition.notes.append(note("inline_images_refused", count=resolver.refused))
        parts_html.append(f"<div>{drawn_html(safe.html)}</div>")
        parts_text.append(html_to_text(safe.html))  # the text of what the picture shows
    elif mail.text is not None:
        parts_html.append(f'<pre class="mailsafe-text">{drawn_text(mail.text)}</pre>')
        parts_text.append(mail.text)


def _link_labeller(masker: Masker | None) -> Callable[[str], str | None]:
    """A link's target as the picture shows it after the link's text (issue 17.7), personal
    data in it masked like the text around it (the full target in the text layer too)."""

    def label(href: str) -> str | None:
        found = links.link_label(href)
        if found is None:
            return None
        shown, full = found
        if masker is not None:
            shown, full = masker.text(shown, "body"), masker.text(full, "body", shown=False)
        return links.label_html(shown, full)

    return label


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.chunks: list[str] = []
        self.skip = 0
        self._link_skip = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        full = dict(attrs).get("data-full") if tag == "span" else None
        if full is not None:  # a link's target: in full here, shortened in the picture
            self.chunks.append(f" [{full}]")
            self.skip += 1
            self._link_skip = True
        if tag == "style":
            self.skip += 1
        if tag in {"br", "p", "div", "tr", "li", "h1", "h2", "h3", "table"}:
            self.chunks.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag == "style" and self.skip:
            self.skip -= 1
        if tag == "span" and self._link_skip:
            self._link_skip = False
            self.skip -= 1

    def handle_data(self, data: str) -> None:
        if not self.skip:
            self.chunks.append(data)


def html_to_text(safe_html: str) -> str:
    """Plain text of sanitised HTML (the text layer), without links or markup."""
    parser = _TextOnly()
    parser.feed(safe_html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.chunks).splitlines()]
    return "\n".join(line for line in lines if line)
