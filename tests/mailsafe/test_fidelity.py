"""Issue 18.4: fidelity defects seen in real-world mail, each reproduced by a mail of our own.

Each test here failed on the code before its fix (the docstring says how it failed).
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import NamedTuple

import pytest

from mailsafe.charsets import decode_bytes
from mailsafe.extract.limits import Budget, ExtractLimits
from mailsafe.extract.ocr import picture_text
from mailsafe.mime import OLE_MAGIC, decode_header_text, parse_message
from mailsafe.mupdf import pymupdf
from mailsafe.render import render_message
from mailsafe.render.document import compose
from mailsafe.render.drawn import BREAK_EVERY, drawn_html, drawn_text
from mailsafe.render.options import RenderOptions
from mailsafe.render.story import display_lists
from tests.support.cfb import build_cfb

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
BODY_B64 = base64.encodebytes("안녕하세요, 견적서 보내드립니다. quotation attached\n".encode() * 3)


def _alternative(boundary: bytes, close: bytes, declared: bytes | None = None) -> bytes:
    """A plain + HTML mail, both base64 (as Korean webmail sends), closed by ``close``."""
    declared = boundary if declared is None else declared
    return (
        b"From: a@example.com\nSubject: t\nMIME-Version: 1.0\n"
        b'Content-Type: multipart/alternative; boundary="' + declared + b'"\n\n'
        b"--" + boundary + b"\nContent-Type: text/plain; charset=utf-8\n"
        b"Content-Transfer-Encoding: base64\n\n" + BODY_B64 + b"--" + boundary + b"\n"
        b"Content-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: base64\n\n"
        + BODY_B64
        + close
        + b"\n"
    )


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize(
    "declared",
    [
        b"=_alternative\n 0036A4B6482581B6_=",  # Lotus Notes: a space in the boundary, folded there
        b"=_alternative\r\n 0036A4B6482581B6_=",
        b"----=_NextPart_000_0012\n\t_01D2AB34",  # folded where there was no space at all
    ],
)
def test_boundary_folded_onto_a_continuation_line_keeps_the_body(
    declared: bytes, *, fast_path: bool
) -> None:
    """Before: the boundary kept the line break, no delimiter matched, and the body became one
    withheld 'part.bin' of type multipart/alternative (only the headers were drawn)."""
    boundary = declared.replace(b"\r", b"").replace(b"\n\t", b"").replace(b"\n", b"")
    raw = _alternative(boundary, b"--" + boundary + b"--", declared=declared)
    mail = parse_message(raw, fast_path=fast_path)
    assert mail.text is not None
    assert "견적서" in mail.text
    assert mail.html is not None
    assert "견적서" in mail.html
    assert mail.attachments == ()


BOUNDARY = b"----=_Part_123_456.789"


@pytest.mark.parametrize(
    "close",
    [
        b"--" + BOUNDARY + b"-",  # one dash short
        b"-" + BOUNDARY + b"--",  # one leading dash short
        b"--" + BOUNDARY + b"--x",
        b"--" + BOUNDARY + b" --",
    ],
)
def test_slightly_broken_closing_boundary_keeps_the_body(close: bytes) -> None:
    """Before: the broken close line stayed at the end of the base64 HTML part, its '=' and
    letters made the base64 undecodable, and the HTML body shown was the raw base64."""
    mail = parse_message(_alternative(BOUNDARY, close))
    assert mail.html is not None
    assert "견적서" in mail.html
    assert "PART" not in mail.html.upper()
    assert mail.text is not None
    assert "_Part_" not in mail.text


def test_broken_closing_boundary_is_not_left_in_a_plain_text_body() -> None:
    """Before: the plain body ended in the broken delimiter line '--XYZ-'."""
    raw = (
        b"From: a@example.com\nSubject: t\n"
        b'Content-Type: multipart/mixed; boundary="XYZ"\n\n'
        b"--XYZ\nContent-Type: text/plain\n\nhello body\n--XYZ-\n"
    )
    assert parse_message(raw).text == "hello body"


INNER_MAIL = (
    "From: =?utf-8?B?6rmA7LKg7IiY?= <kim@example.com>\n"
    "Subject: =?utf-8?B?" + base64.b64encode("안쪽 메일".encode()).decode() + "?=\n"
    "Content-Type: text/plain; charset=utf-8\n\n안쪽 본문입니다.\n"
).encode()


@pytest.mark.parametrize("fast_path", [True, False])
@pytest.mark.parametrize("encoding", ["base64", "quoted-printable"])
def test_transfer_encoded_attached_mail_is_shown_as_a_mail(
    encoding: str, *, fast_path: bool
) -> None:
    """Before: the attached mail's body was its base64 text, with no subject or sender."""
    import quopri

    encoded = (
        base64.encodebytes(INNER_MAIL) if encoding == "base64" else quopri.encodestring(INNER_MAIL)
    )
    raw = (
        b"From: a@example.com\nSubject: outer\n"
        b"Content-Type: multipart/mixed; boundary=XYZ\n\n"
        b"--XYZ\nContent-Type: text/plain\n\nsee attached\n"
        b"--XYZ\nContent-Type: message/rfc822\nContent-Transfer-Encoding: "
        + encoding.encode()
        + b"\nContent-Disposition: attachment; filename=fw.eml\n\n"
        + encoded
        + b"--XYZ--\n"
    )
    mail = parse_message(raw, fast_path=fast_path)
    (inner,) = mail.forwarded
    assert inner.subject == "안쪽 메일"
    assert inner.from_[0].display == "김철수"
    assert inner.text is not None
    assert inner.text.strip() == "안쪽 본문입니다."


