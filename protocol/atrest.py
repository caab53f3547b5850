"""Encryption at rest: the one format both agents seal stored mail and personal data with.

A sealed blob (docs/protocol.md §17, "Sealed at rest")::

    offset  size  field
    0       4     magic b"MDAR"
    4       1     version (1)
    5       8     key id: the first 8 bytes of SHA-256(b"maildiode/at-rest-key-id/v1" || key)
    13      12    nonce (random per blob)
    25      n+16  AES-256-GCM ciphertext and tag; the 25 header bytes are the AAD

An agent's keys live in one key file (mode 0600, in the keys folder, never beside the data):
one key a line, ``<key id hex> <key base64>``, the newest last. The newest seals; every key
in the file opens, so a file sealed before a rotation still opens after it (the key id in the
blob says which key). :func:`seal` and :func:`open_blob` are pure (the nonce is passed in);
:class:`AtRestKeyring` adds the random nonce and the key file. A store with no key
configured uses :data:`CLEAR` (stores plaintext, refuses a sealed blob by name).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol.durable import write_durably
from protocol.errors import AtRestError

__all__ = [
    "CLEAR",
    "HEADER_LEN",
    "KEY_ID_LEN",
    "MAGIC",
    "AtRest",
    "AtRestKey",
    "AtRestKeyring",
    "ClearAtRest",
    "is_sealed",
    "open_blob",
    "seal",
]

MAGIC = b"MDAR"
VERSION = 1
KEY_LEN = 32  # AES-256
KEY_ID_LEN = 8  # names a key among the few an agent has; not a secret, not a MAC
NONCE_LEN = 12  # random: 2**32 blobs per key keep the collision chance below 2**-32 (rotate)
TAG_LEN = 16
HEADER_LEN = len(MAGIC) + 1 + KEY_ID_LEN + NONCE_LEN
KEY_ID_LABEL = b"maildiode/at-rest-key-id/v1"
MAX_KEY_FILE_BYTES = 64 << 10  # a thousand rotations fit; anything larger is not our file
MAX_KEYS = 1000


def key_id_of(raw: bytes) -> bytes:
    return hashlib.sha256(KEY_ID_LABEL + raw).digest()[:KEY_ID_LEN]


class AtRestKey:
    """One AES-256 key and its id; the AESGCM object is made once (it is the costly part)."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != KEY_LEN:
            raise AtRestError(f"an at-rest key is {KEY_LEN} bytes, not {len(raw)}")
        self.raw = raw
        self.key_id = key_id_of(raw)
        self.aead = AESGCM(raw)

    @classmethod
    def generate(cls) -> AtRestKey:
        return cls(os.urandom(KEY_LEN))

    def line(self) -> str:
        return f"{self.key_id.hex()} {base64.b64encode(self.raw).decode()}"

    def __repr__(self) -> str:
        return f"AtRestKey(key_id={self.key_id.hex()})"  # never the key itself


def seal(plaintext: bytes, key: AtRestKey, nonce: bytes) -> bytes:
    """Produce: header (magic, version, key id, nonce), then AES-GCM over plaintext, header AAD."""
    if len(nonce) != NONCE_LEN:
        raise AtRestError(f"a nonce is {NONCE_LEN} bytes, not {len(nonce)}")
    header = MAGIC + bytes([VERSION]) + key.key_id + nonce
    return header + key.aead.encrypt(nonce, plaintext, header)


def is_sealed(data: bytes) -> bool:
    return data[: len(MAGIC)] == MAGIC


def open_blob(untrusted: bytes, keys: Sequence[AtRestKey], where: str) -> bytes:
    """Verify: magic, version, length, a known key id, then the tag; only then the plaintext.
    Every refusal is an AtRestError naming ``where`` and why (never the key)."""
    if not is_sealed(untrusted):
        raise AtRestError(f"{where}: not sealed at rest (no {MAGIC!r} header)")
    if untrusted[len(MAGIC)] != VERSION:
        raise AtRestError(f"{where}: sealed with format version {untrusted[len(MAGIC)]}, not 1")
    if len(untrusted) < HEADER_LEN + TAG_LEN:
        raise AtRestError(f"{where}: sealed blob shorter than its header and tag (torn)")
    key_id = untrusted[5 : 5 + KEY_ID_LEN]
    key = next((k for k in keys if k.key_id == key_id), None)
    if key is None:
        raise AtRestError(f"{where}: sealed with key {key_id.hex()}, which the key file lacks")
    nonce = untrusted[5 + KEY_ID_LEN : HEADER_LEN]
    try:
        return key.aead.decrypt(nonce, untrusted[HEADER_LEN:], untrusted[:HEADER_LEN])
    except InvalidTag:
        raise AtRestError(f"{where}: sealed blob does not verify (changed or torn)") from None


