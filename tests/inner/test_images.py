from __future__ import annotations

import io

import pytest
from PIL import Image

from inner_agent.images import ImageRefused, check_image, shrink_image
from tests.inner.helpers import png


def _jpeg() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (20, 10), "red").save(buffer, "JPEG")
    return buffer.getvalue()


def test_png_is_decoded_and_written_fresh() -> None:
    original = png(40, 30) + b"hidden trailing payload"
    image = check_image(original, "image/png", max_pixels=10_000, reencode=True)
    assert (image.width, image.height, image.media_type) == (40, 30, "image/png")
    assert b"hidden trailing payload" not in image.data
    Image.open(io.BytesIO(image.data)).load()


def test_without_reencode_checked_bytes_pass_unchanged() -> None:
    data = png(10, 10)
    assert check_image(data, "image/png", max_pixels=10_000, reencode=False).data == data


def test_pixel_cap_is_checked_before_decoding() -> None:
    buffer = io.BytesIO()
    Image.new("1", (6000, 6000)).save(buffer, "PNG")  # 36 Mpx, a few kB on the wire
    with pytest.raises(ImageRefused) as refused:
        check_image(buffer.getvalue(), "image/png", max_pixels=24_000_000, reencode=True)
    assert refused.value.code == "image_pixels"


@pytest.mark.parametrize(
    ("data", "media_type", "code"),
    [
        (png()[:60], "image/png", "image_decode"),  # truncated
        (_jpeg(), "image/png", "image_decode"),  # declared type is not the real one
        (b"GIF89a....", "image/gif", "image_type"),  # kind not allowed
        (b"\x89PNG\r\n\x1a\n" + b"\x00" * 100, "image/png", "image_decode"),  # garbage after magic
    ],
)
def test_bad_images_are_refused_with_a_code(data: bytes, media_type: str, code: str) -> None:
    with pytest.raises(ImageRefused) as refused:
        check_image(data, media_type, max_pixels=10_000_000, reencode=True)
    assert refused.value.code == code


def test_jpeg_stays_jpeg_and_shrink_halves_the_area() -> None:
    image = check_image(_jpeg(), "image/jpeg", max_pixels=10_000, reencode=True)
    assert image.media_type == "image/jpeg"
    big = check_image(png(400, 200), "image/png", max_pixels=10**6, reencode=True)
    small = shrink_image(big)
    assert small.width * small.height <= big.width * big.height // 2 + 400


def test_grey_pages_keep_their_exact_pixels() -> None:
    grey = Image.linear_gradient("L").resize((64, 64))
    buffer = io.BytesIO()
    grey.save(buffer, "PNG")
    image = check_image(buffer.getvalue(), "image/png", max_pixels=10_000, reencode=True)
    again = Image.open(io.BytesIO(image.data)).convert("L")
    assert again.tobytes() == grey.tobytes()