JAPANESE = "日本語のメールです。会議は明日の午後三時からです。"


@pytest.mark.parametrize("codec", ["euc_jp", "cp932"])
def test_8bit_japanese_labelled_iso_2022_jp_decodes(codec: str) -> None:
    """Before: ISO-2022-JP is 7-bit, the strict decode failed, and every character came out
    as U+FFFD."""
    assert decode_bytes(JAPANESE.encode(codec), "iso-2022-jp") == JAPANESE


def test_8bit_japanese_body_labelled_iso_2022_jp_decodes_in_a_mail() -> None:
    raw = (
        b"From: a@example.com\nSubject: t\n"
        b"Content-Type: text/plain; charset=ISO-2022-JP\nContent-Transfer-Encoding: 8bit\n\n"
        + JAPANESE.encode("euc_jp")
        + b"\n"
    )
    text = parse_message(raw).text
    assert text is not None
    assert JAPANESE in text
    assert "\ufffd" not in text


SUBJECT_B64 = base64.b64encode("견적서 제출 건".encode()).decode()


@pytest.mark.parametrize(
    "header",
    [
        "=?utf-8?Q?=EA=B2=AC=EC=A0=81=EC=84=9C =EC=A0=9C=EC=B6=9C =EA=B1=B4?=",  # raw spaces in Q
        "=?utf-8?B?" + SUBJECT_B64[:12] + " " + SUBJECT_B64[12:] + "?=",  # a space in base64
        "=?utf-8?B?" + SUBJECT_B64,  # no closing ?= (cut by a mailer)
        "=?utf-8?B?" + SUBJECT_B64 + "?",
    ],
)
def test_invalid_encoded_word_in_subject_is_decoded(header: str) -> None:
    """Before: the Subject was drawn as the raw '=?utf-8?...' text."""
    assert decode_header_text(header) == "견적서 제출 건"
    raw = f"From: a@example.com\nSubject: {header}\n\nbody\n".encode()
    assert parse_message(raw).subject == "견적서 제출 건"


# --------------------------------------------------------------------------- the picture
# Picture assertions read the layout MuPDF made before rasterising: each span of text with its
# box (points) and the font that draws it.


