"""Cutting a bundle into chunks, and the heartbeat body. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from protocol.chunk import (
    ChunkHeader,
    Kind,
    check_header,
    chunk_count,
    encode_chunk,
    encode_header,
    sign_parts,
)
from protocol.errors import Reason, RemoteError
from protocol.keys import EncryptionKey, EncryptionPublicKey, SigningKey
from protocol.limits import MAX_BUNDLE_BYTES, MAX_CHUNKS, PREFIX_LEN

__all__ = [
    "HEARTBEAT_LEN",
    "BundleMeta",
    "Heartbeat",
    "PlannedChunk",
    "build_chunks",
    "decode_heartbeat",
    "encode_heartbeat",
    "plan_chunks",
]

BSHA_PLACEHOLDER = bytes(32)  # same encoded size as any SHA-256, so offsets do not move

HEARTBEAT = struct.Struct(">QQ")  # last seq, epoch
HEARTBEAT_LEN = HEARTBEAT.size


@dataclass(frozen=True, slots=True)
class BundleMeta:
    """What every chunk of one bundle repeats in its header."""

    stream: str
    epoch: int
    seq: int
    bundle_id: bytes
    created_ms: int
    kind: Kind


@dataclass(frozen=True, slots=True)
class Heartbeat:
    last_seq: int
    epoch: int


def build_chunks(
    bundle: bytes,
    meta: BundleMeta,
    chunk_size: int,
    signing_key: SigningKey,
    *,
    encrypt_to: EncryptionPublicKey | None = None,
    new_ephemeral: Callable[[], EncryptionKey] = EncryptionKey.generate,
    digest: bytes | None = None,
) -> Iterator[bytes]:
    """Yield the signed chunk files of ``bundle`` in index order, one at a time.

    ``digest`` is the bundle's SHA-256 when the caller already has it (saves a pass).
    """
    if len(bundle) > MAX_BUNDLE_BYTES:
        raise ValueError(f"bundle of {len(bundle)} bytes exceeds {MAX_BUNDLE_BYTES}")
    count = chunk_count(len(bundle), chunk_size)
    if count > MAX_CHUNKS:
        raise ValueError(f"{count} chunks exceed {MAX_CHUNKS}; use a larger chunk size")
    if digest is None:
        digest = hashlib.sha256(bundle).digest()
    view = memoryview(bundle)
    for index in range(count):
        header = ChunkHeader(
            stream=meta.stream,
            epoch=meta.epoch,
            seq=meta.seq,
            bundle=meta.bundle_id,
            index=index,
            count=count,
            csize=chunk_size,
            blen=len(bundle),
            bsha=digest,
            created=meta.created_ms,
            kind=meta.kind,
        )
        payload = view[index * chunk_size : (index + 1) * chunk_size]
        ephemeral = new_ephemeral() if encrypt_to is not None else None
        yield encode_chunk(header, payload, signing_key, encrypt_to=encrypt_to, ephemeral=ephemeral)


@dataclass(frozen=True, slots=True)
class PlannedChunk:
    """A plain chunk laid out before its bundle's hash is known: the payload can be written at
    ``payload_offset`` while the hash is computed; ``finish`` then gives the prefix + header
    and the signature. The result is byte-identical to ``build_chunks``."""

    header: ChunkHeader  # bsha is a placeholder until finish()
    payload: memoryview
    payload_offset: int

    def finish(
        self, bsha: bytes, payload_hash: bytes, signing_key: SigningKey
    ) -> tuple[bytes, bytes]:
        header = replace(self.header, bsha=bsha)
        check_header(header, len(self.payload))
        return sign_parts(signing_key, encode_header(header), len(self.payload), payload_hash)


def plan_chunks(bundle: bytes, meta: BundleMeta, chunk_size: int) -> list[PlannedChunk]:
    """The chunks of ``bundle`` (unencrypted), to be finished once its SHA-256 is known."""
    count = chunk_count(len(bundle), chunk_size)
    if len(bundle) > MAX_BUNDLE_BYTES or count > MAX_CHUNKS:
        raise ValueError(f"bundle of {len(bundle)} bytes in {count} chunks is over the limits")
    view = memoryview(bundle)
    plans = []
    for index in range(count):
        header = ChunkHeader(
            stream=meta.stream, epoch=meta.epoch, seq=meta.seq, bundle=meta.bundle_id,
            index=index, count=count, csize=chunk_size, blen=len(bundle),
            bsha=BSHA_PLACEHOLDER, created=meta.created_ms, kind=meta.kind,
        )  # fmt: skip
        payload = view[index * chunk_size : (index + 1) * chunk_size]
        plans.append(PlannedChunk(header, payload, PREFIX_LEN + len(encode_header(header))))
    return plans


def encode_heartbeat(last_seq: int, epoch: int) -> bytes:
    return HEARTBEAT.pack(last_seq, epoch)


def decode_heartbeat(header: ChunkHeader, untrusted_payload: bytes) -> Heartbeat:
    """A heartbeat's body must repeat its header's seq and epoch exactly."""
    if len(untrusted_payload) != HEARTBEAT_LEN:
        raise RemoteError(Reason.INCONSISTENT, "heartbeat body is not 16 bytes")
    if hashlib.sha256(untrusted_payload).digest() != header.bsha:
        raise RemoteError(Reason.BAD_HASH, "heartbeat body does not match its hash")
    last_seq, epoch = HEARTBEAT.unpack(untrusted_payload)
    if (last_seq, epoch) != (header.seq, header.epoch):
        raise RemoteError(Reason.INCONSISTENT, "heartbeat body disagrees with its header")
    return Heartbeat(last_seq=last_seq, epoch=epoch)
