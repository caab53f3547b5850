"""The chunk codec: bytes in, typed values out. No I/O; randomness and time are passed in.

Layout (see docs/protocol.md):

    prefix (20) | header (msgpack map, header_len) | payload (payload_len) | signature (64)

Decoding verifies in the order the spec numbers: bounds of the fixed prefix, exact length, key
lookup, Ed25519 signature, and only then the msgpack header (strict limits, canonical form,
exact key set), the header's ranges, and decryption.
"""

from __future__ import annotations

import enum
import hashlib
import re
import struct
from dataclasses import dataclass
from typing import Any

import msgpack

from protocol.errors import DoesNotVerify, Reason, RemoteError
from protocol.keys import EncryptionKey, EncryptionPublicKey, Keyring, SigningKey
from protocol.limits import (
    BUNDLE_ID_LEN,
    DOMAIN,
    ENCRYPTION_OVERHEAD,
    FORMAT_VERSION,
    HEADER_KEYS,
    MAGIC,
    MAX_BUNDLE_BYTES,
    MAX_CHUNK_PAYLOAD,
    MAX_CHUNK_SIZE,
    MAX_CHUNKS,
    MAX_HEADER_LEN,
    MAX_STREAM_LEN,
    MAX_U64,
    PREFIX_LEN,
    SHA256_LEN,
    SIGNATURE_LEN,
)
from protocol.sealing import open_sealed, seal

__all__ = [
    "FLAG_ENCRYPTED",
    "Chunk",
    "ChunkHeader",
    "Kind",
    "Prefix",
    "check_header",
    "chunk_count",
    "decode_chunk",
    "encode_chunk",
    "encode_header",
    "parse_prefix",
    "peek_header",
    "sign_chunk",
    "sign_parts",
    "signed_message",
    "valid_stream",
]

FLAG_ENCRYPTED = 0x01
KNOWN_FLAGS = FLAG_ENCRYPTED
PREFIX_STRUCT = struct.Struct(">4sBBHI8s")
# Stream ids: short ASCII names only, 1 to MAX_STREAM_LEN characters.
STREAM_PATTERN = re.compile(rf"[a-z0-9][a-z0-9._-]{{0,{MAX_STREAM_LEN - 1}}}")
STREAM_RULE = f"1-{MAX_STREAM_LEN} of [a-z0-9._-], the first [a-z0-9]"  # for error messages


class Kind(enum.IntEnum):
    """What a bundle is. Unknown kinds are refused, never treated as data."""

    DATA = 1
    HEARTBEAT = 2
    CONTROL = 3


@dataclass(frozen=True, slots=True)
class Prefix:
    version: int
    flags: int
    header_len: int
    payload_len: int
    key_id: bytes

    @property
    def encrypted(self) -> bool:
        return bool(self.flags & FLAG_ENCRYPTED)

    @property
    def total_len(self) -> int:
        return PREFIX_LEN + self.header_len + self.payload_len + SIGNATURE_LEN

    def pack(self) -> bytes:
        return PREFIX_STRUCT.pack(
            MAGIC, self.version, self.flags, self.header_len, self.payload_len, self.key_id
        )


@dataclass(frozen=True, slots=True)
class ChunkHeader:
    stream: str
    epoch: int
    seq: int
    bundle: bytes
    index: int
    count: int
    csize: int
    blen: int
    bsha: bytes
    created: int
    kind: Kind

    @property
    def plain_len(self) -> int:
        """Bytes of the bundle this chunk carries: csize, except the last chunk."""
        if self.index < self.count - 1:
            return self.csize
        return self.blen - self.index * self.csize

    @property
    def offset(self) -> int:
        return self.index * self.csize

    def as_dict(self) -> dict[str, Any]:
        return {key: getattr(self, key) for key in HEADER_KEYS}


@dataclass(frozen=True, slots=True)
class Chunk:
    """A verified chunk. ``payload`` is the plaintext bundle slice."""

    prefix: Prefix
    header: ChunkHeader
    payload: bytes

    @property
    def payload_offset(self) -> int:
        """Where the (possibly encrypted) payload starts in the chunk file."""
        return PREFIX_LEN + self.prefix.header_len