class _Span(NamedTuple):
    x0: float
    y0: float
    x1: float
    y1: float
    font: str
    text: str


def _spans(raw: bytes) -> list[_Span]:
    options = RenderOptions()
    lists, _ = display_lists(compose(parse_message(raw), options).html, options, 3)
    found = []
    for listing in lists:
        page = pymupdf.TextPage(listing.get_textpage()).extractDICT()
        for block in page["blocks"]:
            for line in block.get("lines", []):
                found.extend(
                    _Span(*span["bbox"], span["font"], span["text"]) for span in line["spans"]
                )
    return found


def _plain_mail(body: str, **headers: str) -> bytes:
    lines = [f"{name.replace('_', '-')}: {value}" for name, value in headers.items()]
    head = "\n".join(["From: 김철수 <kim@example.com>", "Subject: test", *lines])
    return f"{head}\nContent-Type: text/plain; charset=utf-8\n\n{body}\n".encode()


def test_wrapped_recipient_list_does_not_overlap_its_label() -> None:
    """Before: with To and Cc wrapping over several lines the label column shrank, and the
    labels 보낸 사람 / 받는 사람 ran into the names beside them."""
    recipients = ", ".join(f"직원{i} 홍길동 <employee{i}@example.co.kr>" for i in range(8))
    spans = _spans(_plain_mail("본문", To=recipients, Cc=recipients))
    labels = [s for s in spans if s.text in {"보낸 사람", "받는 사람", "참조"}]
    values = [s for s in spans if "@example" in s.text]
    assert len(labels) == 3
    assert len(values) > 3  # the lists did wrap
    rightmost_label = max(label.x1 for label in labels)
    assert min(value.x0 for value in values) > rightmost_label


def test_backslash_is_drawn_in_a_font_with_a_real_backslash() -> None:
    """Before: the backslash of a path in an HTML mail and in the subject was set in
    NanumGothic, which draws U+005C as the won sign."""
    raw = (
        "From: a@example.com\nSubject: 공유 폴더 \\\\fileserver\\공유\nContent-Type: text/html;"
        " charset=utf-8\n\n<p>경로: C:\\Users\\김철수\\문서</p>\n"
    ).encode()
    spans = _spans(raw)
    backslashes = [s for s in spans if "\\" in s.text]
    assert len(backslashes) >= 5
    assert all(s.font.startswith("NanumGothicCoding") for s in backslashes)
    assert any(s.text == "문서" or "문서" in s.text for s in spans)


def test_long_unbroken_line_wraps_inside_the_page() -> None:
    """Before: a 300-character URL ran past the right edge and was cut with no sign."""
    url = "https://example.com/" + "a1b2c3d4e5" * 30
    for raw in (_plain_mail(f"링크: {url}"), _html_mail(f"<p>링크: {url}</p>")):
        spans = [s for s in _spans(raw) if s.text.strip("\u200b")]
        page_width = RenderOptions().width_px * 72 / 96
        assert max(s.x1 for s in spans) <= page_width - 18 + 1
        drawn = "".join(s.text for s in spans).replace("\u200b", "")
        assert url in drawn  # all of it, wrapped


def _html_mail(body: str) -> bytes:
    return (
        f"From: a@example.com\nSubject: t\nContent-Type: text/html; charset=utf-8\n\n{body}\n"
    ).encode()


def test_plain_text_columns_aligned_with_spaces_stay_aligned() -> None:
    """Before: text/plain was set in proportional NanumGothic; the amounts of a table aligned
    with spaces started at different places."""
    body = "품목        금액\nA4 용지     12,000\nWWW 토너    1,450,000\niii 클립    300"
    spans = _spans(_plain_mail(body))
    lines = [s for s in spans if s.font.startswith("NanumGothicCoding") and s.y0 > 60]
    assert len(lines) >= 4
    starts = []
    for line in lines[:4]:
        column = line.text.index(line.text.split()[-1])
        width = (line.x1 - line.x0) / _columns(line.text)
        starts.append(line.x0 + width * _columns(line.text[:column]))
    assert max(starts) - min(starts) < 0.5


