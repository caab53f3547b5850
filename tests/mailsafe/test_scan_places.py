"""The renderer masks by what the outbound scan found, wherever the scan found it (issue A7):

- a value the scan read whole is found in another drawing of the same text, broken over lines
  (``mailsafe.positions.value_spans``; ``Hiding.values``);
- the word boxes the scan read in a forwarded mail's picture or an HTML body's ``data:``
  picture are painted, the file found by its bytes (``Masker.learn_files``);
- with ``pictures_by_content``, a picture sent as ``application/octet-stream`` is drawn.

Pure or in-process; the held mail's preview as the approver sees it is tested in
tests/inner/outbound/test_preview_scan_places.py."""

from __future__ import annotations

import base64
import email.message
import io
from email.policy import SMTP

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from mailsafe.errors import InternalError
from mailsafe.extract import ExtractLimits, extract_locations, file_places
from mailsafe.extract.limits import Budget
from mailsafe.extract.ocr import picture_text
from mailsafe.mime import parse_message
from mailsafe.pii import PII_TYPES, mask_value
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.positions import value_spans
from mailsafe.render import render_message
from mailsafe.render.masking import Masker
from mailsafe.render.masking.text import Hiding, mask_plain
from mailsafe.render.options import RenderOptions
from mailsafe.scan import scan_message
from tests.support.documents import make_mail, make_screenshot

RRN = "800101-1234567"
PHONE = "010-2345-6789"
EMAIL = "chulsoo.kim.sales@naver.com"
ON = ExtractLimits(ocr_languages="kor+eng")
ALL = frozenset(PII_TYPES)


# ------------------------------------------------------------------------------ values


@pytest.mark.parametrize(
    ("text", "spans"),
    [
        (f"메일 {EMAIL} 끝", [(3, 3 + len(EMAIL))]),
        ("메일 chulsoo.kim.sales@nav\ner.com 끝", [(3, 31)]),  # wrapped in a narrow cell
        ("chulsoo.kim.sa\u00adles@naver.com", [(0, 28)]),  # a soft hyphen at the break
        (f"{EMAIL}\t{EMAIL}", [(0, 27), (28, 55)]),
        ("chulsoo.kim.sales@naver.co", []),  # a different value is not this one
    ],
)
def test_a_value_is_found_in_another_drawing_of_its_text(
    text: str, spans: list[tuple[int, int]]
) -> None:
    assert value_spans(text, EMAIL) == spans


@given(
    before=st.text(max_size=20),
    after=st.text(max_size=20),
    breaks=st.lists(st.sampled_from([" ", "\n", "\t", "\u00ad", "\u200b"]), max_size=26),
)
def test_a_value_broken_anywhere_is_found_and_its_span_holds_exactly_it(
    before: str, after: str, breaks: list[str]
) -> None:
    """Whatever breaks a drawing puts between the value's characters, the value is found, and
    the span found holds the value's characters and the breaks between them, nothing else."""
    drawn = "".join(char + (breaks[i] if i < len(breaks) else "") for i, char in enumerate(EMAIL))
    text = f"{before}{drawn}{after}"
    spans = value_spans(text, EMAIL)
    assert any(text[start:end] == drawn for start, end in spans), spans
    for start, end in spans:
        squeezed = "".join(
            c for c in text[start:end] if not c.isspace() and c not in "\u00ad\u200b"
        )
        assert squeezed == EMAIL


def test_a_value_too_short_to_tell_apart_is_not_looked_for() -> None:
    assert value_spans("a@b.k and a@b.k", "a@b.k") == [(0, 5), (10, 15)]
    assert value_spans("12 34 12 34", "1 2 3") == []


def test_known_values_are_masked_where_the_detector_does_not_see_them_whole() -> None:
    """A wrapped address: the detector sees no address (or half of one); the scan's value is
    hidden whole over the break, and the rest of the text stays."""
    drawn = "담당 chulsoo.kim.sa\nles@naver.com 영업부"
    alone, _ = mask_plain(drawn, ALL, hiding=Hiding(whole=True))
    assert "chulsoo.kim.sa" in alone  # the detector alone: the first line shown
    masked, found = mask_plain(drawn, ALL, hiding=Hiding(whole=True, values=(("email", EMAIL),)))
    assert masked == "담당 *******.***.**\n***@*****.*** 영업부"
    assert [f.type for f in found] == ["email"]
    plain, _ = mask_plain(f"담당 {EMAIL}", ALL, hiding=Hiding(values=(("email", EMAIL),)))
    assert plain == f"담당 {mask_value(EMAIL, 'email')}"  # whole on a line: its usual form


def test_values_cross_to_a_worker_and_nonsense_is_refused() -> None:
    options = RenderOptions(mask_types=ALL, mask_values=(("email", EMAIL),))
    assert RenderOptions.from_json(options.to_json()).mask_values == (("email", EMAIL),)
    for bad in (("name", EMAIL), ("email", " "), ("email", "x" * 513), ("email", 5)):
        with pytest.raises(InternalError):
            RenderOptions(mask_values=(bad,))  # type: ignore[arg-type]


# ------------------------------------------------------------------- pictures by bytes


def _screenshot() -> bytes:
    return make_screenshot(["고객 명단", f"김철수 {RRN} {PHONE}", "담당 영업부"])


