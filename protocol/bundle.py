"""Cutting a bundle into chunks, and the heartbeat body. Pure functions, no I/O."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from protocol.chunk import ChunkHeader, Kind, chunk_count, encode_chunk
from protocol.errors import Reason, RemoteError
from protocol.keys import EncryptionKey, EncryptionPublicKey, SigningKey
from protocol.limits import MAX_BUNDLE_BYTES, MAX_CHUNKS

__all__ = [
    "HEARTBEAT_LEN",
    "BundleMeta",
    "Heartbeat",
    "build_chunks",
    "decode_heartbeat",
    "encode_heartbeat",
]

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
