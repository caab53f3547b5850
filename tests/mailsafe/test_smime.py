"""Opaque-signed S/MIME: the signed content is shown without a key, marked "signature not
verified"; encrypted S/MIME and signed data that cannot be read are withheld with a reason."""

from __future__ import annotations

import base64
import datetime
import time
from functools import cache

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs7
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.mime import parse_message
from mailsafe.notes import translate
from mailsafe.policy import SenderInfo, default_rules
from mailsafe.render import render_message
from mailsafe.render.options import RenderOptions
from mailsafe.scan import scan_message
from mailsafe.smime import MAX_NESTING, signed_content
from tests.support.documents import make_screenshot

NOT_VERIFIED = "서명은 확인하지 않았습니다"
RRN = "800101-1234560"
_HEAD = (
    "From: kim@partner.example\r\nTo: lee@corp.example\r\nSubject: signed\r\nMIME-Version: 1.0\r\n"
)
_SIGNED_DATA = bytes.fromhex("06092a864886f70d010702")
_DATA = bytes.fromhex("06092a864886f70d010701")


def _inner_entity() -> bytes:
    picture = base64.encodebytes(make_screenshot(["SIGNED PICTURE"])).decode()
    return (
        'Content-Type: multipart/mixed; boundary="in"\r\n\r\n'
        "--in\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
        f"서명된 본문입니다 {RRN}\r\n"
        "--in\r\nContent-Type: image/png; name=plan.png\r\n"
        "Content-Disposition: attachment; filename=plan.png\r\n"
        f"Content-Transfer-Encoding: base64\r\n\r\n{picture}--in--\r\n"
    ).encode()