def _columns(text: str) -> int:
    """Columns a fixed-width Korean font gives ``text``: Hangul two, the rest one."""
    return sum(2 if "\uac00" <= c <= "\ud7a3" else 1 for c in text)


INVITATION = (
    "From: 김철수 <kim@example.com>\nTo: lee@example.com\nSubject: 주간 회의\n"
    'Content-Type: multipart/alternative; boundary="ALT"\n\n'
    "--ALT\nContent-Type: text/plain; charset=utf-8\n\n회의에 초대합니다.\n"
    "--ALT\nContent-Type: text/html; charset=utf-8\n\n<p>회의에 초대합니다.</p>\n"
    "--ALT\nContent-Type: text/calendar; charset=utf-8; method=REQUEST\n\n"
    "BEGIN:VCALENDAR\r\nMETHOD:REQUEST\r\nBEGIN:VEVENT\r\n"
    "DTSTART;TZID=Asia/Seoul:20250312T140000\r\nDTEND;TZID=Asia/Seoul:20250312T153000\r\n"
    "SUMMARY:주간 회의\r\nLOCATION:본관 3층 대회의실\\, 서울\r\n"
    "ORGANIZER;CN=김철수:mailto:kim@example.com\r\n"
    "BEGIN:VALARM\r\nSUMMARY:알림\r\nTRIGGER:-PT10M\r\nEND:VALARM\r\n"
    "END:VEVENT\r\nEND:VCALENDAR\r\n--ALT--\n"
).encode()


def test_invitation_shows_its_time_and_place() -> None:
    """Before: the text/calendar part sat in the multipart/alternative and was dropped; the
    picture showed "회의에 초대합니다." and neither time nor place."""
    (event,) = parse_message(INVITATION).events
    assert event.summary == "주간 회의"
    assert event.location == "본관 3층 대회의실, 서울"
    assert event.start == "2025-03-12 14:00 (Asia/Seoul)"
    drawn = "".join(s.text for s in _spans(INVITATION))
    assert "2025-03-12 14:00 (Asia/Seoul) ~ 15:30" in drawn
    assert "본관 3층 대회의실, 서울" in drawn
    assert "김철수 <kim@example.com>" in drawn


def test_real_google_invitation_shows_its_time() -> None:
    raw = (CORPUS / "postalmime-calendar-event.eml").read_bytes()
    drawn = "".join(s.text for s in _spans(raw))
    assert "2024-04-11 11:00 (Europe/Tallinn) ~ 12:00" in drawn


def test_withheld_part_is_named_in_the_picture() -> None:
    """Before: a withheld attachment was listed in the manifest only; the picture did not say
    that the mail had one."""
    raw = (
        "From: a@example.com\nSubject: files\nContent-Type: multipart/mixed; boundary=XYZ\n\n"
        "--XYZ\nContent-Type: text/plain; charset=utf-8\n\n첨부 파일 보냅니다.\n"
        "--XYZ\nContent-Type: application/zip\n"
        'Content-Disposition: attachment; filename="quotation_2024.zip"\n'
        "Content-Transfer-Encoding: base64\n\nUEsFBgAAAAAAAAAAAAAAAAAAAAAAAA==\n--XYZ--\n"
    ).encode()
    rendered = render_message(raw, RenderOptions())
    assert [w.filename for w in rendered.manifest.withheld] == ["quotation_2024.zip"]
    assert rendered.text is not None
    assert "quotation_2024.zip: application/zip" in rendered.text
    (tile,) = rendered.images  # the list is drawn in the body's picture, no page of its own
    seen = picture_text(tile, Budget(ExtractLimits(ocr_languages="eng")))
    assert "quotation_2024.zip" in seen


