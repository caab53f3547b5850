"""mailsafe.mime and mailsafe.charsets: hostile MIME parses, Korean legacy charsets decode."""

from __future__ import annotations

import base64
import email.message

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mailsafe import mime
from mailsafe.charsets import codec_for_label, decode_bytes
from mailsafe.mime import OLE_MAGIC, ParseLimits, decode_header_text, parse_message
from tests.support.mailmaker import KOREAN, korean_legacy_mail


@pytest.mark.parametrize(
    ("charset", "expected"),
    [
        ("euc-kr", KOREAN),
        ("EUC-KR", KOREAN),
        ("ks_c_5601-1987", KOREAN),
        ("cp949", KOREAN),
        ("iso-2022-kr", KOREAN.replace("똠", "돔")),
    ],
)
def test_korean_legacy_charsets_decode_in_headers_and_body(charset: str, expected: str) -> None:
    mail = parse_message(korean_legacy_mail(charset))
    assert mail.subject == expected
    assert mail.from_[0].display == expected
    assert mail.text is not None
    assert mail.text.strip() == expected


def test_euc_kr_label_over_cp949_only_characters_uses_the_superset() -> None:
    # 똠 is not in EUC-KR (KS X 1001) but Outlook labels CP949 text "euc-kr" anyway.
    assert decode_bytes("똠방각하".encode("cp949"), "euc-kr") == "똠방각하"


@pytest.mark.parametrize("label", ["iso-8859-1", "us-ascii", "x-unknown", "true", "fakescii", None])
def test_lying_or_unknown_labels_over_korean_are_recognised(label: str | None) -> None:
    assert decode_bytes(KOREAN.encode("cp949"), label) == KOREAN
    assert decode_bytes(KOREAN.encode("utf-8"), label) == KOREAN


def test_latin1_text_stays_latin1() -> None:
    assert decode_bytes("café crème".encode("latin-1"), "iso-8859-1") == "café crème"


def test_broken_bytes_give_replacement_characters_not_errors() -> None:
    text = decode_bytes(b"\xb0\xa1\xff\xfe\x80 ok", "euc-kr")
    assert text.endswith(" ok")
    assert "\ufffd" in text or "\u00ff" in text or "ÿ" in text


@pytest.mark.parametrize("label", ["base64", "rot13", "hex", "zip", "idna"])
def test_codec_names_that_are_not_charsets_are_refused(label: str) -> None:
    assert codec_for_label(label) is None


def test_encoded_words_split_inside_a_korean_character_are_joined() -> None:
    data = "한국어".encode("cp949")
    first = base64.b64encode(data[:3]).decode()
    second = base64.b64encode(data[3:]).decode()
    header = f"=?ks_c_5601-1987?B?{first}?= =?ks_c_5601-1987?B?{second}?="
    assert decode_header_text(header) == "한국어"


def test_raw_8bit_cp949_header_is_decoded() -> None:
    raw = b"From: a@example.com\r\nSubject: " + "제목".encode("cp949") + b"\r\n\r\nbody\r\n"
    assert parse_message(raw).subject == "제목"


def test_rfc2231_filename_in_korean() -> None:
    name = "보고서.pdf".encode("cp949")
    encoded = "".join(f"%{b:02X}" for b in name)
    raw = (
        "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--b\r\nContent-Type: application/octet-stream\r\n"
        f"Content-Disposition: attachment; filename*=ks_c_5601-1987''{encoded}\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nAAEC\r\n--b--\r\n"
    ).encode("ascii")
    mail = parse_message(raw)
    assert [a.filename for a in mail.attachments] == ["보고서.pdf"]
    assert mail.attachments[0].data == b"\x00\x01\x02"


def test_rfc2047_filename_and_path_components_are_cleaned() -> None:
    word = base64.b64encode("../../etc/암호.txt".encode("cp949")).decode()
    raw = (
        "From: a@example.com\r\nSubject: x\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        f'--b\r\nContent-Type: text/plain; name="=?euc-kr?B?{word}?="\r\n'
        "Content-Disposition: attachment\r\n\r\nsecret\r\n--b--\r\n"
    ).encode("ascii")
    assert parse_message(raw).attachments[0].filename == "암호.txt"


def test_forwarded_message_is_parsed_inline() -> None:
    inner = korean_legacy_mail("euc-kr").decode("latin-1")
    raw = (
        "From: a@example.com\r\nSubject: Fwd\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nsee below\r\n"
        f"--b\r\nContent-Type: message/rfc822\r\n\r\n{inner}\r\n--b--\r\n"
    ).encode("latin-1")
    mail = parse_message(raw)
    assert mail.text == "see below"
    assert len(mail.forwarded) == 1
    assert mail.forwarded[0].subject == KOREAN


def test_smime_and_tnef_are_recognised() -> None:
    raw = (
        "From: a@example.com\r\nSubject: s\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/signed; protocol="application/pkcs7-signature"; boundary="b"\r\n\r\n'
        '--b\r\nContent-Type: multipart/mixed; boundary="c"\r\n\r\n'
        "--c\r\nContent-Type: text/plain\r\n\r\nsigned text\r\n"
        "--c\r\nContent-Type: application/ms-tnef; name=winmail.dat\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\neJ8+IgAA\r\n--c--\r\n"
        "--b\r\nContent-Type: application/pkcs7-signature; name=smime.p7s\r\n"
        "Content-Transfer-Encoding: base64\r\n\r\nMIAGCSqGSIb3DQEHAqCAMIACAQEx\r\n--b--\r\n"
    ).encode("ascii")
    mail = parse_message(raw)
    assert set(mail.security) == {"smime-signed", "tnef"}
    assert mail.text == "signed text"
    assert {a.filename for a in mail.attachments} == {"winmail.dat", "smime.p7s"}


