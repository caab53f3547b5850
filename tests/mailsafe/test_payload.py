"""mailsafe.payload: round trips, and strict refusal of anything else."""

from __future__ import annotations

import dataclasses

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mailsafe.payload import (
    Envelope,
    HeaderBlock,
    Manifest,
    OutboundMail,
    PackageLimits,
    PackageRefused,
    PageInfo,
    RenderedMail,
    Withheld,
    decode_outbound,
    decode_package,
    encode_outbound,
    encode_package,
)
from tests.support.mailmaker import png

PNG = png()


def sample() -> RenderedMail:
    manifest = Manifest(
        version=1,
        mail_id="m-1",
        status="rendered",
        reason=None,
        envelope=Envelope(
            "a@example.com",
            ("b@example.org",),
            "2026-11-23T10:00:00Z",
            "1.2.3.4",
            "mx.example.com",
            True,
        ),
        headers=HeaderBlock(from_="보낸이 <a@example.com>", subject="제목"),
        pages=(PageInfo("image/png", 40, 30, "body", 0),),
        withheld=(
            Withheld("setup.exe", "application/octet-stream", 1200, "ab" * 32, "not_rendered_type"),
        ),
        notes=("1 remote reference(s) in the HTML were not loaded",),
    )
    return RenderedMail(manifest=manifest, images=(PNG,), text="본문")


def _document(mail: RenderedMail) -> dict:
    return msgpack.unpackb(encode_package(mail), raw=False)


def _pack(document: dict) -> bytes:
    return msgpack.packb(document, use_bin_type=True)


def test_round_trip() -> None:
    assert decode_package(encode_package(sample())) == sample()


def test_not_displayable_round_trip() -> None:
    mail = RenderedMail(Manifest(1, "m-2", "not_displayable", "timeout"))
    assert decode_package(encode_package(mail)) == mail


def test_outbound_round_trip() -> None:
    mail = OutboundMail(
        "m-3", "a@corp.example", ("x@example.com",), b"raw\r\nmail", "head@corp", "2026-11-23"
    )
    assert decode_outbound(encode_outbound(mail)) == mail


def _mutations() -> list[tuple[str, object]]:
    def unknown_top(d: dict) -> None:
        d["extra"] = 1

    def unknown_manifest(d: dict) -> None:
        d["manifest"]["script"] = "x"

    def missing_key(d: dict) -> None:
        del d["manifest"]["headers"]["subject"]

    def svg(d: dict) -> None:
        d["manifest"]["pages"][0]["media_type"] = "image/svg+xml"

    def wrong_magic(d: dict) -> None:
        d["images"][0] = b"GIF89a" + b"\x00" * 10

    def jpeg_claim(d: dict) -> None:
        d["manifest"]["pages"][0]["media_type"] = "image/jpeg"

    def count_mismatch(d: dict) -> None:
        d["images"].append(PNG)

    def wrong_type(d: dict) -> None:
        d["manifest"]["pages"][0]["width"] = "40"

    def bool_as_int(d: dict) -> None:
        d["manifest"]["pages"][0]["width"] = True

    def huge_pixels(d: dict) -> None:
        d["manifest"]["pages"][0]["width"] = 100_000
        d["manifest"]["pages"][0]["height"] = 1_000

    def bad_status(d: dict) -> None:
        d["manifest"]["status"] = "ok"

    def version(d: dict) -> None:
        d["v"] = 2

    def kind(d: dict) -> None:
        d["kind"] = "outbound"

    def text_type(d: dict) -> None:
        d["text"] = b"bytes"

    return [(f.__name__, f) for f in (unknown_top, unknown_manifest, missing_key, svg, wrong_magic,
            jpeg_claim, count_mismatch, wrong_type, bool_as_int, huge_pixels, bad_status, version,
            kind, text_type)]  # fmt: skip


@pytest.mark.parametrize(("name", "mutate"), _mutations())
def test_tampered_packages_are_refused(name: str, mutate) -> None:
    document = _document(sample())
    mutate(document)
    with pytest.raises(PackageRefused):
        decode_package(_pack(document))


def test_trailing_bytes_are_refused() -> None:
    with pytest.raises(PackageRefused):
        decode_package(encode_package(sample()) + b"\x00")


def test_size_limits_are_checked_before_decoding() -> None:
    data = encode_package(sample())
    with pytest.raises(PackageRefused, match="over the"):
        decode_package(data, PackageLimits(max_package_bytes=len(data) - 1))
    with pytest.raises(PackageRefused):
        decode_package(data, PackageLimits(max_image_bytes=10))


def test_outbound_unknown_key_refused() -> None:
    document = msgpack.unpackb(encode_outbound(OutboundMail("m", "a", ("b",), b"x", "c", "d")))
    document["attachment_path"] = "/etc/passwd"
    with pytest.raises(PackageRefused):
        decode_outbound(_pack(document))


def test_manifest_fields_match_the_contract() -> None:
    names = [f.name for f in dataclasses.fields(Manifest)]
    assert names == ["version", "mail_id", "status", "reason", "envelope", "headers", "auth",
                     "pages", "withheld", "notes", "masked", "unchecked"]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=3000))
def test_any_bytes_decode_or_are_refused(data: bytes) -> None:
    for decode in (decode_package, decode_outbound):
        try:
            decode(data)
        except PackageRefused:
            pass


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=2000), st.binary(min_size=1, max_size=4))
def test_corrupted_packages_decode_or_are_refused(offset: int, junk: bytes) -> None:
    data = bytearray(encode_package(sample()))
    position = offset % len(data)
    data[position : position + len(junk)] = junk
    try:
        decode_package(bytes(data))
    except PackageRefused:
        pass
