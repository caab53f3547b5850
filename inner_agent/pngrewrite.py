"""Re-encode a simple PNG without decoding it to pixels: fresh container, fresh compression.

The outer agent's pages are plain PNGs (8-bit grey, or a palette of up to 256 colours). For
those, decoding to pixels and encoding again with Pillow is most of the inner agent's CPU,
yet the pixels never change: what matters is that nothing but them crosses. So this module

1. walks the chunks (every length and CRC checked) and takes only IHDR, PLTE, IDAT and IEND;
2. checks the header (size under the pixel cap *before* anything is inflated, a colour type and
   bit depth PNG allows, no interlacing);
3. inflates the image data under a hard limit and requires exactly the bytes the header
   implies, every row starting with a valid filter type (0-4);
4. writes a new file: our own IHDR, the palette padded so every index is valid, the same
   filtered rows compressed again by us (ISA-L, fast), IEND.

The result decodes to exactly the pixels the original does. Of the original only the filtered
rows travel on, which is the pixels in a reversible form: its compressed bit stream, chunk
layout, ancillary chunks and trailing bytes are all gone. Anything outside this narrow shape
(interlaced, 16-bit, ancillary chunks, transparency) returns None and takes the slower Pillow
path in :mod:`inner_agent.images`.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from isal import isal_zlib

from mailsafe.pngwrite import PNG_SIGNATURE, write_png

__all__ = ["PNG_SIGNATURE", "PngRefused", "RewrittenPng", "rewrite_png"]

# Colour type -> (samples per pixel, allowed bit depths). PNG 1.2, table 11.1, minus 16-bit.
_COLOUR_TYPES = {
    0: (1, (1, 2, 4, 8)),  # grey
    2: (3, (8,)),  # RGB
    3: (1, (1, 2, 4, 8)),  # palette
    4: (2, (8,)),  # grey + alpha
    6: (4, (8,)),  # RGBA
}
# Chunks the fast path understands; any other chunk sends the image to the Pillow path.
_CRITICAL = {b"IHDR", b"PLTE", b"IDAT", b"IEND"}
_VALID_FILTERS = bytes(range(5))
_MAX_CHUNK_BYTES = 2**31 - 1  # PNG's own limit on a chunk's length


class PngRefused(Exception):
    """The file is a broken or hostile PNG; ``code`` is the quarantine reason."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True)
class PngHeader:
    width: int
    height: int
    bit_depth: int
    colour_type: int

    @property
    def row_bytes(self) -> int:
        samples = _COLOUR_TYPES[self.colour_type][0]
        return (self.width * samples * self.bit_depth + 7) // 8

    @property
    def filtered_size(self) -> int:
        """Inflated image data: one filter byte, then the row, for every row."""
        return self.height * (1 + self.row_bytes)


@dataclass(frozen=True)
class RewrittenPng:
    data: bytes
    width: int
    height: int


def rewrite_png(untrusted: bytes, *, max_pixels: int) -> RewrittenPng | None:
    """A fresh PNG with the same pixels, None if the file is outside the fast path's shape.

    Raises PngRefused for a file no PNG reader should accept, or one over ``max_pixels``."""
    if not untrusted.startswith(PNG_SIGNATURE):
        raise PngRefused("image_decode", "not a PNG file (wrong signature)")
    chunks = _read_chunks(untrusted)
    if chunks is None:
        return None
    header_data, palette, compressed = chunks
    header = _parse_header(header_data, max_pixels)
    if header is None:
        return None
    if header.colour_type == 3 and palette is None:
        raise PngRefused("image_decode", "palette image without a PLTE chunk")
    rows = _inflate_exactly(compressed, header.filtered_size)
    if rows[:: 1 + header.row_bytes].translate(None, _VALID_FILTERS):
        raise PngRefused("image_decode", "a row has an unknown filter type")
    return RewrittenPng(_write(header, palette, rows), header.width, header.height)


