"""The chunk codec: every verify rule, encryption, round trips, flipped bits, fuzzing."""

from __future__ import annotations

import hashlib
import struct

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from protocol import (
    DoesNotVerify,
    EncryptionKey,
    Keyring,
    Kind,
    Reason,
    RemoteError,
    decode_chunk,
    encode_chunk,
)
from protocol.bundle import BundleMeta, build_chunks
from protocol.chunk import ChunkHeader, encode_header, parse_prefix, sign_chunk
from protocol.limits import DOMAIN, MAX_CHUNKS, PREFIX_LEN, SIGNATURE_LEN
from tests.protocol.golden import KEY_A, KEY_B

RING = Keyring([KEY_A.verify_key])


def header(**changes: object) -> ChunkHeader:
    values: dict[str, object] = {
        "stream": "inbound", "epoch": 3, "seq": 9, "bundle": b"\x01" * 16, "index": 0,
        "count": 1, "csize": 100, "blen": 5, "bsha": hashlib.sha256(b"hello").digest(),
        "created": 1_767_225_600_000, "kind": Kind.DATA,
    }  # fmt: skip
    values.update(changes)
    return ChunkHeader(**values)  # type: ignore[arg-type]


def reason_of(data: bytes, ring: Keyring = RING, **kw: object) -> Reason:
    with pytest.raises(RemoteError) as caught:
        decode_chunk(data, ring, **kw)  # type: ignore[arg-type]
    return caught.value.reason


GOOD = encode_chunk(header(), b"hello", KEY_A)


def test_round_trip_gives_header_and_payload() -> None:
    chunk = decode_chunk(GOOD, RING)
    assert chunk.header == header()
    assert chunk.payload == b"hello"
    assert chunk.prefix.key_id == KEY_A.key_id
    assert GOOD[chunk.payload_offset : chunk.payload_offset + 5] == b"hello"


def test_layout_is_prefix_header_payload_signature() -> None:
    header_bytes = encode_header(header())
    assert GOOD[:4] == b"MDLK"
    assert struct.unpack(">BBHI", GOOD[4:12]) == (1, 0, len(header_bytes), 5)
    assert GOOD[12:20] == hashlib.sha256(KEY_A.verify_key.raw).digest()[:8]
    assert GOOD[20 : 20 + len(header_bytes)] == header_bytes
    assert len(GOOD) == PREFIX_LEN + len(header_bytes) + 5 + SIGNATURE_LEN
    payload_hash = hashlib.sha256(b"hello").digest()
    signed = DOMAIN + GOOD[: 20 + len(header_bytes)] + payload_hash
    assert KEY_A.verify_key.verify(GOOD[-64:], signed)


def test_signature_is_domain_separated() -> None:
    header_end = len(GOOD) - 64 - 5
    without_domain = GOOD[:header_end] + hashlib.sha256(b"hello").digest()
    assert not KEY_A.verify_key.verify(GOOD[-64:], without_domain)
    assert KEY_A.verify_key.verify(GOOD[-64:], DOMAIN + without_domain)


def test_header_keys_are_in_canonical_order() -> None:
    decoded = msgpack.unpackb(encode_header(header()))
    assert list(decoded) == [
        "stream", "epoch", "seq", "bundle", "index", "count", "csize", "blen", "bsha",
        "created", "kind",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:10], Reason.TRUNCATED),
        (lambda d: b"XDLK" + d[4:], Reason.BAD_MAGIC),
        (lambda d: d[:4] + b"\x00" + d[5:], Reason.BAD_VERSION),
        (lambda d: d[:5] + b"\x80" + d[6:], Reason.BAD_FLAGS),
        (lambda d: d[:6] + struct.pack(">H", 1025) + d[8:], Reason.TOO_LARGE),
        (lambda d: d[:8] + struct.pack(">I", (16 << 20) + 49) + d[12:], Reason.TOO_LARGE),
        (lambda d: d[:-1], Reason.TRUNCATED),
        (lambda d: d + b"x", Reason.TRUNCATED),
        (lambda d: d[:12] + b"\x00" * 8 + d[20:], Reason.UNKNOWN_KEY),
        (lambda d: d[:-1] + bytes([d[-1] ^ 1]), Reason.BAD_SIGNATURE),
    ],
)
def test_prefix_and_signature_rules(mutate: object, reason: Reason) -> None:
    assert reason_of(mutate(GOOD)) is reason  # type: ignore[operator]


