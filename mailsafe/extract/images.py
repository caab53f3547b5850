"""Text that pictures carry beside their pixels: comments, descriptions, authors, XMP.

A photo of a form is not read (no OCR), but the words a camera, a phone or an editor stored
in the file are: EXIF ``ImageDescription``/``UserComment``/``XPComment``..., PNG text chunks,
JPEG and GIF comments, XMP packets. Anyone can type a list into them, and they leave with
the picture.

No pixel is decoded. PNG chunks are walked here (a text chunk may sit after the image data,
where Pillow only reaches by decoding it); JPEG, GIF, TIFF and WebP headers are read by
Pillow, which stops before the image data; EXIF blocks are parsed by Pillow's ``Image.Exif``.
"""

from __future__ import annotations

import io
import re
import struct
import warnings
import zlib
from collections.abc import Iterator
from typing import Final

from PIL import Image, UnidentifiedImageError

from mailsafe.errors import HostileInput
from mailsafe.extract.limits import MIB, Budget

__all__ = ["image_text", "is_bare_picture", "is_image"]

PNG_MAGIC: Final = b"\x89PNG\r\n\x1a\n"
_PILLOW_MAGICS: Final = (
    b"\xff\xd8\xff",  # JPEG
    b"GIF87a", b"GIF89a",
    b"II*\x00", b"MM\x00*",  # TIFF
)  # fmt: skip
_PILLOW_FORMATS: Final = ("JPEG", "GIF", "TIFF", "WEBP")
# The first byte of a BMP's info header, its size: OS/2 (12, 64), Windows 3 to 5 (40-124).
_BMP_HEADER_SIZES: Final = (b"\x0c", b"\x28", b"\x34", b"\x38", b"\x40", b"\x6c", b"\x7c")
# A picture with more chunks than this is not a picture anyone took.
MAX_PNG_CHUNKS: Final = 10_000
# Text unpacked from compressed PNG chunks, per picture (Pillow's own limit for all text).
MAX_UNPACKED_TEXT: Final = 8 * MIB
# EXIF tags whose values are words a person wrote (TIFF 6.0, EXIF 2.32, Windows XP tags).
_TEXT_TAGS: Final = {
    0x010D: "DocumentName", 0x010E: "ImageDescription", 0x011D: "PageName",
    0x013B: "Artist", 0x8298: "Copyright", 0x9286: "UserComment",
    0x9C9B: "XPTitle", 0x9C9C: "XPComment", 0x9C9D: "XPAuthor", 0x9C9E: "XPKeywords",
    0x9C9F: "XPSubject",
}  # fmt: skip
_XP_TAGS: Final = frozenset(range(0x9C9B, 0x9CA0))  # UTF-16LE bytes
_EXIF_IFD: Final = 0x8769
# UserComment starts with 8 bytes naming its character code (EXIF 2.32, 4.6.5).
_USER_COMMENT_CODES: Final = {
    b"ASCII\0\0\0": "ascii", b"UNICODE\0": "utf-16", b"JIS\0\0\0\0\0": "shift_jis",
}  # fmt: skip
# ImageMagick's hex dumps of whole profiles ("Raw profile type exif"): hex digits, not words.
_SKIPPED_PNG_KEYWORDS: Final = (b"raw profile type",)
_XML_TAG_RE: Final = re.compile(r"<[^<>]*>")


def is_image(head: bytes) -> bool:
    return (
        head.startswith((PNG_MAGIC, *_PILLOW_MAGICS))
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or is_bare_picture(head)
    )


def is_bare_picture(head: bytes) -> bool:
    """A BMP or a Windows icon: pixels and no words beside them, but a screenshot saved
    so is read by OCR like any other (issue 19.5)."""
    bmp = head[:2] == b"BM" and head[6:10] == b"\0\0\0\0" and head[14:15] in _BMP_HEADER_SIZES
    icon = head[:4] in (b"\0\0\1\0", b"\0\0\2\0") and head[4:6] != b"\0\0"
    return bmp or icon


def image_text(data: bytes, budget: Budget) -> str:
    """The words stored in the picture ``data``, one entry per line ('' when there are none).

    A picture whose header or metadata does not parse gives the words read before the break
    and no finding: its pixels are never read either (no OCR), and holding every mail with a
    cut-off photo would hold mail for nothing. Too much text is refused (``too-big``).
    """
    budget.check_time()
    texts: list[str] = []
    try:
        for text in _png_texts(data) if data.startswith(PNG_MAGIC) else _pillow_texts(data):
            if text.strip():
                texts.append(text.strip())
    except HostileInput as exc:
        if exc.code != "corrupt":
            raise
    return "\n".join(texts)


# ---------------------------------------------------------------------------- PNG


class _Unpacked:
    """Bytes unpacked from one picture's compressed text chunks so far."""

    def __init__(self) -> None:
        self.total = 0


