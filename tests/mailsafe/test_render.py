"""mailsafe.render and mailsafe.htmlsafe: pictures of mail, nothing fetched, Korean text right."""

from __future__ import annotations

import contextlib
import io
import math
import urllib.request
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from mailsafe.errors import InternalError, LimitExceeded
from mailsafe.htmlsafe import sanitize_html
from mailsafe.mime import parse_message
from mailsafe.mupdf import pymupdf
from mailsafe.payload import decode_package, encode_package
from mailsafe.render import render_message
from mailsafe.render.browser import close_kept_alive, render_kept_alive
from mailsafe.render.chromium import render_screenshot
from mailsafe.render.document import compose
from mailsafe.render.encode import encode_image
from mailsafe.render.options import RenderOptions
from mailsafe.render.story import page_scale, render_tiles
from tests.support.mailmaker import (
    KOREAN,
    TYPICAL_HTML,
    html_mail,
    korean_legacy_mail,
    mail_with_attachment,
    pdf_of_sizes,
    pdf_pages,
    png,
)
from tests.support.trap import hostile_html, trap_server

PYMUPDF = RenderOptions()
CHROMIUM = RenderOptions(backend="chromium")
SHORT_CHROMIUM = RenderOptions(backend="chromium", chromium_timeout_s=8.0)
KEPT_ALIVE = RenderOptions(backend="chromium", chromium_keep_alive=True)


@pytest.fixture(autouse=True, scope="module")
def _no_browser_left_running() -> object:
    """Playwright's sync API runs an event loop in this thread while the browser lives; stop it
    so that later tests can use asyncio.run()."""
    yield
    close_kept_alive()