class AtRest(Protocol):
    """What a store needs: seal before it writes, open after it reads (in memory only)."""

    @property
    def sealing(self) -> bool: ...

    def seal(self, plaintext: bytes) -> bytes: ...

    def open(self, stored: bytes, where: str) -> bytes: ...


class ClearAtRest:
    """No key configured: stores plaintext; a sealed blob is refused, never passed on."""

    sealing = False

    def seal(self, plaintext: bytes) -> bytes:
        return plaintext

    def open(self, stored: bytes, where: str) -> bytes:
        if is_sealed(stored):
            raise AtRestError(f"{where}: sealed at rest, but no at-rest key is configured")
        return stored


CLEAR = ClearAtRest()


class AtRestKeyring:
    """An agent's at-rest keys: the newest seals, all of them open."""

    sealing = True

    def __init__(self, keys: Sequence[AtRestKey]) -> None:
        if not keys:
            raise AtRestError("an at-rest keyring needs at least one key")
        self.keys = tuple(keys)
        self.current = self.keys[-1]

    def seal(self, plaintext: bytes) -> bytes:
        return seal(plaintext, self.current, os.urandom(NONCE_LEN))

    def open(self, stored: bytes, where: str) -> bytes:
        return open_blob(stored, self.keys, where)

    def open_or_clear(self, stored: bytes, where: str) -> bytes:
        """For our own record formats, whose clear form never starts with the magic: a file
        written before sealing was configured still reads."""
        return self.open(stored, where) if is_sealed(stored) else stored

    def rotated(self) -> AtRestKeyring:
        if len(self.keys) >= MAX_KEYS:
            raise AtRestError(f"{MAX_KEYS} at-rest keys already; re-encrypt and drop old ones")
        return AtRestKeyring([*self.keys, AtRestKey.generate()])

    @classmethod
    def generate(cls) -> AtRestKeyring:
        return cls([AtRestKey.generate()])

    @classmethod
    def load(cls, path: Path) -> AtRestKeyring:
        return cls(_parse_key_file(_read_private(path), path))

    def save(self, path: Path) -> None:
        text = "".join(f"{key.line()}\n" for key in self.keys)
        try:
            write_durably(path, text.encode(), mode=0o600)
        except OSError as exc:
            raise AtRestError(
                f"{path}: cannot write the at-rest key file: {exc.strerror}"
            ) from None


def _read_private(path: Path) -> bytes:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_KEY_FILE_BYTES:
            raise AtRestError(f"{path}: not an at-rest key file (not a small regular file)")
        if info.st_mode & 0o077:
            raise AtRestError(
                f"{path}: at-rest key file is readable by group or others "
                f"(mode {stat.S_IMODE(info.st_mode):04o}); run: chmod 600 {path}"
            )
        return path.read_bytes()
    except OSError as exc:
        raise AtRestError(f"{path}: cannot read the at-rest key file: {exc.strerror}") from None


def _parse_key_file(data: bytes, path: Path) -> list[AtRestKey]:
    keys = []
    for number, line in enumerate(data.decode("ascii", "replace").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        id_hex, _, encoded = line.strip().partition(" ")
        try:
            key = AtRestKey(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError, AtRestError):
            raise AtRestError(f"{path}: line {number}: not '<key id> <base64 key>'") from None
        if key.key_id.hex() != id_hex:
            raise AtRestError(f"{path}: line {number}: key id {id_hex} does not match its key")
        keys.append(key)
    if not keys:
        raise AtRestError(f"{path}: no at-rest key in the file")
    return keys
