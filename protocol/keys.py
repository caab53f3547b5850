"""Key pairs and key files: Ed25519 for signing, X25519 for optional payload encryption.

Files are PEM (PKCS#8 for private keys, SubjectPublicKeyInfo for public keys), so standard tools
can read them. Private key files are written 0600 and refused when group or others may read them.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterable, Iterator
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519

from protocol.durable import write_durably
from protocol.errors import KeyFileError, LocalError
from protocol.limits import KEY_ID_LEN

__all__ = [
    "EncryptionKey",
    "EncryptionPublicKey",
    "Keyring",
    "SigningKey",
    "VerifyKey",
    "key_id_of",
    "read_key_file",
]

MAX_KEY_FILE_BYTES = 16 * 1024  # a PEM key is a few hundred bytes; refuse anything absurd
MAX_KEYRING_KEYS = 2  # the current key and the next one, during a rotation
PRIVATE_MODE = 0o600  # owner read/write only


def key_id_of(raw_public_key: bytes) -> bytes:
    """First 8 bytes of SHA-256 of the raw 32-byte public key."""
    return hashlib.sha256(raw_public_key).digest()[:KEY_ID_LEN]


def _raw_public(key: ed25519.Ed25519PublicKey | x25519.X25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _raw_private(key: ed25519.Ed25519PrivateKey | x25519.X25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.Raw,
        serialization.PrivateFormat.Raw,
        serialization.NoEncryption(),
    )


def read_key_file(path: Path, *, private: bool) -> bytes:
    """A key (or other secret) file's bytes: it must exist, be a regular file of sane size,
    readable, and, when ``private``, readable by its owner only. The one home of these rules."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise KeyFileError(f"file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise KeyFileError(f"{path}: not a regular file")
    if private and info.st_mode & 0o077:
        mode = stat.S_IMODE(info.st_mode)
        raise KeyFileError(
            f"{path}: private key file is readable by group or others; a secret readable by "
            f"others (mode {mode:04o}) is refused; run: chmod 600 {path}"
        )
    if info.st_size > MAX_KEY_FILE_BYTES:
        raise KeyFileError(f"{path}: {info.st_size} bytes is too large for a key file")
    try:
        return path.read_bytes()
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot read key file: {exc.strerror}") from None


def _write_key_file(path: Path, data: bytes, *, private: bool) -> None:
    """Write atomically, the final mode from the start (write_durably: temp, fsync, rename)."""
    mode = PRIVATE_MODE if private else 0o644
    try:
        write_durably(path, data, mode=mode)
    except OSError as exc:
        raise KeyFileError(f"{path}: cannot write key file: {exc.strerror}") from None


def _first(exc: Exception) -> str:
    """The first sentence of a library's message (cryptography's go on with a web address)."""
    return str(exc).split(". ")[0].rstrip(".")


def _load_private_pem(path: Path) -> object:
    data = read_key_file(path, private=True)
    try:
        return serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not an unencrypted PEM private key ({_first(exc)})") from None


def _load_public_pem(path: Path) -> object:
    data = read_key_file(path, private=False)
    try:
        return serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise KeyFileError(f"{path}: not a PEM public key ({_first(exc)})") from None


class VerifyKey:
    """An Ed25519 public key and its key id."""

    def __init__(self, key: ed25519.Ed25519PublicKey) -> None:
        self._key = key
        self.raw = _raw_public(key)
        self.key_id = key_id_of(self.raw)

    @classmethod
    def from_raw(cls, raw: bytes) -> VerifyKey:
        return cls(ed25519.Ed25519PublicKey.from_public_bytes(raw))

    @classmethod
    def load(cls, path: str | Path) -> VerifyKey:
        key = _load_public_pem(Path(path))
        if not isinstance(key, ed25519.Ed25519PublicKey):
            raise KeyFileError(f"{path}: not an Ed25519 public key")
        return cls(key)

    def save(self, path: str | Path) -> None:
        pem = self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_key_file(Path(path), pem, private=False)

    def verify(self, signature: bytes, message: bytes) -> bool:
        try:
            self._key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def __repr__(self) -> str:
        return f"VerifyKey(key_id={self.key_id.hex()})"