def _image(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


# ------------------------------------------------------------------ Korean text


@pytest.mark.parametrize("charset", ["euc-kr", "ks_c_5601-1987", "cp949", "iso-2022-kr"])
def test_korean_legacy_mail_renders_korean_text(charset: str) -> None:
    mail = parse_message(korean_legacy_mail(charset))
    composition = compose(mail, PYMUPDF)
    text = render_tiles(composition.html, PYMUPDF, 2, with_text=True).text
    expected = KOREAN if charset != "iso-2022-kr" else KOREAN.replace("똠", "돔")
    assert expected in text.replace("\n", " ")  # the body
    assert text.count("한국어") >= 2  # subject in the header block too
    assert "\ufffd" not in text


def test_korean_mail_renders_to_a_text_image_and_text_layer() -> None:
    rendered = render_message(korean_legacy_mail("ks_c_5601-1987"), PYMUPDF)
    assert rendered.manifest.status == "rendered"
    assert rendered.manifest.headers.subject == KOREAN
    assert rendered.text is not None
    assert KOREAN in rendered.text
    page = rendered.manifest.pages[0]
    assert (page.media_type, page.width) == ("image/png", 800)
    image = _image(rendered.images[0])
    assert image.mode == "L"  # a text page is grey PNG
    assert image.getextrema() == (0, 255) or image.getextrema()[0] < 64  # ink on paper


# ------------------------------------------------------------------ nothing is fetched


def test_trap_server_counts_requests() -> None:
    with trap_server() as trap:
        urllib.request.urlopen(f"{trap.base}/control", timeout=5).read()
        assert trap.requests == ["GET /control"]


@pytest.mark.parametrize(
    "options", [PYMUPDF, CHROMIUM, KEPT_ALIVE], ids=["pymupdf", "chromium", "chromium-kept-alive"]
)
def test_hostile_html_mail_fetches_nothing(options: RenderOptions) -> None:
    with trap_server() as trap:
        raw = html_mail(hostile_html(trap.base))
        rendered = render_message(raw, options)
        assert rendered.manifest.status == "rendered"
        assert trap.requests == []
    assert any("remote reference" in note for note in rendered.manifest.notes)
    assert "본문" in (rendered.text or "")
    assert "http" not in (rendered.text or "")


def test_chromium_walls_hold_even_without_the_sanitiser() -> None:
    """Raw hostile HTML straight into the browser: the flags and profile alone block fetches."""
    with trap_server() as trap:
        # with the meta refresh the browser navigates to an unreachable page; without it, it
        # lays out the rest; both must send nothing
        with_refresh = hostile_html(trap.base)
        without_refresh = "\n".join(
            line for line in with_refresh.splitlines() if "refresh" not in line
        )
        tiles, _ = render_screenshot(without_refresh, CHROMIUM, 1)
        assert tiles
        # An unreachable page gives no screenshot, or headless Chromium waits on it until the
        # time limit (seen under load in CI); either way nothing may reach the trap.
        with contextlib.suppress(InternalError, LimitExceeded):
            render_screenshot(with_refresh, SHORT_CHROMIUM, 1)
        assert trap.requests == []


def test_kept_alive_browser_walls_hold_without_the_sanitiser() -> None:
    with trap_server() as trap:
        page = "\n".join(
            line for line in hostile_html(trap.base).splitlines() if "refresh" not in line
        )
        for _ in range(2):  # the second mail reuses the browser
            tiles, _ = render_kept_alive(page, KEPT_ALIVE, 1)
            assert tiles
        assert trap.requests == []


def test_kept_alive_browser_has_javascript_off() -> None:
    html = '<p id="x">JS OFF</p><script>document.getElementById("x").textContent = "JS ON"</script>'
    with_script, _ = render_kept_alive(html, KEPT_ALIVE, 1)
    reference, _ = render_kept_alive('<p id="x">JS OFF</p>', KEPT_ALIVE, 1)
    assert with_script[0].tobytes() == reference[0].tobytes()


def test_chromium_javascript_is_off() -> None:
    html = '<p id="x">JS OFF</p><script>document.getElementById("x").textContent = "JS ON"</script>'
    with_js, _ = render_screenshot(html.replace("JS OFF", "_"), CHROMIUM, 1)
    without_js, _ = render_screenshot(html, CHROMIUM, 1)
    blank, _ = render_screenshot("<p>_</p>", CHROMIUM, 1)
    # with scripts off the first page shows "_" exactly like the blank reference
    assert with_js[0].tobytes() == blank[0].tobytes()
    assert without_js[0].tobytes() != blank[0].tobytes()


def test_sanitiser_output_has_no_url_left() -> None:
    safe = sanitize_html(hostile_html("http://127.0.0.1:9"), lambda src: None)
    lowered = safe.html.lower()
    for needle in ("127.0.0.1", "http", "url(", "@import", "<script", "<iframe", "<link", "<meta",
                   "<base", "srcset", "background=", "onload", "<svg", "poster", "file:"):  # fmt: skip
        assert needle not in lowered, needle
    assert safe.dropped_remote >= 12
    assert "본문" in safe.html


def test_sanitiser_keeps_layout_and_cid_images() -> None:
    logo = png(120, 40, (20, 80, 160))
    rendered = render_message(html_mail(TYPICAL_HTML, images={"logo": logo}), PYMUPDF)
    assert rendered.manifest.status == "rendered"
    assert [p.source for p in rendered.manifest.pages] == ["body"]  # logo shown inside the body
    assert rendered.manifest.withheld == ()
    tile = _image(rendered.images[0]).convert("RGB")
    assert (20, 80, 160) in {c for _, c in tile.getcolors(1 << 20)}  # the logo's blue is there


# ------------------------------------------------------------------ attachments and limits


def test_pdf_attachment_pages_are_rendered_up_to_the_page_cap() -> None:
    raw = mail_with_attachment(pdf_pages(14), "report.pdf", "application", "pdf")
    rendered = render_message(raw, PYMUPDF)
    pdf_pages_shown = [p for p in rendered.manifest.pages if p.source == "attachment:report.pdf"]
    assert len(pdf_pages_shown) == PYMUPDF.max_pdf_pages
    assert any("10 of 14 pages" in n for n in rendered.manifest.notes)


@pytest.mark.parametrize(
    "size",
    [(4_000, 5_000), (3_370, 4_768), (6_000, 3_000), (595, 40_000), (7_000, 7_000)],
    ids=["4000x5000", "2A0", "wide", "long-receipt", "7000-square"],
)
def test_a_pdf_page_over_the_pixel_cap_is_scaled_under_it(size: tuple[int, int]) -> None:
    """Too many pixels at screen resolution, but readable smaller: shown scaled down, and never
    one pixel over the cap (the package contract), which would cost the whole mail."""
    raw = mail_with_attachment(pdf_of_sizes([size]), "big.pdf", "application", "pdf")
    rendered = render_message(raw, PYMUPDF)
    [page] = [p for p in rendered.manifest.pages if p.source == "attachment:big.pdf"]
    assert page.width * page.height <= PYMUPDF.max_image_pixels
    assert page.width * page.height > PYMUPDF.max_image_pixels * 0.98  # as large as allowed
    assert decode_package(encode_package(rendered)).manifest.pages == rendered.manifest.pages


@settings(max_examples=300, deadline=None)
@given(st.floats(3, 14_400), st.floats(3, 14_400))
def test_page_scale_never_exceeds_the_pixel_cap(width: float, height: float) -> None:
    """Any page PDF allows (3 to 14,400 pt a side): drawn at 96 dpi, smaller to fit the cap
    (even with MuPDF's outward rounding), or refused below the readable minimum."""
    cap, minimum = PYMUPDF.max_image_pixels, PYMUPDF.min_pdf_dpi
    scale = page_scale(width, height, dpi=96, max_pixels=cap, min_dpi=minimum)
    if scale is None:  # refused only when even the minimum resolution is (about) over the cap
        assert width * height * (minimum / 72) ** 2 > cap * 0.99
        return
    assert minimum / 72 <= scale <= 96 / 72
    assert (math.ceil(width * scale) + 1) * (math.ceil(height * scale) + 1) <= cap


def test_picture_over_the_pixel_cap_is_withheld() -> None:
    buffer = io.BytesIO()
    Image.new("L", (6000, 5000)).save(buffer, "PNG")  # 30 Mpx, a few KB compressed
    raw = mail_with_attachment(buffer.getvalue(), "bomb.png", "image", "png")
    rendered = render_message(raw, PYMUPDF)
    assert [(w.filename, w.reason) for w in rendered.manifest.withheld] == [
        ("bomb.png", "bad_or_too_big_image")
    ]


def test_picture_is_reencoded_without_metadata() -> None:
    buffer = io.BytesIO()
    exif = Image.Exif()
    exif[0x010F] = "SecretCamera"
    Image.new("RGB", (300, 200), (10, 200, 30)).save(buffer, "JPEG", exif=exif)
    rendered = render_message(
        mail_with_attachment(buffer.getvalue(), "p.jpg", "image", "jpeg"), PYMUPDF
    )
    data = rendered.images[-1]
    assert b"SecretCamera" not in data
    assert not _image(data).getexif()


def test_executables_are_withheld_with_hash() -> None:
    rendered = render_message(
        mail_with_attachment(b"MZ\x90\x00" * 100, "setup.exe", "application", "octet-stream"),
        PYMUPDF,
    )
    (withheld,) = rendered.manifest.withheld
    assert (withheld.filename, withheld.size, withheld.reason) == (
        "setup.exe",
        400,
        "not_rendered_type",
    )
    assert len(withheld.sha256) == 64


def test_long_mail_is_cut_at_the_tile_cap() -> None:
    options = RenderOptions(max_body_tiles=3)
    raw = html_mail("<p>긴 메일 long mail line</p>" * 3000)
    rendered = render_message(raw, options)
    assert len(rendered.manifest.pages) == 3
    assert any("longer than 3 tiles" in n for n in rendered.manifest.notes)


def test_byte_budget_is_kept() -> None:
    options = RenderOptions(byte_budget=100_000)  # the 11 pages take ~200 KB
    raw = mail_with_attachment(pdf_pages(10), "report.pdf", "application", "pdf")
    rendered = render_message(raw, options)
    assert sum(len(i) for i in rendered.images) <= 100_000
    assert any("byte budget" in n for n in rendered.manifest.notes)


def test_text_layer_can_be_turned_off() -> None:
    assert (
        render_message(korean_legacy_mail("euc-kr"), RenderOptions(text_layer=False)).text is None
    )


def test_encoder_choice() -> None:
    grey = Image.new("RGB", (100, 100), (255, 255, 255))
    assert encode_image(grey, 80).media_type == "image/png"
    assert _image(encode_image(grey, 80).data).mode == "L"
    noise = Image.effect_noise((200, 200), 80).convert("RGB")
    noisy_colour = Image.merge(
        "RGB",
        (noise.getchannel(0), noise.getchannel(0).rotate(90), noise.getchannel(0).rotate(180)),
    )
    assert encode_image(noisy_colour, 80).media_type == "image/jpeg"


# ------------------------------------------------------------------ the Korean font


def _fonts_of(document: str, options: RenderOptions) -> dict[str, set[str]]:
    """Text -> the fonts its spans were set in, from the tiles' display lists."""
    from mailsafe.render.story import display_lists

    found: dict[str, set[str]] = {}
    for listing in display_lists(document, options, 1)[0]:
        page = pymupdf.TextPage(listing.get_textpage()).extractDICT()
        for block in page["blocks"]:
            for line in block.get("lines", []):
                for span in line["spans"]:
                    found.setdefault(span["text"].strip(), set()).add(span["font"])
    return found


def test_korean_headings_are_bold_in_nanum_gothic_and_the_built_in_font_is_the_fallback() -> None:
    from mailsafe.render.story import BOLD_FONT, REGULAR_FONT

    folder = Path(RenderOptions().font_dir)
    # .ci/run installs fonts-nanum: a missing font must fail here, not quietly fall back
    assert (folder / REGULAR_FONT).is_file()
    assert (folder / BOLD_FONT).is_file()
    document = "<h1>월간 소식</h1><p>본문입니다</p><pre>코드 = 1</pre>"
    fonts = _fonts_of(document, PYMUPDF)
    assert fonts["월간 소식"] == {"NanumGothic Bold"}
    assert fonts["본문입니다"] == {"NanumGothic Regular"}
    assert fonts["코드 = 1"] == {"NanumGothicCoding Regular"}  # fixed width stays fixed width
    for missing in ("", str(folder / "nowhere")):
        fallback = _fonts_of(document, RenderOptions(font_dir=missing))
        assert not any("Nanum" in f for names in fallback.values() for f in names), fallback
        assert fallback["월간"] == {"Droid Sans Fallback Regular"}  # one weight only