def test_8bit_file_name_is_decoded() -> None:
    """Before: a file name sent as raw UTF-8 or CP949 bytes came out as U+FFFD characters."""
    for codec in ("utf-8", "cp949"):
        raw = (
            b"From: a@example.com\nSubject: t\nContent-Type: multipart/mixed; boundary=XYZ\n\n"
            b"--XYZ\nContent-Type: application/zip\n"
            b'Content-Disposition: attachment; filename="' + "견적서.zip".encode(codec) + b'"\n\n'
            b"data\n--XYZ--\n"
        )
        assert [a.filename for a in parse_message(raw).attachments] == ["견적서.zip"]


# --------------------------------------------------------------------------- Outlook .msg


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _properties(header: int, *entries: tuple[int, bytes]) -> bytes:
    """A __properties_version1.0 stream: ``header`` reserved bytes, then (tag, 8-byte value)."""
    return b"\0" * header + b"".join(struct.pack("<II8s", tag, 6, value) for tag, value in entries)


SUBMITTED = (
    133_862_544_000_000_000  # 2025-03-12 12:00:00 UTC as a FILETIME (100 ns ticks since 1601)
)


def _outlook_msg() -> bytes:
    attach, inner = "__attach_version1.0_#00000000", "__attach_version1.0_#00000001"
    embedded = f"{inner}/__substg1.0_3701000D"
    return build_cfb({
        "__properties_version1.0": _properties(32, (0x00390040, struct.pack("<Q", SUBMITTED))),
        "__substg1.0_0037001F": _utf16("견적서 송부"),
        "__substg1.0_0C1A001F": _utf16("김철수"),
        "__substg1.0_5D01001F": _utf16("kim@example.com"),
        "__substg1.0_1000001F": _utf16("안녕하세요.\r\n견적서를 첨부합니다.\r\n"),
        "__recip_version1.0_#00000000/__properties_version1.0": _properties(
            8, (0x0C150003, struct.pack("<I", 1))
        ),
        "__recip_version1.0_#00000000/__substg1.0_3001001F": _utf16("이영희"),
        "__recip_version1.0_#00000000/__substg1.0_39FE001F": _utf16("lee@example.com"),
        "__recip_version1.0_#00000001/__properties_version1.0": _properties(
            8, (0x0C150003, struct.pack("<I", 2))
        ),
        "__recip_version1.0_#00000001/__substg1.0_3001001F": _utf16("박민수"),
        "__recip_version1.0_#00000001/__substg1.0_39FE001F": _utf16("park@example.com"),
        f"{attach}/__properties_version1.0": _properties(8),
        f"{attach}/__substg1.0_3707001F": _utf16("단가표.csv"),
        f"{attach}/__substg1.0_370E001F": _utf16("text/csv"),
        f"{attach}/__substg1.0_37010102": "품목,단가\nA4 용지,12000\n".encode(),
        f"{inner}/__properties_version1.0": _properties(8),
        f"{inner}/__substg1.0_3707001F": _utf16("원래 메일.msg"),
        f"{embedded}/__properties_version1.0": _properties(24),
        f"{embedded}/__substg1.0_0037001F": _utf16("원래 요청"),
        f"{embedded}/__substg1.0_1000001F": _utf16("견적을 요청드립니다."),
    })  # fmt: skip


