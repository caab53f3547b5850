"""Key files: modes, refusals, types, key ids, keyrings."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

import pytest

from protocol import (
    EncryptionKey,
    EncryptionPublicKey,
    KeyFileError,
    Keyring,
    LocalError,
    SigningKey,
    VerifyKey,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_private_key_is_written_0600_and_loads_back(tmp_path: Path) -> None:
    key = SigningKey.generate()
    key.save(tmp_path / "k.key")
    key.verify_key.save(tmp_path / "k.pub")
    assert mode(tmp_path / "k.key") == 0o600
    assert mode(tmp_path / "k.pub") == 0o644
    assert SigningKey.load(tmp_path / "k.key").key_id == key.key_id
    assert VerifyKey.load(tmp_path / "k.pub").raw == key.verify_key.raw
    assert b"PRIVATE KEY" in (tmp_path / "k.key").read_bytes()


def test_private_key_is_0600_even_with_a_lax_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        SigningKey.generate().save(tmp_path / "k.key")
        EncryptionKey.generate().save(tmp_path / "e.key")
    finally:
        os.umask(old)
    assert mode(tmp_path / "k.key") == 0o600
    assert mode(tmp_path / "e.key") == 0o600


@pytest.mark.parametrize("lax", [0o644, 0o640, 0o604, 0o660])
def test_group_or_other_readable_private_key_is_refused(tmp_path: Path, lax: int) -> None:
    path = tmp_path / "k.key"
    SigningKey.generate().save(path)
    path.chmod(lax)
    with pytest.raises(KeyFileError, match=r"readable by group or others.*chmod 600"):
        SigningKey.load(path)
    with pytest.raises(KeyFileError, match="chmod 600"):
        EncryptionKey.load(path)


def test_missing_malformed_and_wrong_type_key_files_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="does not exist"):
        SigningKey.load(tmp_path / "none.key")
    bad = tmp_path / "bad.key"
    bad.write_text("not a key")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match=r"bad\.key.*not an unencrypted PEM"):
        SigningKey.load(bad)
    enc = tmp_path / "enc.key"
    EncryptionKey.generate().save(enc)
    with pytest.raises(KeyFileError, match="not an Ed25519 private key"):
        SigningKey.load(enc)
    pub = tmp_path / "enc.pub"
    EncryptionKey.generate().public_key.save(pub)
    with pytest.raises(KeyFileError, match="not an Ed25519 public key"):
        VerifyKey.load(pub)
    assert EncryptionPublicKey.load(pub).raw


def test_symlinked_or_huge_key_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "dir.key").mkdir()
    with pytest.raises(KeyFileError, match="not a regular file"):
        VerifyKey.load(tmp_path / "dir.key")
    big = tmp_path / "big.pub"
    big.write_bytes(b"x" * 20000)
    with pytest.raises(KeyFileError, match="too large"):
        VerifyKey.load(big)


def test_key_id_is_first_8_bytes_of_sha256_of_raw_public_key() -> None:
    key = SigningKey.from_seed(bytes(32))
    assert key.key_id == hashlib.sha256(key.verify_key.raw).digest()[:8]


def test_keyring_holds_one_or_two_distinct_keys() -> None:
    a, b, c = (SigningKey.generate().verify_key for _ in range(3))
    ring = Keyring([a, b])
    assert ring.get(a.key_id) is a
    assert ring.get(b.key_id) is b
    assert ring.get(c.key_id) is None
    with pytest.raises(LocalError):
        Keyring([a, b, c])
    with pytest.raises(LocalError):
        Keyring([])
    with pytest.raises(LocalError, match="share key id"):
        Keyring([a, VerifyKey.from_raw(a.raw)])


def test_encryption_keys_round_trip(tmp_path: Path) -> None:
    key = EncryptionKey.generate()
    key.save(tmp_path / "e.key")
    key.public_key.save(tmp_path / "e.pub")
    assert EncryptionKey.load(tmp_path / "e.key").public_key.raw == key.public_key.raw
    assert EncryptionPublicKey.load(tmp_path / "e.pub").raw == key.public_key.raw
