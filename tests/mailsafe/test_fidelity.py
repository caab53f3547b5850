"""Issue 18.4: fidelity defects seen in real-world mail, each reproduced by a mail of our own.

Each test here failed on the code before its fix (the docstring says how it failed).
"""

from __future__ import annotations

import base64

import pytest

from mailsafe.charsets import decode_bytes
from mailsafe.mime import decode_header_text, parse_message

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
