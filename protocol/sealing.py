"""Optional payload encryption: ephemeral X25519 -> HKDF-SHA256 -> AES-256-GCM.

A fresh ephemeral key per chunk makes the derived key unique per chunk, so the fixed all-zero
nonce is never reused under one key. The AAD binds the ciphertext to the chunk's prefix and
header. The chunk is signed after sealing (encrypt-then-sign), so forgeries are refused before
any decryption is attempted.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import x25519
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from protocol.errors import Reason, RemoteError
from protocol.keys import EncryptionKey, EncryptionPublicKey

__all__ = ["HKDF_INFO", "NONCE", "open_sealed", "seal"]

HKDF_INFO = b"maildiode/chunk-key/v1"
NONCE = bytes(12)  # safe only because every chunk key is derived from a fresh ephemeral key
EPHEMERAL_LEN = 32  # raw X25519 public key


def _chunk_key(shared: bytes, ephemeral_pub: bytes, recipient_pub: bytes) -> bytes:
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=ephemeral_pub + recipient_pub,
        info=HKDF_INFO,
    )
    return hkdf.derive(shared)


def seal(
    plaintext: bytes, recipient: EncryptionPublicKey, ephemeral: EncryptionKey, aad: bytes
) -> bytes:
    """Payload = ephemeral public key (32) || AES-256-GCM ciphertext and tag."""
    ephemeral_pub = ephemeral.public_key.raw
    key = _chunk_key(ephemeral.exchange(recipient.key), ephemeral_pub, recipient.raw)
    return ephemeral_pub + AESGCM(key).encrypt(NONCE, plaintext, aad)


def open_sealed(untrusted_payload: bytes, key: EncryptionKey, aad: bytes) -> bytes:
    """Decrypt a sealed payload or raise RemoteError(CANNOT_DECRYPT)."""
    if len(untrusted_payload) < EPHEMERAL_LEN + 16:
        raise RemoteError(Reason.CANNOT_DECRYPT, "encrypted payload shorter than its overhead")
    ephemeral_pub = untrusted_payload[:EPHEMERAL_LEN]
    try:
        peer = x25519.X25519PublicKey.from_public_bytes(ephemeral_pub)
        shared = key.exchange(peer)
    except ValueError:
        raise RemoteError(Reason.CANNOT_DECRYPT, "ephemeral key is not usable") from None
    chunk_key = _chunk_key(shared, ephemeral_pub, key.public_key.raw)
    try:
        return AESGCM(chunk_key).decrypt(NONCE, untrusted_payload[EPHEMERAL_LEN:], aad)
    except InvalidTag:
        raise RemoteError(Reason.CANNOT_DECRYPT, "authentication tag does not match") from None