def _forwarded(picture: bytes, *, as_scanned_pdf: bool = False) -> bytes:
    inner = email.message.EmailMessage()
    inner["From"], inner["To"], inner["Subject"] = "a@corp.example", "b@x.example", "원본"
    inner.set_content("원본 메일입니다.")
    if as_scanned_pdf:
        inner.add_attachment(_scanned_pdf(picture), maintype="application", subtype="pdf",
                             filename="사본.pdf")  # fmt: skip
    else:
        inner.add_attachment(picture, maintype="image", subtype="png", filename="명단.png")
    outer = email.message.EmailMessage()
    outer["From"], outer["To"], outer["Subject"] = "kim@corp.example", "p@x.example", "전달"
    outer.set_content("전달합니다.")
    outer.add_attachment(inner)
    return outer.as_bytes(policy=SMTP)


def _scanned_pdf(picture: bytes) -> bytes:
    from mailsafe.mupdf import pymupdf

    width, height = Image.open(io.BytesIO(picture)).size
    document = pymupdf.open()
    page = document.new_page()
    page.insert_image(pymupdf.Rect(60, 80, 60 + width, 80 + height), stream=picture)
    data: bytes = document.tobytes()
    document.close()
    return data


def _forwarded_scan(picture: bytes) -> bytes:
    return _forwarded(picture, as_scanned_pdf=True)


def _with_data_picture(picture: bytes) -> bytes:
    encoded = base64.b64encode(picture).decode()
    return make_mail(
        text=None, html=f'<p>명단입니다</p><img src="data:image/png;base64,{encoded}">'
    )


def _scan_boxes(raw: bytes) -> tuple[tuple[str, object], ...]:
    result = scan_message(raw, default_rules(), SenderInfo("kim@corp.example"), limits=ON)
    return tuple(
        (located.finding.type, located.position)
        for located in result.findings
        if located.position.boxes
    )


def test_file_places_name_each_file_as_the_scan_does() -> None:
    raw = _forwarded(_screenshot())
    parsed = parse_message(raw)
    named = {where for where, _ in file_places(parsed)}
    assert named == {"forwarded[1].attachment:명단.png"}
    scanned = {f.where for f in extract_locations(parsed, ON)}
    assert named <= scanned


@pytest.mark.parametrize(
    "build", [_forwarded, _with_data_picture, _forwarded_scan], ids=["forwarded", "data", "pdf"]
)
def test_the_scans_boxes_are_painted_on_a_forwarded_or_data_picture(build) -> None:  # type: ignore[no-untyped-def]
    """A renderer with no OCR of its own paints the boxes the scan read in a forwarded
    mail's picture, in an HTML body's data: picture and on a forwarded mail's scanned PDF
    page: the number is no longer read in
    what it draws, the words around it are. Without the boxes, the number is read (the
    control: the picture is drawn, and nothing else paints it)."""
    raw = build(_screenshot())
    boxes = _scan_boxes(raw)
    assert {kind for kind, _ in boxes} >= {"rrn", "phone"}, boxes
    told = RenderOptions(mask_types=ALL, ocr_languages="", mask_positions=boxes)  # type: ignore[arg-type]
    painted = _read_pictures(render_message(raw, told))
    assert "명단" in painted, painted
    assert "1234567" not in painted, painted
    assert "23456789" not in painted.replace("-", ""), painted
    unpainted = _read_pictures(render_message(raw, RenderOptions(mask_types=ALL, ocr_languages="")))
    assert "1234567" in unpainted, unpainted


def _read_pictures(rendered) -> str:  # type: ignore[no-untyped-def]
    return "".join(
        "".join(picture_text(image, Budget(ON)).split())
        for image, page in zip(rendered.images, rendered.manifest.pages, strict=True)
        if page.source != "body" or page.index == 0
    )


def test_a_picture_the_masker_was_not_told_of_is_not_painted_by_anothers_bytes() -> None:
    """The boxes follow the file's bytes: another picture of the same mail is left as it is."""
    shot = _screenshot()
    raw = _forwarded(shot)
    boxes = _scan_boxes(raw)
    masker = Masker(RenderOptions(mask_types=ALL, ocr_languages="", mask_positions=boxes))  # type: ignore[arg-type]
    masker.learn_files(parse_message(raw))
    picture = Image.open(io.BytesIO(shot)).convert("RGB")
    other = masker.picture(picture, "attachment:다른.png", digest="0" * 64)
    assert other.tobytes() == picture.tobytes()
    import hashlib

    own = masker.picture(picture, "attachment:명단.png", digest=hashlib.sha256(shot).hexdigest())
    assert own.tobytes() != picture.tobytes()


# ------------------------------------------------------------------- pictures by content


def test_a_picture_sent_as_octet_stream_is_drawn_when_pictures_go_by_content() -> None:
    raw = make_mail(attachments=[("명단.png", _screenshot()), ("a.bin", b"BMx not a picture")])
    by_label = render_message(raw, RenderOptions())
    assert "attachment:명단.png" not in {p.source for p in by_label.manifest.pages}
    by_content = render_message(raw, RenderOptions(pictures_by_content=True))
    assert "attachment:명단.png" in {p.source for p in by_content.manifest.pages}
    withheld = {w.filename: w.reason for w in by_content.manifest.withheld}
    assert withheld == {"a.bin": "bad_or_too_big_image"}  # looked like a BMP, did not decode
