"""Every limit of the wire format, each with the reason for its value; and the defaults the two
ends start from, which an agent's ``[link]`` section may change.

The receiver checks the limits before it allocates, verifies or parses anything they bound.
"""

from __future__ import annotations

__all__ = [
    "BUNDLE_ID_LEN",
    "DEFAULT_CHUNK_SIZE",
    "DEFAULT_GAP_WAIT_S",
    "DEFAULT_HEARTBEAT_S",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_RESEND_WINDOW_S",
    "DEFAULT_SETTLE_S",
    "DEFAULT_SILENCE_ALARM_S",
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
    "SHA256_LEN",
    "SIGNATURE_LEN",
]

MAGIC = b"MDLK"  # "maildiode link": tells a chunk from any other file a linkage may drop
FORMAT_VERSION = 1  # bumped on any change of the byte layout; receivers refuse unknown versions
PREFIX_LEN = 20  # magic 4 + version 1 + flags 1 + header_len 2 + payload_len 4 + key_id 8
KEY_ID_LEN = 8  # 64 bits: enough to tell a handful of configured keys apart, not a secret
SIGNATURE_LEN = 64  # Ed25519
BUNDLE_ID_LEN = 16  # 128 random bits (or a mail id's 16 bytes): unique without coordination
SHA256_LEN = 32  # bsha, the SHA-256 of the whole bundle
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

# Defaults of the ends (Sender, Receiver, FolderIntake and the agents' [link] section).
DEFAULT_CHUNK_SIZE = 1 << 20  # 1 MiB: small enough for any linkage file limit, few files per mail
DEFAULT_HEARTBEAT_S = 30.0  # an idle link says it is alive twice a minute
DEFAULT_GAP_WAIT_S = 300.0  # a missing seq is reported after 5 minutes (linkages reorder files)
DEFAULT_SILENCE_ALARM_S = 180.0  # six missed heartbeats: the link is silent
DEFAULT_RESEND_WINDOW_S = 7 * 86400.0  # a week: what an operator can still ask to resend
DEFAULT_SETTLE_S = 1.0  # a file unchanged this long is complete (linkages write in place)
DEFAULT_MAX_FILE_BYTES = 20 << 20  # one 16 MiB chunk plus armour room; bigger is refused unread

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