def test_key_and_signature_failures_are_one_opaque_error() -> None:
    for data in (encode_chunk(header(), b"hello", KEY_B), GOOD[:-1] + b"\x00"):
        with pytest.raises(DoesNotVerify) as caught:
            decode_chunk(data, RING)
        assert str(caught.value) == "does not verify"
        assert caught.value.detail  # the specifics are for the log


def test_length_is_checked_before_any_crypto() -> None:
    # A chunk signed by an unknown key but truncated reports truncation, not the key.
    assert reason_of(encode_chunk(header(), b"hello", KEY_B)[:-1]) is Reason.TRUNCATED


def signed(values: dict[str, object], payload: bytes = b"hello") -> bytes:
    return sign_chunk(KEY_A, msgpack.packb(values, use_bin_type=True), payload)


BASE = header().as_dict() | {"kind": 1}


@pytest.mark.parametrize(
    ("values", "reason"),
    [
        (BASE | {"extra": 1}, Reason.BAD_HEADER),
        ({k: v for k, v in BASE.items() if k != "seq"}, Reason.BAD_HEADER),
        (BASE | {"seq": -1}, Reason.BAD_HEADER),
        (BASE | {"seq": True}, Reason.BAD_HEADER),
        (BASE | {"seq": 1.0}, Reason.BAD_HEADER),
        (BASE | {"seq": None}, Reason.BAD_HEADER),
        (BASE | {"stream": b"inbound"}, Reason.BAD_HEADER),
        (BASE | {"bundle": b"short"}, Reason.BAD_HEADER),
        (BASE | {"bsha": "x" * 32}, Reason.BAD_HEADER),
        (BASE | {"kind": 0}, Reason.UNKNOWN_KIND),
        (BASE | {"kind": 4}, Reason.UNKNOWN_KIND),
        (BASE | {"stream": ""}, Reason.LIMITS),
        (BASE | {"stream": "a" * 33}, Reason.LIMITS),
        (BASE | {"stream": "../x"}, Reason.LIMITS),
        (BASE | {"csize": 0}, Reason.LIMITS),
        (BASE | {"csize": (16 << 20) + 1}, Reason.LIMITS),
        (BASE | {"blen": (256 << 20) + 1, "count": 1, "csize": 16 << 20}, Reason.LIMITS),
        (BASE | {"blen": MAX_CHUNKS + 1, "csize": 1, "count": MAX_CHUNKS + 1}, Reason.LIMITS),
        (BASE | {"index": 1}, Reason.LIMITS),
        (BASE | {"count": 2}, Reason.INCONSISTENT),
        (BASE | {"kind": 2}, Reason.INCONSISTENT),  # accepted header, heartbeat body checked later
    ],
)
def test_header_rules(values: dict[str, object], reason: Reason) -> None:
    if values.get("kind") == 2:
        # a heartbeat chunk is decodable; its body is checked by the receiver (test_receiver)
        assert decode_chunk(signed(values), RING).header.kind is Kind.HEARTBEAT
        return
    assert reason_of(signed(values)) is reason


def test_header_trailing_bytes_and_ext_types_are_refused() -> None:
    raw = encode_header(header())
    assert reason_of(sign_chunk(KEY_A, raw + b"\xc0", b"hello")) is Reason.BAD_HEADER
    ext = msgpack.packb(BASE | {"seq": msgpack.ExtType(1, b"x")}, use_bin_type=True)
    assert reason_of(sign_chunk(KEY_A, ext, b"hello")) is Reason.BAD_HEADER
    assert reason_of(sign_chunk(KEY_A, msgpack.packb([1, 2]), b"hello")) is Reason.BAD_HEADER
    assert reason_of(sign_chunk(KEY_A, b"", b"hello")) is Reason.BAD_HEADER


def test_non_canonical_integer_is_refused() -> None:
    raw = encode_header(header())
    wide = raw.replace(msgpack.packb("epoch") + b"\x03", msgpack.packb("epoch") + b"\xcd\x00\x03")
    assert wide != raw
    assert reason_of(sign_chunk(KEY_A, wide, b"hello")) is Reason.BAD_HEADER


def test_payload_length_must_match_header() -> None:
    assert reason_of(signed(BASE, b"hell")) is Reason.INCONSISTENT
    many = BASE | {"blen": 250, "count": 3}
    assert reason_of(signed(many, b"x" * 99)) is Reason.INCONSISTENT  # non-last chunk < csize
    assert decode_chunk(signed(many, b"x" * 100), RING).payload == b"x" * 100
    last = many | {"index": 2}
    assert decode_chunk(signed(last, b"x" * 50), RING).header.plain_len == 50