def test_outlook_msg_file_becomes_the_message() -> None:
    """Before: an Outlook .msg was one withheld attachment, and the picture an empty
    "(제목 없음)" page (exit 0)."""
    mail = parse_message(_outlook_msg())
    assert mail.subject == "견적서 송부"
    assert [(a.display, a.addr) for a in mail.from_] == [("김철수", "kim@example.com")]
    assert [(a.display, a.addr) for a in mail.to] == [("이영희", "lee@example.com")]
    assert [(a.display, a.addr) for a in mail.cc] == [("박민수", "park@example.com")]
    assert mail.date == "Wed, 12 Mar 2025 12:00:00 +0000"
    assert mail.text is not None
    assert "견적서를 첨부합니다." in mail.text
    assert [(a.filename, a.content_type) for a in mail.attachments] == [("단가표.csv", "text/csv")]
    (inner,) = mail.forwarded
    assert inner.subject == "원래 요청"
    assert inner.text is not None
    assert "견적을 요청드립니다." in inner.text
    rendered = render_message(_outlook_msg(), RenderOptions())
    assert rendered.manifest.status == "rendered"
    assert rendered.text is not None
    assert "제목: 견적서 송부" in rendered.text
    assert [p.source for p in rendered.manifest.pages][-1] == "attachment:단가표.csv"


def test_real_outlook_msg_is_shown_with_its_headers_and_pictures() -> None:
    mail = parse_message((CORPUS / "spamscope-mail_outlook_1.msg").read_bytes())
    assert mail.subject == "Newsletter Prüfung Personalwesen / Prüfung Eröffnungsbilanz"
    assert mail.to[0].addr == "A.Gaiser-Schoenenborn@kreis-tuebingen.de"
    assert mail.html is not None
    assert "Sehr geehrte Frau" in mail.html
    assert {a.content_id for a in mail.attachments} >= {"newsletter.png", "spacer.gif"}


def test_unreadable_outlook_msg_is_refused_with_a_reason() -> None:
    """Before: rendered as an empty "(제목 없음)" picture with status 'rendered'."""
    rendered = render_message(OLE_MAGIC + b"\x00" * 600, RenderOptions())
    assert rendered.manifest.status == "not_displayable"
    assert rendered.manifest.reason == "unreadable_outlook_msg"
    assert rendered.images == ()


def test_attached_outlook_msg_is_shown_as_a_forwarded_mail() -> None:
    """Before: an attached .msg was withheld as a file type not shown."""
    attached = base64.encodebytes(_outlook_msg())
    raw = (
        b"From: a@example.com\nSubject: fw\nContent-Type: multipart/mixed; boundary=XYZ\n\n"
        b"--XYZ\nContent-Type: text/plain\n\nsee attached\n"
        b"--XYZ\nContent-Type: application/vnd.ms-outlook\nContent-Transfer-Encoding: base64\n"
        b'Content-Disposition: attachment; filename="quote.msg"\n\n' + attached + b"--XYZ--\n"
    )
    mail = parse_message(raw)
    assert mail.attachments == ()
    (forwarded,) = mail.forwarded
    assert forwarded.subject == "견적서 송부"
    assert forwarded.forwarded[0].subject == "원래 요청"


def test_drawn_text_breaks_only_long_runs_and_never_inside_an_entity() -> None:
    assert drawn_text("짧은 줄 short line") == "짧은 줄 short line"
    drawn = drawn_text("&" * 45)
    assert "\u200b" in drawn
    assert drawn.replace("\u200b", "") == "&amp;" * 45
    assert all(piece.count("&amp;") <= BREAK_EVERY for piece in drawn.split("\u200b"))
    assert drawn_text("a\\b") == 'a<span class="mailsafe-bs">\\</span>b'
    html = '<p title="C:\\x">경로 C:\\x</p><style>p { color: red }</style>'
    assert drawn_html(html) == (
        '<p title="C:\\x">경로 C:<span class="mailsafe-bs">\\</span>x</p>'
        "<style>p { color: red }</style>"
    )


def test_real_8bit_japanese_mail_labelled_iso_2022_jp_decodes() -> None:
    """Before: 186 characters of this mailing-list post came out as U+FFFD."""
    mail = parse_message((CORPUS / "sa-nice-iso-2022-jp.2.eml").read_bytes())
    assert mail.text is not None
    assert "\ufffd" not in mail.text
    assert "心当たりがあります" in mail.text
