"""Text of HWP 5.x files (Hancom's word processor; an OLE compound file), with olefile.

Layout read here (HWP 5.0 format specification, Hancom 2010):
- ``FileHeader`` stream: 32-byte signature "HWP Document File", version, then a 32-bit
  properties word: bit 0 compressed, bit 1 password-protected, bit 2 distribution document
  (body encrypted into ``ViewText``).
- ``BodyText/Section<N>`` streams: a sequence of records, raw-deflate compressed when bit 0
  is set. A record header is 32 bits: tag id (bits 0-9), level (10-19), size (20-31); size
  0xFFF means the real size follows as another 32 bits. Paragraph text is tag 67
  (HWPTAG_PARA_TEXT), UTF-16LE, with control characters of 1 or 8 code units.
- ``PrvText``: a UTF-16LE plain-text preview of the first page, present even in protected
  documents; it is scanned too.
"""

from __future__ import annotations

import io
import re
import struct
import zlib
from typing import Final

import olefile

from mailsafe.errors import HostileInput, LimitExceeded
from mailsafe.extract.limits import MIB, Budget

OLE_MAGIC: Final = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
HWP_SIGNATURE: Final = b"HWP Document File"
HWPTAG_PARA_TEXT: Final = 67
_COMPRESSED, _PASSWORD, _DISTRIBUTION = 0x1, 0x2, 0x4
_EXTENDED_SIZE: Final = 0xFFF
# Control characters occupy one UTF-16 code unit (0, 10, 13, 24-31) or eight (every other
# code below 32: the code, six units of parameters, the code again).
_NARROW_CONTROLS: Final = {
    code: (" " if code not in (10, 13) else "\n") for code in (0, 10, 13, *range(24, 32))
}
_TAB_CONTROL_RE: Final = re.compile("\t[\\s\\S]{0,7}")
_WIDE_CONTROL_RE: Final = re.compile("[\x01-\x08\x0b\x0c\x0e-\x17][\\s\\S]{0,7}")
_SECTION_RE: Final = re.compile(r"Section(\d+)")


def is_hwp(ole: olefile.OleFileIO) -> bool:
    return bool(ole.exists("FileHeader")) and _stream(ole, "FileHeader", 256).startswith(
        HWP_SIGNATURE
    )


def open_ole(data: bytes) -> olefile.OleFileIO:
    try:
        return olefile.OleFileIO(io.BytesIO(data))
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise HostileInput(f"not a readable compound file ({exc})", code="corrupt") from None


def hwp_text(ole: olefile.OleFileIO, budget: Budget) -> tuple[str, str | None]:
    """(text, refusal) where refusal is a reason code when the body could not be read."""
    header = _stream(ole, "FileHeader", 256)
    flags = struct.unpack_from("<I", header, 36)[0] if len(header) >= 40 else 0
    preview = _preview(ole, budget)
    if flags & (_PASSWORD | _DISTRIBUTION):
        return preview, "encrypted"
    sections = sorted(
        (int(m.group(1)), "/".join(path))
        for path in ole.listdir()
        if len(path) == 2 and path[0] == "BodyText" and (m := _SECTION_RE.fullmatch(path[1]))
    )
    texts = [preview]
    for _, name in sections:
        budget.check_time()
        raw = _stream(ole, name, budget.limits.max_file_bytes)
        body = _inflate(raw, budget) if flags & _COMPRESSED else raw
        texts.append(paragraph_text(body))
    return "\n".join(texts), None


def _stream(ole: olefile.OleFileIO, name: str, limit: int) -> bytes:
    try:
        size = ole.get_size(name)
        if size > limit:
            raise LimitExceeded(f"HWP stream {name} is {size // MIB} MiB", code="too-big")
        with ole.openstream(name) as stream:
            data: bytes = stream.read(limit)
            return data
    except (OSError, ValueError, struct.error, IndexError) as exc:
        raise HostileInput(f"HWP stream {name} is unreadable ({exc})", code="corrupt") from None


def _preview(ole: olefile.OleFileIO, budget: Budget) -> str:
    if not ole.exists("PrvText"):
        return ""
    return _stream(ole, "PrvText", budget.limits.max_file_bytes).decode("utf-16-le", "replace")


def _inflate(data: bytes, budget: Budget) -> bytes:
    """Raw-deflate with a cap: a section that would unpack past the file limit is refused."""
    cap = budget.limits.max_file_bytes
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(data, cap + 1)
    except zlib.error as exc:
        raise HostileInput(f"HWP section does not inflate ({exc})", code="corrupt") from None
    if len(out) > cap or inflater.unconsumed_tail:
        raise LimitExceeded("HWP section unpacks past the size limit", code="zip-bomb")
    budget.spend(len(out))
    return out


def paragraph_text(records: bytes) -> str:
    """Text of every HWPTAG_PARA_TEXT record in a section's record stream."""
    parts: list[str] = []
    offset = 0
    while offset + 4 <= len(records):
        (header,) = struct.unpack_from("<I", records, offset)
        offset += 4
        tag, size = header & 0x3FF, header >> 20
        if size == _EXTENDED_SIZE:
            if offset + 4 > len(records):
                break
            (size,) = struct.unpack_from("<I", records, offset)
            offset += 4
        if tag == HWPTAG_PARA_TEXT:
            parts.append(_decode_para_text(records[offset : offset + size]))
            parts.append("\n")
        offset += size
    return "".join(parts)


def _decode_para_text(data: bytes) -> str:
    """PARA_TEXT units to text: 8-unit controls become a tab (code 9) or a space, 1-unit
    controls a line break (10, 13) or a space; regular expressions rather than a loop per
    unit, as long documents have hundreds of thousands of them."""
    units = data[: len(data) // 2 * 2].decode("utf-16-le", "surrogatepass")
    units = _TAB_CONTROL_RE.sub("\t", units)
    units = _WIDE_CONTROL_RE.sub(" ", units)
    units = units.translate(_NARROW_CONTROLS)
    # Lone surrogates (broken pairs) become replacement characters; pairs are joined.
    return units.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