def test_encoding_refuses_invalid_headers_too() -> None:
    with pytest.raises(RemoteError):
        encode_chunk(header(stream="Bad Stream"), b"hello", KEY_A)
    with pytest.raises(RemoteError):
        encode_chunk(header(), b"hello!", KEY_A)


# -- encryption -----------------------------------------------------------------------------

RECIPIENT = EncryptionKey.from_raw(bytes(range(64, 96)))


def sealed(payload: bytes = b"hello") -> bytes:
    return encode_chunk(header(), payload, KEY_A, encrypt_to=RECIPIENT.public_key,
                        ephemeral=EncryptionKey.generate())  # fmt: skip


def test_encrypted_round_trip_and_flag() -> None:
    data = sealed()
    assert parse_prefix(data).encrypted
    assert b"hello" not in data
    assert decode_chunk(data, RING, decrypt_key=RECIPIENT).payload == b"hello"


def test_encrypted_chunk_without_key_or_with_wrong_key_is_refused() -> None:
    data = sealed()
    assert reason_of(data) is Reason.CANNOT_DECRYPT
    other = EncryptionKey.generate()
    assert reason_of(data, decrypt_key=other) is Reason.CANNOT_DECRYPT


def test_encrypted_chunk_is_signed_after_sealing() -> None:
    data = bytearray(sealed())
    data[-70] ^= 1  # inside the ciphertext
    assert reason_of(bytes(data), decrypt_key=RECIPIENT) is Reason.BAD_SIGNATURE


def test_encryption_needs_a_fresh_key() -> None:
    with pytest.raises(ValueError, match="ephemeral"):
        encode_chunk(header(), b"hello", KEY_A, encrypt_to=RECIPIENT.public_key)


def test_two_encryptions_differ() -> None:
    assert sealed() != sealed()


# -- properties -----------------------------------------------------------------------------


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bundle=st.binary(max_size=600), chunk_size=st.integers(1, 700))
def test_any_bundle_splits_into_verifiable_chunks_that_rebuild_it(
    bundle: bytes, chunk_size: int
) -> None:
    meta = BundleMeta("inbound", 1, 1, b"\x02" * 16, 1, Kind.DATA)
    chunks = [decode_chunk(c, RING) for c in build_chunks(bundle, meta, chunk_size, KEY_A)]
    assert b"".join(c.payload for c in chunks) == bundle
    assert [c.header.index for c in chunks] == list(range(len(chunks)))


@settings(max_examples=300, deadline=None)
@given(position=st.integers(0, len(GOOD) - 1), bit=st.integers(0, 7))
def test_any_single_flipped_bit_is_rejected(position: int, bit: int) -> None:
    data = bytearray(GOOD)
    data[position] ^= 1 << bit
    with pytest.raises(RemoteError):
        decode_chunk(bytes(data), RING)


@settings(max_examples=100, deadline=None)
@given(length=st.integers(0, len(GOOD) - 1))
def test_any_truncation_is_rejected(length: int) -> None:
    assert reason_of(GOOD[:length]) in (Reason.TRUNCATED,)


@settings(max_examples=500, deadline=None)
@given(untrusted=st.binary(max_size=400))
def test_fuzz_raw_bytes_decode_or_raise_remote_error(untrusted: bytes) -> None:
    try:
        decode_chunk(untrusted, RING, decrypt_key=RECIPIENT)
    except RemoteError:
        pass


@settings(max_examples=300, deadline=None)
@given(header_bytes=st.binary(max_size=300), payload=st.binary(max_size=40))
def test_fuzz_signed_garbage_headers_decode_or_raise_remote_error(
    header_bytes: bytes, payload: bytes
) -> None:
    # Signed by a trusted key, so the strict header decoder itself is what is fuzzed.
    try:
        decode_chunk(sign_chunk(KEY_A, header_bytes, payload), RING)
    except RemoteError:
        pass


@settings(max_examples=200, deadline=None)
@given(
    values=st.dictionaries(
        st.sampled_from([*list(BASE), "x"]),
        st.one_of(
            st.integers(-5, 2**64 + 5),
            st.binary(max_size=40),
            st.text(max_size=40),
            st.none(),
            st.booleans(),
            st.floats(allow_nan=False),
        ),
    )
)
def test_fuzz_signed_header_maps_decode_or_raise_remote_error(values: dict[str, object]) -> None:
    merged = BASE | values
    try:
        raw = msgpack.packb(merged, use_bin_type=True)
    except (OverflowError, TypeError):
        return
    try:
        decode_chunk(sign_chunk(KEY_A, raw, b"hello"), RING)
    except RemoteError:
        pass