@cache
def _signer(kind: str = "ec") -> tuple[x509.Certificate, object]:
    key = (
        ec.generate_private_key(ec.SECP256R1())
        if kind == "ec"
        else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kim@partner.example")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def _opaque_der(content: bytes) -> bytes:
    certificate, key = _signer()
    builder = pkcs7.PKCS7SignatureBuilder().set_data(content)
    return builder.add_signer(certificate, key, hashes.SHA256()).sign(  # type: ignore[arg-type]
        serialization.Encoding.DER, [pkcs7.PKCS7Options.Binary]
    )


def _tlv(tag: int, content: bytes) -> bytes:
    length = len(content)
    if length < 0x80:
        return bytes([tag, length]) + content
    size = (length.bit_length() + 7) // 8
    return bytes([tag, 0x80 | size]) + length.to_bytes(size, "big") + content


def _indefinite(tag: int, *children: bytes) -> bytes:
    return bytes([tag, 0x80]) + b"".join(children) + b"\x00\x00"


def _streamed_ber(content: bytes, chunk: int = 1000) -> bytes:
    """Signed data as streaming writers (Outlook, ``openssl cms -stream``) write it:
    indefinite lengths and the content in a constructed OCTET STRING of chunks."""
    chunks = [_tlv(0x04, content[i : i + chunk]) for i in range(0, len(content), chunk)]
    encapsulated = _indefinite(0x30, _DATA, _indefinite(0xA0, _indefinite(0x24, *chunks)))
    algorithms = _tlv(0x31, _tlv(0x30, bytes.fromhex("0609608648016503040201")))
    signed = _indefinite(0x30, b"\x02\x01\x01", algorithms, encapsulated, _tlv(0x31, b""))
    return _indefinite(0x30, _SIGNED_DATA, _indefinite(0xA0, signed))


def _opaque_mail(ber: bytes, smime_type: str = "signed-data") -> bytes:
    body = base64.encodebytes(ber).decode().replace("\n", "\r\n")
    return (
        _HEAD + f'Content-Type: application/pkcs7-mime; smime-type={smime_type}; name="smime.p7m"'
        '\r\nContent-Disposition: attachment; filename="smime.p7m"\r\n'
        f"Content-Transfer-Encoding: base64\r\n\r\n{body}"
    ).encode()


def _multipart_signed(content: bytes) -> bytes:
    certificate, key = _signer()
    signed = (
        pkcs7.PKCS7SignatureBuilder()
        .set_data(content)
        .add_signer(
            certificate,
            key,
            hashes.SHA256(),  # type: ignore[arg-type]
        )
        .sign(serialization.Encoding.SMIME, [pkcs7.PKCS7Options.DetachedSignature])
    )
    return _HEAD.replace("MIME-Version: 1.0\r\n", "").encode() + signed


SIGNED = {
    "opaque, DER": lambda: _opaque_mail(_opaque_der(_inner_entity())),
    "opaque, streamed BER": lambda: _opaque_mail(_streamed_ber(_inner_entity())),
    "opaque, x-pkcs7-mime without smime-type": lambda: _opaque_mail(
        _opaque_der(_inner_entity())
    ).replace(b"application/pkcs7-mime; smime-type=signed-data;", b"application/x-pkcs7-mime;"),
    "multipart/signed": lambda: _multipart_signed(_inner_entity()),
}


@pytest.mark.parametrize("case", sorted(SIGNED))
def test_signed_content_is_shown_marked_not_verified(case: str) -> None:
    """Before: opaque-signed mail was one withheld smime.p7m and "contents not shown"."""
    raw = SIGNED[case]()
    mail = parse_message(raw)
    assert mail.security == ("smime-signed",)
    assert RRN in (mail.text or "")
    assert [a.filename for a in mail.attachments if a.filename != "smime.p7s"] == ["plan.png"]
    rendered = render_message(raw, RenderOptions())
    assert "attachment:plan.png" in {page.source for page in rendered.manifest.pages}
    assert not [w for w in rendered.manifest.withheld if w.filename == "smime.p7m"]
    assert any(NOT_VERIFIED in translate(n, "ko") for n in rendered.manifest.notes)


def test_the_outbound_scan_reads_opaque_signed_content() -> None:
    """Before: the content was unreadable ("unsupported-format") and the number unseen."""
    result = scan_message(_opaque_mail(_streamed_ber(_inner_entity())), default_rules(),
                          SenderInfo("kim@corp.example", "영업팀"))  # fmt: skip
    assert result.unreadable == ()
    assert [f.finding.type for f in result.findings] == ["rrn"]


def test_encrypted_smime_is_withheld_with_a_reason() -> None:
    certificate, _key = _signer("rsa")
    enveloped = (
        pkcs7.PKCS7EnvelopeBuilder()
        .set_data(_inner_entity())
        .add_recipient(certificate)
        .encrypt(serialization.Encoding.DER, [])
    )
    raw = _opaque_mail(enveloped, "enveloped-data")
    mail = parse_message(raw)
    assert mail.security == ("smime-encrypted",)
    assert RRN not in (mail.text or "")
    rendered = render_message(raw, RenderOptions())
    assert {w.filename: w.reason for w in rendered.manifest.withheld} == {
        "smime.p7m": "smime_not_shown"
    }
    assert any("recipient's key" in n for n in rendered.manifest.notes)


def _deep_chunks(levels: int) -> bytes:
    inner = _tlv(0x04, b"x")
    for _ in range(levels):
        inner = _indefinite(0x24, inner)
    return inner


UNREADABLE = {
    "truncated": _opaque_der(b"Content-Type: text/plain\r\n\r\nbody\r\n")[:-40],
    "detached (no content)": _streamed_ber(b"")[:0]
    + _indefinite(0x30, _SIGNED_DATA, _indefinite(0xA0, _indefinite(
        0x30, b"\x02\x01\x01", _tlv(0x31, b""), _indefinite(0x30, _DATA), _tlv(0x31, b"")))),
    "another content type": _streamed_ber(b"x").replace(_DATA, bytes.fromhex("06092a864886f70d010703")),
    "enveloped data labelled signed": _streamed_ber(b"x").replace(
        _SIGNED_DATA, bytes.fromhex("06092a864886f70d010703")
    ),
    "chunks nested past the limit": _streamed_ber(b"")[:0]
    + _indefinite(0x30, _SIGNED_DATA, _indefinite(0xA0, _indefinite(
        0x30, b"\x02\x01\x01", _tlv(0x31, b""),
        _indefinite(0x30, _DATA, _indefinite(0xA0, _deep_chunks(MAX_NESTING))), _tlv(0x31, b"")))),
    "a length past the end": bytes.fromhex("3084ffffffff") + _SIGNED_DATA,
    "no end-of-contents": _streamed_ber(b"body")[:-2],
    "not BER at all": b"\xff" * 64,
}  # fmt: skip


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_signed_data_that_cannot_be_read_is_withheld_with_a_reason(case: str) -> None:
    started = time.monotonic()
    raw = _opaque_mail(UNREADABLE[case])
    mail = parse_message(raw)
    assert time.monotonic() - started < 2
    assert mail.security == ("smime-signed-opaque",)
    rendered = render_message(raw, RenderOptions())
    assert {w.filename: w.reason for w in rendered.manifest.withheld} == {
        "smime.p7m": "smime_not_shown"
    }
    assert any("could not be read" in n for n in rendered.manifest.notes)


def test_chunks_at_the_nesting_limit_are_read() -> None:
    nested = _deep_chunks(MAX_NESTING - 6)
    ber = _indefinite(0x30, _SIGNED_DATA, _indefinite(0xA0, _indefinite(
        0x30, b"\x02\x01\x01", _tlv(0x31, b""),
        _indefinite(0x30, _DATA, _indefinite(0xA0, nested)), _tlv(0x31, b""))))  # fmt: skip
    assert signed_content(ber) == b"x"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_any_bytes_give_content_or_none(data: bytes) -> None:
    assert signed_content(data) is None or isinstance(signed_content(data), bytes)


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 200), st.integers(0, 255))
def test_a_changed_byte_of_streamed_ber_gives_content_or_none(position: int, value: int) -> None:
    ber = bytearray(_streamed_ber(b"Content-Type: text/plain\r\n\r\nbody\r\n", chunk=7))
    ber[position % len(ber)] = value
    assert signed_content(bytes(ber)) is None or isinstance(signed_content(bytes(ber)), bytes)
