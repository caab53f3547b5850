"""The approver's view of a held mail: its text with every piece of personal data masked,
drawn as a PNG image.

Why not the inbound renderer: it draws the mail as it is, and the pixels of a rendered
spreadsheet cannot be masked afterwards. Here the text is masked first (``mailsafe.pii``), then
drawn, so no unmasked value ever reaches the image, the request mail or the web page.
Attachments are shown as their extracted text (masked), so a resident number inside an XLSX
or HWP file is visible to the approver as ``800101-1******``.
"""

from __future__ import annotations

import io
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from mailsafe.extract import Found, Location
from mailsafe.extract.text import html_to_text
from mailsafe.mime import ParsedMail
from mailsafe.pii import detect, mask_text

__all__ = ["MaskedView", "masked_view", "render_png"]

# Fonts with Hangul, tried in order (Debian: fonts-nanum, fonts-noto-cjk).
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/nanum/NanumGothic.ttf",
    "/usr/share/fonts/truetype/nanum/NanumBarunGothic.ttf",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
WIDTH_PX = 1000  # readable in a mail client without scaling
MARGIN_PX = 24
FONT_PX = 16
LINE_PX = 22
WRAP_CHARS = 60  # Hangul is twice as wide as Latin; 60 wide glyphs fill the width
# An approver decides on the gist; past this many lines the image says "(cut)". Bounds memory.
MAX_LINES = 160
# Per place (body, each attachment) at most this many characters are shown.
MAX_CHARS_PER_PLACE = 4000


@dataclass(frozen=True)
class MaskedView:
    """What the approver sees; every string here is already masked."""

    headers: tuple[tuple[str, str], ...]
    sections: tuple[tuple[str, str], ...]  # (title, masked text)


def _masked(text: str) -> str:
    return mask_text(text, detect(text))


def masked_view(parsed: ParsedMail, found: Sequence[Found]) -> MaskedView:
    """The approver's view of ``parsed``, its attachments shown from ``found``: what the scan
    read (in the reader's child process, OCR included). Nothing is read again here, so a file
    that crashed or hung the reader cannot take the agent down on its way to the approver."""
    headers = (
        ("보낸 사람", ", ".join(a.addr for a in parsed.from_)),
        ("받는 사람", ", ".join(a.addr for a in (*parsed.to, *parsed.cc))),
        ("제목", _masked(parsed.subject)),
        ("날짜", parsed.date),
    )
    sections = [("본문", _masked(_body(parsed)[:MAX_CHARS_PER_PLACE]))]
    for item in found:
        if not item.where.startswith("attachment:"):
            continue
        title = _masked("첨부 " + item.where.removeprefix("attachment:"))
        if isinstance(item, Location):
            sections.append((title, _masked(item.text[:MAX_CHARS_PER_PLACE])))
        else:  # the approver should know what the scan could not read, and why
            sections.append((title, f"(읽지 못했습니다: {item.reason})"))
    names = [a.filename for a in parsed.attachments]
    if names:
        sections.append(("첨부 파일 목록", _masked("\n".join(names))))
    return MaskedView(headers, tuple(sections))


def _body(parsed: ParsedMail) -> str:
    if parsed.text:
        return parsed.text
    return html_to_text(parsed.html) if parsed.html else ""


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    for candidate in FONT_CANDIDATES:
        if Path(candidate).is_file():
            return ImageFont.truetype(candidate, FONT_PX)
    return ImageFont.load_default()


def _lines(view: MaskedView) -> list[tuple[str, bool]]:
    """(text, bold?) lines, wrapped and capped at MAX_LINES."""
    lines: list[tuple[str, bool]] = [(f"{name}: {value}", False) for name, value in view.headers]
    for title, text in view.sections:
        lines += [("", False), (f"■ {title}", True)]
        for paragraph in text.splitlines() or [""]:
            lines += [(part, False) for part in textwrap.wrap(paragraph, WRAP_CHARS) or [""]]
    if len(lines) > MAX_LINES:
        lines = [*lines[: MAX_LINES - 1], ("… (이하 생략)", True)]
    return lines


def render_png(view: MaskedView) -> bytes:
    lines = _lines(view)
    height = 2 * MARGIN_PX + LINE_PX * (len(lines) + 2)
    image = Image.new("RGB", (WIDTH_PX, height), "white")
    draw = ImageDraw.Draw(image)
    font = _font()
    draw.text(
        (MARGIN_PX, MARGIN_PX),
        "외부 발송 승인 요청 — 개인정보는 가려져 있습니다",
        font=font,
        fill="#b00020",
    )
    y = MARGIN_PX + 2 * LINE_PX
    for text, bold in lines:
        draw.text((MARGIN_PX, y), text, font=font, fill="#1a237e" if bold else "black")
        y += LINE_PX
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=True)
    return out.getvalue()