def _chunks(data: bytes) -> Iterator[tuple[bytes, memoryview]]:
    """(type, payload) of every chunk up to IEND, lengths and CRCs checked; trailing bytes
    after IEND are ignored (they are not copied). Payloads are views of ``data``: the image
    data is copied once, when its chunks are joined."""
    view = memoryview(data)
    position = len(PNG_SIGNATURE)
    while True:
        if position + 12 > len(data):
            raise PngRefused("image_decode", f"file truncated in a chunk header at byte {position}")
        (length,) = struct.unpack_from(">I", data, position)
        kind = data[position + 4 : position + 8]
        end = position + 8 + length
        if length > _MAX_CHUNK_BYTES or end + 4 > len(data):
            raise PngRefused("image_decode", f"chunk at byte {position} runs past the file's end")
        (crc,) = struct.unpack_from(">I", data, end)
        if zlib.crc32(view[position + 4 : end]) != crc:
            raise PngRefused("image_decode", f"chunk {kind!r} at byte {position}: CRC mismatch")
        yield kind, view[position + 8 : end]
        if kind == b"IEND":
            return
        position = end + 4


def _read_chunks(data: bytes) -> tuple[bytes, bytes | None, bytes] | None:
    """(IHDR payload, PLTE payload or None, joined IDAT payloads); None for other chunks."""
    header: bytes | None = None
    palette: bytes | None = None
    parts: list[memoryview] = []
    previous = b""
    for kind, payload in _chunks(data):
        if kind not in _CRITICAL:
            return None  # ancillary chunks (text, gamma, transparency...): the Pillow path
        if header is None and kind != b"IHDR":
            raise PngRefused("image_decode", f"first chunk is {kind!r}, not IHDR")
        if kind == b"IHDR":
            if header is not None:
                raise PngRefused("image_decode", "more than one IHDR chunk")
            header = bytes(payload)
        elif kind == b"PLTE":
            if palette is not None or parts:
                raise PngRefused("image_decode", "PLTE repeated or after the image data")
            palette = bytes(payload)
        elif kind == b"IDAT":
            if parts and previous != b"IDAT":
                raise PngRefused("image_decode", "image data chunks are not consecutive")
            parts.append(payload)
        previous = kind
    if header is None or not parts:
        raise PngRefused("image_decode", "no header or no image data")
    return header, palette, b"".join(parts)


def _parse_header(payload: bytes, max_pixels: int) -> PngHeader | None:
    if len(payload) != 13:
        raise PngRefused("image_decode", f"IHDR is {len(payload)} bytes, not 13")
    width, height, depth, colour, method, filter_method, interlace = struct.unpack(
        ">IIBBBBB", payload
    )
    if not (0 < width < 2**31 and 0 < height < 2**31):
        raise PngRefused("image_decode", f"impossible size {width}x{height}")
    if width * height > max_pixels:
        raise PngRefused("image_pixels", f"{width}x{height} is over {max_pixels} px")
    if method != 0 or filter_method != 0 or interlace not in (0, 1):
        raise PngRefused("image_decode", "unknown compression, filter or interlace method")
    shape = _COLOUR_TYPES.get(colour)
    if interlace or shape is None or depth not in shape[1]:
        return None  # interlaced, 16-bit or unusual: valid or not, Pillow decides
    return PngHeader(width, height, depth, colour)


def _inflate_exactly(compressed: bytes, size: int) -> bytes:
    """Exactly ``size`` bytes from one complete zlib stream; never more than size+1 in memory."""
    inflater = isal_zlib.decompressobj()
    try:
        rows = inflater.decompress(compressed, size + 1)
    except isal_zlib.error as exc:  # type: ignore[misc]  # its stubs type it as an instance
        raise PngRefused("image_decode", f"image data does not inflate: {exc}") from None
    if len(rows) != size or not inflater.eof or inflater.unconsumed_tail:
        raise PngRefused(
            "image_decode",
            f"image data inflates to {len(rows)}{'+' if not inflater.eof else ''} bytes, "
            f"the header implies {size}",
        )
    if inflater.unused_data:
        raise PngRefused("image_decode", "image data continues after the end of its stream")
    return rows


def _write(header: PngHeader, palette: bytes | None, rows: bytes) -> bytes:
    full = _full_palette(palette or b"", header.bit_depth) if header.colour_type == 3 else None
    return write_png(header.width, header.height, bit_depth=header.bit_depth,
                     colour_type=header.colour_type, filtered_rows=rows, palette=full)  # fmt: skip


def _full_palette(untrusted: bytes, bit_depth: int) -> bytes:
    """The palette padded with black to 2**depth entries, so no index can point past it."""
    entries = min(len(untrusted) // 3, 1 << bit_depth)
    if entries == 0 or len(untrusted) % 3:
        raise PngRefused("image_decode", f"PLTE of {len(untrusted)} bytes is not a palette")
    return untrusted[: entries * 3].ljust(3 << bit_depth, b"\0")