def _png_texts(data: bytes) -> Iterator[str]:
    unpacked = _Unpacked()
    for kind, body in _png_chunks(data):
        if kind == b"tEXt":
            keyword, _, text = body.partition(b"\0")
            if not _skipped(keyword):
                yield text.decode("latin-1")
        elif kind == b"zTXt":
            keyword, _, rest = body.partition(b"\0")
            if not _skipped(keyword):
                yield _inflate(rest[1:], unpacked).decode("latin-1")
        elif kind == b"iTXt":
            yield from _international_text(body, unpacked)
        elif kind == b"eXIf":
            yield from _exif_texts(body)


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, bytes]]:
    position = len(PNG_MAGIC)
    for _ in range(MAX_PNG_CHUNKS):
        if position + 8 > len(data):
            return
        length, kind = struct.unpack_from(">I4s", data, position)
        body = data[position + 8 : position + 8 + length]
        yield kind, body
        if kind == b"IEND":
            return
        position += 12 + length  # length, type, body, CRC
    raise HostileInput(f"picture with more than {MAX_PNG_CHUNKS} chunks", code="corrupt")


def _international_text(body: bytes, unpacked: _Unpacked) -> Iterator[str]:
    """iTXt: keyword, compression flag and method, language, translated keyword, text."""
    keyword, _, rest = body.partition(b"\0")
    if _skipped(keyword) or len(rest) < 2:
        return
    compressed, rest = rest[0], rest[2:]
    _language, _, rest = rest.partition(b"\0")
    translated, _, text = rest.partition(b"\0")
    yield translated.decode("utf-8", "replace")
    raw = _inflate(text, unpacked) if compressed else text
    decoded = raw.decode("utf-8", "replace")
    yield _XML_TAG_RE.sub(" ", decoded) if keyword == b"XML:com.adobe.xmp" else decoded


def _inflate(packed: bytes, unpacked: _Unpacked) -> bytes:
    room = MAX_UNPACKED_TEXT - unpacked.total
    try:
        text = zlib.decompressobj().decompress(packed, room + 1)
    except zlib.error:
        raise HostileInput("compressed text in a picture is corrupt", code="corrupt") from None
    unpacked.total += len(text)
    if unpacked.total > MAX_UNPACKED_TEXT:
        limit = MAX_UNPACKED_TEXT // MIB
        raise HostileInput(f"over {limit} MiB of text in one picture", code="too-big")
    return text


def _skipped(keyword: bytes) -> bool:
    return keyword.lower().startswith(_SKIPPED_PNG_KEYWORDS)


# ---------------------------------------------------------------------------- Pillow


def _pillow_texts(data: bytes) -> Iterator[str]:
    try:
        with warnings.catch_warnings():  # a size past the warning line is refused below
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            picture = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS)
    except Image.DecompressionBombError:
        raise HostileInput("picture of more pixels than any photo", code="too-big") from None
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, struct.error):
        raise HostileInput("picture whose header does not parse", code="corrupt") from None
    with picture:
        info = dict(picture.info)
        exif = info.pop("exif", None)
        for key in ("comment", "xmp", "XML:com.adobe.xmp"):
            value = info.get(key)
            if isinstance(value, bytes):
                value = value.decode("utf-8", "replace")
            if isinstance(value, str):
                yield _XML_TAG_RE.sub(" ", value) if key != "comment" else value
        if isinstance(exif, bytes):
            yield from _exif_texts(exif)
        elif picture.format == "TIFF":  # a TIFF's tags are its EXIF
            yield from _tag_texts(picture.getexif())


def _exif_texts(blob: bytes) -> Iterator[str]:
    exif = Image.Exif()
    try:
        exif.load(blob)
        yield from _tag_texts(exif)
    except (OSError, ValueError, SyntaxError, KeyError, struct.error):
        raise HostileInput("EXIF block of a picture does not parse", code="corrupt") from None


def _tag_texts(exif: Image.Exif) -> Iterator[str]:
    for tags in (exif, exif.get_ifd(_EXIF_IFD)):
        for tag, value in tags.items():
            if tag in _TEXT_TAGS:
                yield _tag_value(tag, value)


def _tag_value(tag: int, value: object) -> str:
    if isinstance(value, tuple):  # Pillow gives Windows XP tags as a tuple of byte values
        value = bytes(v for v in value if isinstance(v, int) and 0 <= v < 256)
    if isinstance(value, bytes):
        if tag in _XP_TAGS:
            return value.decode("utf-16-le", "replace").rstrip("\0")
        if tag == 0x9286:
            encoding = _USER_COMMENT_CODES.get(value[:8], "utf-8")
            return value[8:].decode(encoding, "replace").rstrip("\0 ")
        return value.decode("utf-8", "replace")
    return str(value)