def chunk_count(blen: int, csize: int) -> int:
    """Chunks for a bundle: ceil(blen / csize), and one chunk for an empty bundle."""
    return max(1, -(-blen // csize))


def valid_stream(stream: str) -> bool:
    return STREAM_PATTERN.fullmatch(stream) is not None


# ---------------------------------------------------------------------------------------------
# Produce


def encode_header(header: ChunkHeader) -> bytes:
    """Canonical msgpack: a map with the keys in HEADER_KEYS order, smallest integer forms."""
    values = header.as_dict()
    values["kind"] = int(header.kind)
    packed: bytes = msgpack.packb(values, use_bin_type=True)
    return packed


def signed_message(prefix: bytes, header_bytes: bytes, payload_hash: bytes) -> bytes:
    """What Ed25519 signs: DOMAIN ‖ prefix ‖ header ‖ SHA-256(payload).

    Hashing the payload first (SHA-256 releases the GIL; the Ed25519 call then signs ~250
    bytes) lets signing overlap the disk writes of other chunks, and lets a verifier hash a
    payload in place. The payload is bound by its SHA-256 and by ``payload_len`` in the
    signed prefix.
    """
    return b"".join((DOMAIN, prefix, header_bytes, payload_hash))


def sign_parts(
    signing_key: SigningKey,
    header_bytes: bytes,
    payload_len: int,
    payload_hash: bytes,
    *,
    flags: int = 0,
) -> tuple[bytes, bytes]:
    """(prefix ‖ header, signature) of a chunk whose payload has ``payload_hash``."""
    prefix = Prefix(FORMAT_VERSION, flags, len(header_bytes), payload_len, signing_key.key_id)
    packed = prefix.pack()
    signature = signing_key.sign(signed_message(packed, header_bytes, payload_hash))
    return packed + header_bytes, signature


def sign_chunk(
    signing_key: SigningKey, header_bytes: bytes, payload: bytes | memoryview, *, flags: int = 0
) -> bytes:
    """Frame and sign raw header bytes and payload (also used to build invalid test vectors)."""
    payload_hash = hashlib.sha256(payload).digest()
    head, signature = sign_parts(signing_key, header_bytes, len(payload), payload_hash, flags=flags)
    return b"".join((head, payload, signature))


def encode_chunk(
    header: ChunkHeader,
    payload: bytes | memoryview,
    signing_key: SigningKey,
    *,
    encrypt_to: EncryptionPublicKey | None = None,
    ephemeral: EncryptionKey | None = None,
) -> bytes:
    """One chunk file. With ``encrypt_to``, ``ephemeral`` must be a fresh key (randomness in)."""
    check_header(header, len(payload))
    header_bytes = encode_header(header)
    if encrypt_to is None:
        return sign_chunk(signing_key, header_bytes, payload)
    if ephemeral is None:
        raise ValueError("encryption needs a fresh ephemeral key per chunk")
    sealed_len = len(payload) + ENCRYPTION_OVERHEAD
    prefix = Prefix(
        FORMAT_VERSION, FLAG_ENCRYPTED, len(header_bytes), sealed_len, signing_key.key_id
    )
    sealed = seal(bytes(payload), encrypt_to, ephemeral, prefix.pack() + header_bytes)
    return sign_chunk(signing_key, header_bytes, sealed, flags=FLAG_ENCRYPTED)


# ---------------------------------------------------------------------------------------------
# Verify


def parse_prefix(untrusted: bytes) -> Prefix:
    """Steps 1-3: fixed prefix bounds and exact total length. No crypto yet."""
    if len(untrusted) < PREFIX_LEN:
        raise RemoteError(Reason.TRUNCATED, f"{len(untrusted)} bytes is shorter than the prefix")
    magic, version, flags, header_len, payload_len, key_id = PREFIX_STRUCT.unpack_from(untrusted)
    if magic != MAGIC:
        raise RemoteError(Reason.BAD_MAGIC, "file does not start with the chunk magic")
    if version != FORMAT_VERSION:
        raise RemoteError(Reason.BAD_VERSION, f"format version {version} is not supported")
    if flags & ~KNOWN_FLAGS:
        raise RemoteError(Reason.BAD_FLAGS, f"reserved flag bits set (flags {flags:#04x})")
    if header_len > MAX_HEADER_LEN:
        raise RemoteError(Reason.TOO_LARGE, f"header_len {header_len} > {MAX_HEADER_LEN}")
    if payload_len > MAX_CHUNK_PAYLOAD:
        raise RemoteError(Reason.TOO_LARGE, f"payload_len {payload_len} > {MAX_CHUNK_PAYLOAD}")
    prefix = Prefix(version, flags, header_len, payload_len, key_id)
    if len(untrusted) != prefix.total_len:
        raise RemoteError(
            Reason.TRUNCATED, f"file is {len(untrusted)} bytes, prefix says {prefix.total_len}"
        )
    return prefix


def decode_chunk(
    untrusted: bytes, keyring: Keyring, *, decrypt_key: EncryptionKey | None = None
) -> Chunk:
    """Verify and decode one chunk file, or raise RemoteError (DoesNotVerify for key/signature)."""
    prefix = parse_prefix(untrusted)
    verify_key = keyring.get(prefix.key_id)
    if verify_key is None:
        raise DoesNotVerify(Reason.UNKNOWN_KEY, f"no configured key has id {prefix.key_id.hex()}")
    signed_end = len(untrusted) - SIGNATURE_LEN
    header_end = PREFIX_LEN + prefix.header_len
    view = memoryview(untrusted)
    message = signed_message(
        untrusted[:PREFIX_LEN],
        untrusted[PREFIX_LEN:header_end],
        hashlib.sha256(view[header_end:signed_end]).digest(),
    )
    if not verify_key.verify(untrusted[signed_end:], message):
        raise DoesNotVerify(Reason.BAD_SIGNATURE, f"signature under key {verify_key.key_id.hex()}")
    header = _decode_header(untrusted[PREFIX_LEN:header_end])
    plain_len = prefix.payload_len - (ENCRYPTION_OVERHEAD if prefix.encrypted else 0)
    check_header(header, plain_len)
    payload = untrusted[header_end:signed_end]
    if prefix.encrypted:
        if decrypt_key is None:
            raise RemoteError(Reason.CANNOT_DECRYPT, "payload is encrypted and no key is set")
        payload = open_sealed(payload, decrypt_key, untrusted[:header_end])
    return Chunk(prefix, header, payload)


def peek_header(untrusted: bytes) -> tuple[Prefix, dict[str, Any] | None]:
    """UNVERIFIED prefix and header, for diagnostics only (``maildiode inspect``)."""
    prefix = parse_prefix(untrusted)
    try:
        values = _unpack_strict(untrusted[PREFIX_LEN : PREFIX_LEN + prefix.header_len])
    except RemoteError:
        return prefix, None
    return prefix, values


def _refuse_ext(code: int, data: bytes) -> object:
    raise RemoteError(Reason.BAD_HEADER, f"msgpack extension type {code} is not allowed")


def _unpack_strict(untrusted_header: bytes) -> dict[str, Any]:
    try:
        values = msgpack.unpackb(
            untrusted_header,
            raw=False,
            use_list=False,
            strict_map_key=True,
            max_str_len=64,
            max_bin_len=SHA256_LEN,
            max_array_len=0,
            max_map_len=len(HEADER_KEYS),
            max_ext_len=0,
            ext_hook=_refuse_ext,
        )
    except RemoteError:
        raise
    except Exception as exc:  # noqa: BLE001 - any decoder failure on these bytes is the peer's
        raise RemoteError(Reason.BAD_HEADER, f"not a valid msgpack header ({exc})") from None
    if not isinstance(values, dict):
        raise RemoteError(Reason.BAD_HEADER, "header is not a msgpack map")
    return values


def _decode_header(untrusted_header: bytes) -> ChunkHeader:
    values = _unpack_strict(untrusted_header)
    if tuple(values) != HEADER_KEYS:
        raise RemoteError(Reason.BAD_HEADER, f"header keys {sorted(map(str, values))} are wrong")
    _check_types(values)
    try:
        kind = Kind(values["kind"])
    except ValueError:
        raise RemoteError(Reason.UNKNOWN_KIND, f"kind {values['kind']} is unknown") from None
    header = ChunkHeader(**{**values, "kind": kind})
    if encode_header(header) != untrusted_header:
        raise RemoteError(Reason.BAD_HEADER, "header is not in canonical encoding")
    return header


_INT_KEYS = ("epoch", "seq", "index", "count", "csize", "blen", "created", "kind")


def _check_types(values: dict[str, Any]) -> None:
    for key in _INT_KEYS:
        value = values[key]
        if type(value) is not int or not 0 <= value <= MAX_U64:
            raise RemoteError(Reason.BAD_HEADER, f"{key} is not an unsigned 64-bit integer")
    if type(values["stream"]) is not str:
        raise RemoteError(Reason.BAD_HEADER, "stream is not a string")
    for key, length in (("bundle", BUNDLE_ID_LEN), ("bsha", SHA256_LEN)):
        value = values[key]
        if type(value) is not bytes or len(value) != length:
            raise RemoteError(Reason.BAD_HEADER, f"{key} is not {length} bytes")


def check_header(header: ChunkHeader, plain_len: int) -> None:
    """Ranges and the chunk's own consistency (also applied when producing)."""
    if not valid_stream(header.stream):
        raise RemoteError(Reason.LIMITS, f"stream id is not {STREAM_RULE}")
    if not 1 <= header.csize <= MAX_CHUNK_SIZE:
        raise RemoteError(Reason.LIMITS, f"csize {header.csize} outside 1..{MAX_CHUNK_SIZE}")
    if header.blen > MAX_BUNDLE_BYTES:
        raise RemoteError(Reason.LIMITS, f"blen {header.blen} > {MAX_BUNDLE_BYTES}")
    if not 1 <= header.count <= MAX_CHUNKS:
        raise RemoteError(Reason.LIMITS, f"count {header.count} outside 1..{MAX_CHUNKS}")
    if header.count != chunk_count(header.blen, header.csize):
        raise RemoteError(Reason.INCONSISTENT, "count does not match blen and csize")
    if header.index >= header.count:
        raise RemoteError(Reason.LIMITS, f"index {header.index} >= count {header.count}")
    if plain_len != header.plain_len:
        raise RemoteError(
            Reason.INCONSISTENT, f"payload is {plain_len} bytes, header implies {header.plain_len}"
        )
    if header.kind is Kind.HEARTBEAT and header.count != 1:
        raise RemoteError(Reason.LIMITS, "a heartbeat is a single chunk")
    if len(header.bundle) != BUNDLE_ID_LEN or len(header.bsha) != SHA256_LEN:
        raise RemoteError(Reason.LIMITS, "bundle id or hash has the wrong length")
