"""The PNG writer: what it writes decodes, with Pillow and with zlib, to exactly the pixels."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from mailsafe.pngwrite import GREY, PALETTE, PNG_SIGNATURE, unfiltered_rows, write_png


def _decoded(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def test_a_grey_image_round_trips_through_pillow() -> None:
    source = Image.linear_gradient("L").resize((301, 77))
    data = write_png(301, 77, bit_depth=8, colour_type=GREY,
                     filtered_rows=unfiltered_rows(source.tobytes(), 301))  # fmt: skip
    image = _decoded(data)
    assert (image.mode, image.size) == ("L", (301, 77))
    assert image.tobytes() == source.tobytes()


def test_a_palette_image_keeps_its_colours() -> None:
    pixels = bytes([0, 1, 2, 1] * 6)  # 4 x 6, indices into three colours
    palette = bytes([255, 0, 0, 0, 255, 0, 0, 0, 255])
    data = write_png(4, 6, bit_depth=8, colour_type=PALETTE,
                     filtered_rows=unfiltered_rows(pixels, 4), palette=palette)  # fmt: skip
    image = _decoded(data)
    assert image.mode == "P"
    assert image.tobytes() == pixels
    assert image.convert("RGB").getpixel((1, 0)) == (0, 255, 0)


def test_the_file_is_the_documented_chunks_with_valid_crcs() -> None:
    data = write_png(2, 1, bit_depth=8, colour_type=GREY, filtered_rows=b"\x00\x10\x20")
    assert data.startswith(PNG_SIGNATURE)
    kinds, position = [], len(PNG_SIGNATURE)
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        body = data[position + 4 : position + 8 + length]
        (crc,) = struct.unpack_from(">I", data, position + 8 + length)
        assert zlib.crc32(body) == crc
        kinds.append(body[:4])
        if body[:4] == b"IDAT":
            assert zlib.decompress(body[4:]) == b"\x00\x10\x20"
        position += 12 + length
    assert kinds == [b"IHDR", b"IDAT", b"IEND"]


def test_rows_must_be_whole_and_a_palette_image_needs_its_palette() -> None:
    with pytest.raises(ValueError, match="whole rows"):
        unfiltered_rows(b"\x00" * 7, 4)
    with pytest.raises(ValueError, match="palette"):
        write_png(1, 1, bit_depth=8, colour_type=PALETTE, filtered_rows=b"\x00\x00")