class SigningKey:
    """An Ed25519 private key."""

    def __init__(self, key: ed25519.Ed25519PrivateKey) -> None:
        self._key = key
        self.verify_key = VerifyKey(key.public_key())
        self.key_id = self.verify_key.key_id

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(ed25519.Ed25519PrivateKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        """Deterministic key from a 32-byte seed (test vectors)."""
        return cls(ed25519.Ed25519PrivateKey.from_private_bytes(seed))

    @classmethod
    def load(cls, path: str | Path) -> SigningKey:
        key = _load_private_pem(Path(path))
        if not isinstance(key, ed25519.Ed25519PrivateKey):
            raise KeyFileError(f"{path}: not an Ed25519 private key")
        return cls(key)

    def save(self, path: str | Path) -> None:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_key_file(Path(path), pem, private=True)

    def sign(self, message: bytes) -> bytes:
        return self._key.sign(message)

    @property
    def seed(self) -> bytes:
        return _raw_private(self._key)

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id.hex()})"


class EncryptionPublicKey:
    """The receiver's X25519 public key that senders encrypt payloads to."""

    def __init__(self, key: x25519.X25519PublicKey) -> None:
        self._key = key
        self.raw = _raw_public(key)

    @classmethod
    def from_raw(cls, raw: bytes) -> EncryptionPublicKey:
        return cls(x25519.X25519PublicKey.from_public_bytes(raw))

    @classmethod
    def load(cls, path: str | Path) -> EncryptionPublicKey:
        key = _load_public_pem(Path(path))
        if not isinstance(key, x25519.X25519PublicKey):
            raise KeyFileError(f"{path}: not an X25519 public key")
        return cls(key)

    def save(self, path: str | Path) -> None:
        pem = self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        _write_key_file(Path(path), pem, private=False)

    @property
    def key(self) -> x25519.X25519PublicKey:
        return self._key


class EncryptionKey:
    """The receiver's X25519 private key (decrypts payloads encrypted to it)."""

    def __init__(self, key: x25519.X25519PrivateKey) -> None:
        self._key = key
        self.public_key = EncryptionPublicKey(key.public_key())

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(x25519.X25519PrivateKey.generate())

    @classmethod
    def from_raw(cls, raw: bytes) -> EncryptionKey:
        return cls(x25519.X25519PrivateKey.from_private_bytes(raw))

    @classmethod
    def load(cls, path: str | Path) -> EncryptionKey:
        key = _load_private_pem(Path(path))
        if not isinstance(key, x25519.X25519PrivateKey):
            raise KeyFileError(f"{path}: not an X25519 private key")
        return cls(key)

    def save(self, path: str | Path) -> None:
        pem = self._key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        _write_key_file(Path(path), pem, private=True)

    def exchange(self, peer: x25519.X25519PublicKey) -> bytes:
        return self._key.exchange(peer)


class Keyring:
    """The verify keys a receiver accepts: one, or two during a rotation."""

    def __init__(self, keys: Iterable[VerifyKey]) -> None:
        listed = list(keys)
        if not 1 <= len(listed) <= MAX_KEYRING_KEYS:
            raise LocalError(f"a keyring holds 1 or 2 keys (current and next), got {len(listed)}")
        self._by_id: dict[bytes, VerifyKey] = {}
        for key in listed:
            if key.key_id in self._by_id:
                raise LocalError(f"two keys in the keyring share key id {key.key_id.hex()}")
            self._by_id[key.key_id] = key

    @classmethod
    def load(cls, paths: Iterable[str | Path]) -> Keyring:
        return cls(VerifyKey.load(p) for p in paths)

    def get(self, key_id: bytes) -> VerifyKey | None:
        return self._by_id.get(key_id)

    def __iter__(self) -> Iterator[VerifyKey]:
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)