def _nested(depth: int) -> bytes:
    head = "From: a@example.com\r\nSubject: deep\r\nMIME-Version: 1.0\r\n"
    parts = [head]
    for level in range(depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\nbottom\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n")
    return "".join(parts).encode("ascii")


def test_depth_limit_cuts_and_says_so() -> None:
    mail = parse_message(_nested(30), ParseLimits(max_depth=10))
    assert mail.text is None
    assert any("deeper than 10" in d for d in mail.defects)
    assert parse_message(_nested(8), ParseLimits(max_depth=10)).text == "bottom"


def test_part_count_limit() -> None:
    body = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(50))
    raw = (
        "From: a@example.com\r\nSubject: many\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="b"\r\n\r\n{body}--b--\r\n'
    ).encode("ascii")
    mail = parse_message(raw, ParseLimits(max_parts=10))
    assert mail.text is not None
    assert mail.text.count("part ") == 9  # the multipart itself is part 1
    assert any("more than 10 MIME parts" in d for d in mail.defects)


def test_header_size_limit() -> None:
    raw = b"Subject: big\r\n" + b"X-Filler: " + b"a" * 5000 + b"\r\n" + b"\r\nbody text\r\n"
    mail = parse_message(raw, ParseLimits(max_header_bytes=1024))
    assert any("header block larger than 1024" in d for d in mail.defects)
    assert mail.text is not None
    assert "body text" in mail.text


def test_decoded_size_limit_keeps_size_and_hash_but_not_data() -> None:
    payload = base64.encodebytes(b"x" * 20000).decode()
    raw = (
        "From: a@example.com\r\nSubject: big\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/mixed; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
        "--b\r\nContent-Type: application/octet-stream; name=big.bin\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{payload}\r\n--b--\r\n"
    ).encode("ascii")
    attachment = parse_message(raw, ParseLimits(max_decoded_bytes=10000)).attachments[0]
    assert attachment.truncated
    assert attachment.data == b""
    assert attachment.size == 20000


def test_outlook_msg_file_is_listed_not_parsed() -> None:
    mail = parse_message(OLE_MAGIC + b"\x00" * 600)
    assert mail.attachments[0].content_type == "application/vnd.ms-outlook"
    assert any("Outlook" in d for d in mail.defects)


def test_broken_boundary_still_shows_text() -> None:
    raw = (
        b"From: a@example.com\r\nSubject: broken\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="nope"\r\n\r\n'
        b"--other\r\nContent-Type: text/plain\r\n\r\nvisible text\r\n"
    )
    mail = parse_message(raw)
    assert "visible text" in (mail.text or "") + str(mail.attachments)


def test_header_line_with_invalid_name_does_not_swallow_the_body() -> None:
    raw = (
        b"Subject: x\r\nContent-Type: text/plain; charset=euc-kr\r\n"
        b"Content-Transfer-Encoding: base64\r\n"
        b"X-Bad\tName here: value\r\n\r\n" + base64.encodebytes("본문".encode("cp949"))
    )
    assert parse_message(raw).text == "본문"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=2000))
def test_any_bytes_parse_without_raising(data: bytes) -> None:
    parse_message(data)


MIME_PIECES = st.sampled_from([
    b"Content-Type: multipart/mixed; boundary=b\r\n", b"--b\r\n", b"--b--\r\n", b"\r\n",
    b"Content-Transfer-Encoding: base64\r\n", b"Content-Type: message/rfc822\r\n",
    b"Subject: =?ks_c_5601-1987?B?x9Gxub7u?=\r\n", b"=?euc-kr?Q?=C7=D1?=", b"\xc7\xd1\xb1\xdb",
    b"Content-Disposition: attachment; filename*=utf-8''%ED%95%9C\r\n", b"AAAA====", b"\x00",
    b"Content-Type: text/html; charset=x-unknown\r\n", b"<html><img src=cid:x>", b"From: ",
])  # fmt: skip


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MIME_PIECES, max_size=40))
def test_mime_shaped_garbage_parses_without_raising(pieces: list[bytes]) -> None:
    parse_message(b"".join(pieces))


# ---- base64 bodies decoded without email's line splitting -----------------------------------


def _base64_part(payload: str) -> email.message.Message:
    part = email.message.Message()
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(payload)
    return part


@settings(max_examples=500, deadline=None)
@given(st.text(st.sampled_from("QUJDRA+/09az=\r\n !-\t"), max_size=60))
def test_base64_bodies_decode_as_email_decodes_them(payload: str) -> None:
    """mime decodes ASCII base64 bodies itself (email splits them into lines to join them
    again); bytes and defects must be what get_payload(decode=True) gives, padding mended,
    bad characters and impossible lengths included."""
    ours, theirs = _base64_part(payload), _base64_part(payload)
    expected = theirs.get_payload(decode=True)
    assert mime._payload_bytes(ours, mime._Budget(ParseLimits())) == expected
    assert [type(d) for d in ours.defects] == [type(d) for d in theirs.defects]


def test_base64_body_of_a_whole_mail_keeps_its_defect_notes() -> None:
    raw = b"Subject: s\nContent-Transfer-Encoding: base64\n\nQUJD\nRA\n"
    fast, standard = parse_message(raw), parse_message(raw, fast_path=False)
    assert fast == standard
    assert fast.text == "ABCD"
    assert any("padding" in defect for defect in fast.defects)
