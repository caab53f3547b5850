"""The wire between the zones: signed chunks, bundles, sequence numbers, transports.

Nothing about mail. See docs/protocol.md for the byte-level specification.
"""

from protocol.armor import armor, dearmor
from protocol.bundle import BundleMeta, Heartbeat, build_chunks
from protocol.chunk import Chunk, ChunkHeader, Kind, Prefix, decode_chunk, encode_chunk
from protocol.errors import (
    BundleIdConflict,
    DoesNotVerify,
    KeyFileError,
    LocalError,
    ProtocolError,
    Reason,
    RemoteError,
)
from protocol.intake import ClaimedFile, FolderIntake
from protocol.keys import (
    EncryptionKey,
    EncryptionPublicKey,
    Keyring,
    SigningKey,
    VerifyKey,
    key_id_of,
)
from protocol.reader import LinkReader
from protocol.receiver import Accepted, LinkStatus, ReceivedBundle, Receiver
from protocol.sender import PublishReceipt, Sender
from protocol.tcp_intake import TcpIntake
from protocol.transport import FolderTransport, TcpTransport, Transport

__all__ = [
    "Accepted",
    "BundleIdConflict",
    "BundleMeta",
    "Chunk",
    "ChunkHeader",
    "ClaimedFile",
    "DoesNotVerify",
    "EncryptionKey",
    "EncryptionPublicKey",
    "FolderIntake",
    "FolderTransport",
    "Heartbeat",
    "KeyFileError",
    "Keyring",
    "Kind",
    "LinkReader",
    "LinkStatus",
    "LocalError",
    "Prefix",
    "ProtocolError",
    "PublishReceipt",
    "Reason",
    "ReceivedBundle",
    "Receiver",
    "RemoteError",
    "Sender",
    "SigningKey",
    "TcpIntake",
    "TcpTransport",
    "Transport",
    "VerifyKey",
    "armor",
    "build_chunks",
    "dearmor",
    "decode_chunk",
    "encode_chunk",
    "key_id_of",
]
