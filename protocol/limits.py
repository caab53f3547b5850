"""Every limit of the wire format, each with the reason for its value.

The receiver checks these before it allocates, verifies or parses anything they bound.
"""

from __future__ import annotations

__all__ = [
    "DOMAIN",
    "ENCRYPTION_OVERHEAD",
    "FORMAT_VERSION",
    "HEADER_KEYS",
    "KEY_ID_LEN",
    "MAGIC",
    "MAX_BUNDLE_BYTES",
    "MAX_CHUNKS",
    "MAX_CHUNK_FILE_BYTES",
    "MAX_CHUNK_PAYLOAD",
    "MAX_CHUNK_SIZE",
    "MAX_HEADER_LEN",
    "MAX_STREAM_LEN",
    "MAX_U64",
    "PREFIX_LEN",
    "SIGNATURE_LEN",
]

MAGIC = b"MDLK"  # "maildiode link": tells a chunk from any other file a linkage may drop
FORMAT_VERSION = 1  # bumped on any change of the byte layout; receivers refuse unknown versions
PREFIX_LEN = 20  # magic 4 + version 1 + flags 1 + header_len 2 + payload_len 4 + key_id 8
KEY_ID_LEN = 8  # 64 bits: enough to tell a handful of configured keys apart, not a secret
SIGNATURE_LEN = 64  # Ed25519
DOMAIN = b"maildiode/chunk/v1\x00"  # domain separation: this key signs nothing else like it

MAX_HEADER_LEN = 1024  # the 11 header fields need < 200 bytes; room for nothing else
MAX_STREAM_LEN = 32  # stream ids are short names such as "inbound"
MAX_CHUNK_SIZE = 16 << 20  # 16 MiB: a chunk must fit comfortably in memory and a linkage file
ENCRYPTION_OVERHEAD = 32 + 16  # ephemeral X25519 public key + AES-GCM tag
MAX_CHUNK_PAYLOAD = MAX_CHUNK_SIZE + ENCRYPTION_OVERHEAD  # payload_len limit in the prefix
MAX_CHUNK_FILE_BYTES = PREFIX_LEN + MAX_HEADER_LEN + MAX_CHUNK_PAYLOAD + SIGNATURE_LEN
MAX_BUNDLE_BYTES = 256 << 20  # 256 MiB: far above a rendered mail; bounds reassembly memory
MAX_CHUNKS = 65536  # bounds per-bundle bookkeeping whatever the chunk size
MAX_U64 = (1 << 64) - 1  # epoch, seq and created are unsigned 64-bit

# Header keys in their canonical (encoding) order.
HEADER_KEYS = (
    "stream",
    "epoch",
    "seq",
    "bundle",
    "index",
    "count",
    "csize",
    "blen",
    "bsha",
    "created",
    "kind",
)
